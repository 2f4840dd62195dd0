"""Training throughput of vae_core's Trainer against a bare PyTorch loop, in one process, alternating.

Both train the 784-400-20 MLP VAE of pytorch/examples (vae/main.py) with Adam at the same batch size and
thread count on the same 28x28 data (the digits upscaled to 28x28, so it runs offline). Each round runs one
epoch of each, in alternating order; we report the median samples/s of each and the ratio. Target: >= 0.95.
The bare loop runs twice: with PyTorch's default Adam (the usual reference) and with the fused Adam the
Trainer uses, so the Trainer's own overhead can be read apart from the optimiser it picks.

    .venv/bin/python bench/train_throughput.py [--rounds 7] [--batch-size 128] [--samples 12000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# vae_core first, before torch: both sides then run with the same OpenMP wait policy.
import vae_core  # noqa: E402,F401
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from vae_core.config import TrainConfig, model_config_for  # noqa: E402
from vae_core.data import Dataset, DataSplit, load_data  # noqa: E402
from vae_core.models import build_model  # noqa: E402
from vae_core.train import Trainer, make_optimizer  # noqa: E402


class BareVAE(nn.Module):
    """pytorch/examples vae/main.py, unchanged in substance."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def bare_epoch(model, optimizer, x, batch_size, generator) -> float:
    """One epoch of the bare loop; returns samples/s."""
    start = time.perf_counter()
    order = torch.randperm(len(x), generator=generator)
    for i in range(0, len(x), batch_size):
        xb = x[order[i:i + batch_size]]
        logits, mu, logvar = model(xb)
        bce = F.binary_cross_entropy_with_logits(logits, xb.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())  # Kingma & Welling 2014, appendix B
        loss = (bce + kld) / len(xb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(x) / (time.perf_counter() - start)


def digits_28(samples: int) -> DataSplit:
    """The digits, upscaled to 28x28 and repeated to `samples` training images."""
    digits = load_data("digits", seed=0)
    x = F.interpolate(digits.train.x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    reps = -(-samples // len(x))
    x, y = x.repeat(reps, 1, 1, 1)[:samples].contiguous(), digits.train.y.repeat(reps)[:samples]
    test_x = F.interpolate(digits.test.x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    return DataSplit(Dataset(x, y, digits.label_names), Dataset(test_x, digits.test.y, digits.label_names),
                     {"source": "bench"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = digits_28(args.samples)
    config = model_config_for((1, 28, 28), 10, kind="vae", arch="mlp", latent_dim=20, hidden=(400,))
    ours = build_model(config, seed=0)
    torch.manual_seed(0)
    bare = BareVAE()
    bare_opt = torch.optim.Adam(bare.parameters(), lr=1e-3)  # PyTorch's default Adam, as in pytorch/examples
    torch.manual_seed(0)
    bare_fused = BareVAE()  # the same loop with the optimiser the Trainer uses: isolates the Trainer's overhead
    bare_fused_opt = make_optimizer(bare_fused, 1e-3)
    gen = torch.Generator().manual_seed(0)
    train_config = TrainConfig(epochs=1, batch_size=args.batch_size, lr=1e-3, seed=0, num_threads=args.threads)

    # Warm up both (allocator, thread pool, first-call overheads), then alternate the order every round.
    bare_epoch(bare, bare_opt, data.train.x, args.batch_size, gen)
    Trainer(ours, data, train_config).run()
    bare_epoch(bare_fused, bare_fused_opt, data.train.x, args.batch_size, gen)
    trainer_rates, trainer_wall_rates, bare_rates, fused_rates = [], [], [], []
    for r in range(args.rounds):
        def run_trainer():
            result = Trainer(ours, data, train_config).run()
            trainer_rates.append(result.samples_per_s)
            trainer_wall_rates.append(result.samples_seen / result.seconds)

        first, second = (run_trainer, None) if r % 2 == 0 else (None, run_trainer)
        if first:
            first()
        bare_rates.append(bare_epoch(bare, bare_opt, data.train.x, args.batch_size, gen))
        fused_rates.append(bare_epoch(bare_fused, bare_fused_opt, data.train.x, args.batch_size, gen))
        if second:
            second()
    t, tw, b, bf = (statistics.median(v) for v in (trainer_rates, trainer_wall_rates, bare_rates, fused_rates))
    print(f"threads {torch.get_num_threads()}, batch {args.batch_size}, {len(data.train.x)} samples/epoch, "
          f"{args.rounds} rounds (medians)")
    print(f"bare loop, default Adam     : {b:10,.0f} samples/s")
    print(f"bare loop, fused Adam       : {bf:10,.0f} samples/s")
    print(f"Trainer (optimisation)      : {t:10,.0f} samples/s   ratio {t / b:.3f} vs default Adam (target >= 0.95), "
          f"{t / bf:.3f} vs the same fused Adam")
    print(f"Trainer (incl. test eval)   : {tw:10,.0f} samples/s   ratio {tw / b:.3f} vs default Adam")


if __name__ == "__main__":
    main()
