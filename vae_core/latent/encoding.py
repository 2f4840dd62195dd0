"""Images to codes: the posterior of every example of a set, in batches (the one batched encoder of vae_core)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vae_core.latent._plumbing import (Labels, _batches, _bounded_batch, _check_images, _inference, _labels,
                                       _plain_labels)


@dataclass(eq=False)  # eq=False: comparing tensor fields with == would be ambiguous
class Encoding:
    """The posterior of every example of a set."""

    mu: torch.Tensor  # (N, D) posterior means
    logvar: torch.Tensor | None  # (N, D) posterior log-variances; None for the AE
    y: torch.Tensor  # (N,) int64 labels; -1 where none were given

    @property
    def sigma(self) -> torch.Tensor | None:
        """Posterior standard deviations (N, D); None for the AE."""
        return None if self.logvar is None else torch.exp(0.5 * self.logvar)

    def __len__(self) -> int:
        return len(self.mu)


def encode_dataset(model, x: torch.Tensor, y: Labels = None, *, batch_size: int = 1024) -> Encoding:
    """Posterior means and log-variances (N, D) of images x (N, C, H, W), encoded in batches."""
    _check_images(model, x)
    labels = _labels(model, y, len(x))
    mus, logvars = [], []
    with _inference(model) as device:
        for part in _batches(len(x), _bounded_batch(model, batch_size)):
            yb = labels[part].to(device) if labels is not None else None
            mu, logvar = model.encode(x[part].to(device, torch.float32), yb)  # (B, D) each
            mus.append(mu.float().cpu())
            if logvar is not None:
                logvars.append(logvar.float().cpu())
    d = model.config.latent_dim
    mu = torch.cat(mus) if mus else torch.empty(0, d)
    logvar = (torch.cat(logvars) if logvars else torch.empty(0, d)) if model.config.is_variational else None
    if labels is None:  # the AE/VAE ignore y, but keep it with the codes when given (for colouring plots)
        labels = _plain_labels(y, len(x))
    return Encoding(mu, logvar, labels)
