"""The issue-2 acceptance check: `python -m vae_core train` against a bare PyTorch VAE of the same architecture.

On a 28x28 `.npz` with x_train/y_train/x_test/y_test (MNIST's Keras layout), both train the 784-400-20 MLP VAE
for E epochs at batch 128, lr 1e-3, seed 0; we print both test ELBOs (nats per example, one posterior sample per
image as in pytorch/examples' test loss) and both training samples/s, and their differences and ratio.
Targets: ELBO within 3 nats, samples/s ratio >= 0.9. Without --data it makes a stand-in from the digits
(upscaled to 28x28, 10x augmented by shifts) so it runs offline.

    .venv/bin/python bench/elbo_vs_bare.py [--data mnist.npz] [--epochs 20]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# vae_core first, before torch: both sides then run with the same OpenMP wait policy.
import vae_core  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from train_throughput import BareVAE  # noqa: E402


def stand_in_npz(path: Path) -> None:
    """Digits upscaled to 28x28 and shifted by up to 2 pixels: a 28x28 Keras-layout file of 14,380 images."""
    from vae_core.data import load_data

    digits = load_data("digits", seed=0)
    rng = np.random.default_rng(0)

    def expand(x: torch.Tensor, copies: int) -> np.ndarray:
        big = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False).clamp(0, 1)
        out = np.zeros((len(x) * copies, 28, 28), np.uint8)
        for c in range(copies):
            for i, img in enumerate(big[:, 0].numpy()):
                dy, dx = rng.integers(0, 5, 2)
                out[c * len(x) + i, dy:dy + 24, dx:dx + 24] = (img * 255).round()
        return out

    np.savez(path, x_train=expand(digits.train.x, 10), y_train=np.tile(digits.train.y.numpy(), 10),
             x_test=expand(digits.test.x, 5), y_test=np.tile(digits.test.y.numpy(), 5))


def bare_run(x_train, x_test, epochs: int) -> tuple[float, float]:
    """Train the bare VAE; returns (test ELBO, training samples/s)."""
    torch.manual_seed(0)
    model = BareVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    seconds = 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(x_train), 128):
            xb = x_train[order[i:i + 128]]
            logits, mu, logvar = model(xb)
            loss = (F.binary_cross_entropy_with_logits(logits, xb.view(-1, 784), reduction="sum")
                    - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())) / len(xb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds += time.perf_counter() - start
    with torch.no_grad():
        logits, mu, logvar = model(x_test)
        nll = F.binary_cross_entropy_with_logits(logits, x_test.view(-1, 784), reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return -float(nll + kl) / len(x_test), epochs * len(x_train) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "digits28.npz"
            stand_in_npz(data)
        arrays = np.load(data, allow_pickle=False)
        x_train = torch.from_numpy(arrays["x_train"]).float().div(255).unsqueeze(1)
        x_test = torch.from_numpy(arrays["x_test"]).float().div(255).unsqueeze(1)
        cmd = [sys.executable, "-m", "vae_core", "train", "--data", str(data), "--model", "vae", "--arch", "mlp",
               "--hidden", "400", "--latent-dim", "20", "--epochs", str(args.epochs), "--batch-size", "128",
               "--lr", "1e-3", "--seed", "0", "--out", str(Path(tmp) / "m.pt"), "--json"]
        ours = json.loads(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
        torch.set_num_threads(os.cpu_count() or 1)  # what the CLI uses
        bare_elbo, bare_rate = bare_run(x_train, x_test, args.epochs)
    print(f"{len(x_train)} train / {len(x_test)} test images, {args.epochs} epochs, batch 128")
    print(f"vae_core CLI : test ELBO {ours['test_elbo']:9.2f} nats   {ours['samples_per_s']:9,.0f} samples/s")
    print(f"bare PyTorch : test ELBO {bare_elbo:9.2f} nats   {bare_rate:9,.0f} samples/s")
    print(f"ELBO difference {ours['test_elbo'] - bare_elbo:+.2f} nats (target within 3); "
          f"samples/s ratio {ours['samples_per_s'] / bare_rate:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
