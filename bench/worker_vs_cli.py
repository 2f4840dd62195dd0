"""The Train page's training path without a browser, against the command line, each in its own process, alternating.

A classroom server trains in a worker process started by vae_core.jobs.TrainingJob (the fork server, the
ThreadTuner, progress messages to the server); the command line trains in its own process. Both train the
digits VAE of bench/app_startup.py (latent 2, hidden 256,128, batch 64, lr 2e-3, seed 0) and report samples per
second of optimisation from the checkpoint (evaluation excluded). No browser runs: in a class the students'
browsers draw on their own computers, so this is the server's share of "page vs CLI" (target >= 0.85).

    .venv/bin/python bench/worker_vs_cli.py [--rounds 5] [--epochs 30]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(dataset="digits", latent_dim=2, hidden=(256, 128), batch_size=64, lr=2e-3, seed=0)

WORKER_RUN = """
import json, sys
from pathlib import Path
import torch
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data.sources import load_data
from vae_core.jobs import TrainingJob, new_job_limiter
s = json.loads(sys.argv[1]); out = Path(sys.argv[2])
data = load_data(s["dataset"], seed=s["seed"])
model = ModelConfig(kind="vae", input_shape=tuple(data.input_shape), latent_dim=s["latent_dim"], hidden=tuple(s["hidden"]))
train = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=s["seed"])
job = TrainingJob(model, train, data, new_job_limiter(), save_to=out, name="bench worker").start()
job.finished.wait()
assert job.state == "done", job.snapshot()
print(json.dumps({"samples_per_s": torch.load(out, weights_only=True)["meta"]["samples_per_s"]}))
"""


def last_json(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_worker(epochs: int, out: Path) -> float:
    return last_json([sys.executable, "-c", WORKER_RUN, json.dumps({**SETTINGS, "epochs": epochs}), str(out)])[
        "samples_per_s"]


def run_cli(epochs: int, out: Path) -> float:
    s = SETTINGS
    return last_json([sys.executable, "-m", "vae_core", "train", "--dataset", s["dataset"], "--latent-dim",
                      str(s["latent_dim"]), "--hidden", *map(str, s["hidden"]), "--batch-size", str(s["batch_size"]),
                      "--lr", str(s["lr"]), "--seed", str(s["seed"]), "--epochs", str(epochs), "--out", str(out),
                      "--json"])["samples_per_s"]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    print(f"load average at start: {load_average()}")
    worker, cli = [], []
    with tempfile.TemporaryDirectory(prefix="latent_lab_bench_") as tmp:
        for r in range(args.rounds):
            order = (("worker", run_worker, worker), ("cli", run_cli, cli))
            for label, run, into in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
                into.append(run(args.epochs, Path(tmp) / f"{label}-{r}.pt"))
            print(f"round {r + 1}: worker {worker[-1]:9,.0f}  CLI {cli[-1]:9,.0f} samples/s")
    w, c = statistics.median(worker), statistics.median(cli)
    print(f"medians over {args.rounds} rounds: worker {w:,.0f}, CLI {c:,.0f} samples/s; worker/CLI {w / c:.3f} "
          f"(target >= 0.85); load average at end: {load_average()}")


if __name__ == "__main__":
    main()
