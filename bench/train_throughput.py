"""Command-line training throughput against a bare PyTorch script, each in its own process, alternating.

The reference is bench/bare_vae.py: pytorch/examples' vae/main.py, importing nothing of ours (PyTorch's default
Adam, threads and OpenMP settings). Ours is `python -m vae_core train ... --json` at its default settings. Both
train the same 784-400-20 MLP VAE at batch 128 for 5 epochs on the same real 28x28 digits (4,000 training and
1,000 test images of the bundled MNIST copy), and both report samples per second of optimisation (test
evaluation excluded). Each round runs the two programs back to back, in alternating order; we print every
round, the medians and their ratio. Target: ratio >= 0.95 on a quiet machine.

    .venv/bin/python bench/train_throughput.py [--rounds 5] [--epochs 5] [--train 4000] [--test 1000]
    .venv/bin/python bench/train_throughput.py --cli-args "--threads 1"    # any extra flags for our command
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_digits(path: Path, n_train: int, n_test: int) -> None:
    """A held-out slice of the bundled MNIST copy as a Keras-style .npz (uint8 images, N x 28 x 28)."""
    code = (
        "import numpy as np, sys\n"
        "from vae_core.data import mnist_arrays\n"
        "xtr, ytr, xte, yte = mnist_arrays()[:4]\n"
        f"np.savez(sys.argv[1], x_train=xtr[:{n_train}], y_train=ytr[:{n_train}], "
        f"x_test=xte[:{n_test}], y_test=yte[:{n_test}])\n"
    )
    # In a process of its own, so this driver never imports torch or vae_core.
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True)


def run_json(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--data", help="an .npz to use instead (x_train N x 28 x 28, ...)")
    parser.add_argument("--cli-args", default="", help="extra flags for `python -m vae_core train`")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="latent-lab-bench-"))
    data = Path(args.data) if args.data else tmp / "digits.npz"
    if not args.data:
        write_digits(data, args.train, args.test)
    bare_cmd = [sys.executable, str(ROOT / "bench" / "bare_vae.py"), str(data), "--epochs", str(args.epochs)]
    ours_cmd = [sys.executable, "-m", "vae_core", "train", "--data", str(data), "--model", "vae", "--arch", "mlp",
                "--latent-dim", "20", "--hidden", "400", "--batch-size", "128", "--epochs", str(args.epochs),
                "--out", str(tmp / "model.pt"), "--json", *shlex.split(args.cli_args)]
    bare, ours = [], []
    for r in range(args.rounds):
        order = [("bare", bare_cmd), ("ours", ours_cmd)]
        for name, cmd in order if r % 2 == 0 else order[::-1]:
            rate = run_json(cmd)["samples_per_s"]
            (bare if name == "bare" else ours).append(rate)
        print(f"round {r + 1}: bare {bare[-1]:9,.0f}  ours {ours[-1]:9,.0f} samples/s", flush=True)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"medians over {args.rounds} rounds: bare script {b:,.0f}, `python -m vae_core train` {o:,.0f} "
          f"samples/s; ratio {o / b:.3f} (target >= 0.95); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
