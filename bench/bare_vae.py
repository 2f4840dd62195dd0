"""The reference for bench/train_throughput.py: pytorch/examples' vae/main.py, bare, in a process of its own.

It imports torch and numpy only (nothing of Latent Lab), so no setting of ours can reach it: PyTorch's default
Adam, default threads, default OpenMP wait policy. It trains the 784-400-20 MLP VAE on the `x_train` of an .npz
(uint8 or float images, N x 28 x 28) and prints one JSON line: samples per second of optimisation (test
evaluation excluded, as in the Trainer's `samples_per_s`) and the last epoch's mean training loss in nats.

    python bench/bare_vae.py DATA.npz [--epochs 5] [--batch-size 128] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    # Kingma and Welling, Auto-Encoding Variational Bayes, ICLR 2014, appendix B
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    with np.load(args.data, allow_pickle=False) as npz:
        x = np.asarray(npz["x_train"], dtype=np.float32)
    x = torch.from_numpy(x / 255.0 if x.max() > 1 else x).reshape(-1, 1, 28, 28)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=args.batch_size, shuffle=True)
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_seconds, samples, last_loss = 0.0, 0, 0.0
    for _ in range(args.epochs):
        model.train()
        total = 0.0
        start = time.perf_counter()
        for (data,) in loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            total += loss.item()
            optimizer.step()
        train_seconds += time.perf_counter() - start
        samples += len(x)
        last_loss = total / len(x)
    print(json.dumps({"samples_per_s": samples / train_seconds, "train_loss": last_loss,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
