"""A bundled MNIST zoo model's card against a bare PyTorch reference trained on the same data with the same budget.

The reference is written the pytorch/examples way (vae/main.py): its own nn.Module with the zoo model's layer
sizes, PyTorch's default Adam, a DataLoader over the bundled MNIST training digits, the loss written out (summed
Bernoulli cross-entropy plus the analytic KL, Kingma & Welling 2014, appendix B), for the zoo model's epochs, batch
size, learning rate and seed. It imports nothing of ours to train; the data and the card are read through
vae_core only before and after. We print both test ELBOs (nats per digit, one posterior sample, MNIST's 10,000 test
digits) and their difference. Target (issue 13): the card within 3 nats of the reference.

    .venv/bin/python bench/zoo_vs_bare.py [--model mnist-vae-2d]      # MLP zoo models (VAE, beta-VAE)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class BareVAE(nn.Module):
    """An MLP VAE with the given hidden sizes: encoder 784-h1-h2-(mu, logvar), decoder the mirror image."""

    def __init__(self, hidden: list[int], latent: int):
        super().__init__()
        sizes = [784, *hidden]
        self.enc = nn.Sequential(*[m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
        self.mu, self.logvar = nn.Linear(sizes[-1], latent), nn.Linear(sizes[-1], latent)
        back = [latent, *reversed(hidden)]
        self.dec = nn.Sequential(*[m for a, b in zip(back, back[1:]) for m in (nn.Linear(a, b), nn.ReLU())],
                                 nn.Linear(back[-1], 784))

    def forward(self, x):
        h = self.enc(x.view(-1, 784))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


def loss_terms(logits, x, mu, logvar):
    """(-log p(x|z), KL) summed over the batch, in nats."""
    bce = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())  # Kingma & Welling 2014, appendix B
    return bce, kld


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-vae-2d")
    args = parser.parse_args()
    from vae_core.checkpoint import load_checkpoint
    from vae_core.data import load_data
    from vae_core.zoo import ZOO_DIR, zoo_model

    spec = zoo_model(args.model)
    model, meta = load_checkpoint(ZOO_DIR / f"{spec.name}.pt")
    cfg, train = model.config, spec.train
    if cfg.arch != "mlp" or cfg.kind != "vae":
        raise SystemExit("the bare reference is written for the MLP VAEs of the zoo")
    data = load_data(spec.dataset, seed=train["seed"])
    torch.manual_seed(train["seed"])
    bare = BareVAE(list(cfg.hidden), cfg.latent_dim)
    optimizer = torch.optim.Adam(bare.parameters(), lr=train["lr"])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.train.x), batch_size=train["batch_size"],
                                         shuffle=True)
    start = time.perf_counter()
    for _ in range(train["epochs"]):
        for (x,) in loader:
            bce, kld = loss_terms(*_fwd(bare, x))
            loss = (bce + cfg.beta * kld) / len(x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        bce, kld = loss_terms(*_fwd(bare, data.test.x))
    bare_elbo = -float(bce + kld) / len(data.test.x)
    card = meta["card"]["test_elbo"]
    print(f"{spec.name}: card test ELBO {card:.2f} nats; bare PyTorch reference {bare_elbo:.2f} nats "
          f"({train['epochs']} epochs, batch {train['batch_size']}, lr {train['lr']}, {seconds:.0f} s); "
          f"difference {card - bare_elbo:+.2f} nats (target: within 3)")


def _fwd(model, x):
    logits, mu, logvar = model(x)
    return logits, x, mu, logvar


if __name__ == "__main__":
    main()
