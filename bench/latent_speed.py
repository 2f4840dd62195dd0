"""Speed of the latent-space toolkit on the digits MLP VAE the app trains by default (latent 2, hidden 256-128).

Trains that model for 10 epochs, then times, after one warm-up call each:
  * a 20x20 manifold grid (400 decodes)                       target < 20 ms
  * encoding all 1,797 digits (train + test)                  target < 100 ms
  * an importance-weighted -log p(x), K = 1000, on the test split  target < 10 s
and prints the median over 7 repetitions (3 for the NLL), in ms.

Read the figures with the load average it prints: on a 2-core machine shared with other busy processes, torch's
default 2 OpenMP threads can run these small ops 20-60x slower (a thread descheduled at every parallel barrier);
importing vae_core first sets OMP_WAIT_POLICY=PASSIVE (unless already set), which removes most of that cliff;
run with OMP_WAIT_POLICY=ACTIVE to see it, --threads 1 to compare.

    .venv/bin/python bench/latent_speed.py [--reps 7] [--nll-reps 3] [--threads 0]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import vae_core  # noqa: E402,F401  first: it sets the OpenMP wait policy, which must happen before torch loads

import torch  # noqa: E402

from vae_core.config import TrainConfig, model_config_for  # noqa: E402
from vae_core.data import load_data  # noqa: E402
from vae_core.latent import encode_dataset, manifold_grid  # noqa: E402
from vae_core.metrics import iwae_log_likelihood  # noqa: E402
from vae_core.models import build_model  # noqa: E402
from vae_core.train import Trainer  # noqa: E402


def median_ms(fn: Callable[[], object], reps: int) -> tuple[float, list[float]]:
    """Median wall time of fn in ms over reps calls, after one warm-up call (allocator, thread pool)."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--nll-reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    digits = load_data("digits", seed=0)
    config = model_config_for(digits.input_shape, digits.num_classes, kind="vae", latent_dim=2, hidden=(256, 128))
    model = build_model(config, seed=0)
    start = time.perf_counter()
    result = Trainer(model, digits, TrainConfig(epochs=10, seed=0)).run()
    print(f"trained {config.label} for 10 epochs in {time.perf_counter() - start:.1f} s ({result.status}); "
          f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    model.eval()
    all_x = torch.cat([digits.train.x, digits.test.x])  # (1797, 1, 8, 8)

    rows = [
        ("20x20 manifold grid", lambda: manifold_grid(model, 20), args.reps, 20.0),
        (f"encode all {len(all_x):,} digits", lambda: encode_dataset(model, all_x), args.reps, 100.0),
        (f"IWAE NLL, K=1000, {len(digits.test.x)} test digits",
         lambda: iwae_log_likelihood(model, digits.test.x, k=1000), args.nll_reps, 10_000.0),
    ]
    for name, fn, reps, target in rows:
        median, times = median_ms(fn, reps)
        verdict = "ok" if median < target else "SLOW"
        spread = ", ".join(f"{t:.1f}" for t in sorted(times))
        print(f"{name:<40} median {median:10.1f} ms  target < {target:,.0f} ms  {verdict}   [{spread}]")
    nll = -iwae_log_likelihood(model, digits.test.x, k=1000).mean().item()
    print(f"(test -log p(x) ≈ {nll:.2f} nats per digit)")


if __name__ == "__main__":
    main()
