"""Codes to images: decoding in batches, reconstructions, samples from the prior (one class per row for a CVAE)."""
from __future__ import annotations

import math

import torch

from vae_core.latent._plumbing import Labels, _batches, _bounded_batch, _check_codes, _inference, _labels
from vae_core.latent.encoding import encode_dataset


def decode(model, z: torch.Tensor, y: Labels = None, *, batch_size: int = 1024) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] decoded from latent codes z (N, D), in batches."""
    _check_codes(z, model.config.latent_dim)
    labels = _labels(model, y, len(z))
    out = []
    with _inference(model) as device:
        for part in _batches(len(z), _bounded_batch(model, batch_size)):
            yb = labels[part].to(device) if labels is not None else None
            out.append(model.decode_mean(z[part].to(device, torch.float32), yb).float().cpu())  # (B, C, H, W)
    return torch.cat(out) if out else torch.empty(0, *model.config.input_shape)


def reconstruct(model, x: torch.Tensor, y: Labels = None, *, batch_size: int = 1024) -> torch.Tensor:
    """Reconstructions (N, C, H, W) in [0, 1]: the decode of each image's posterior mean (no sampling)."""
    labels = _labels(model, y, len(x))
    return decode(model, encode_dataset(model, x, labels, batch_size=batch_size).mu, labels, batch_size=batch_size)


def _prior_codes(d: int, n: int, temperature: float, seed: int) -> torch.Tensor:
    """z ~ N(0, temperature² I) (n, D) from a CPU generator seeded by seed: the same codes on every device."""
    if n < 0:
        raise ValueError(f"the number of samples must be >= 0, got {n}")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    return torch.randn((n, d), generator=torch.Generator().manual_seed(seed)) * temperature  # (n, D)


def sample_prior(model, n: int, *, temperature: float = 1.0, seed: int = 0, y: Labels = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """z ~ N(0, temperature² I) from a generator seeded by seed (not the global RNG): (z (n, D), images)."""
    labels = _labels(model, y, n)  # before sampling: a missing label fails fast
    z = _prior_codes(model.config.latent_dim, n, temperature, seed)  # (n, D)
    return z, decode(model, z, labels)


def samples_per_class(model, n_per_class: int, *, temperature: float = 1.0, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """CVAE only: (images (K, n_per_class, C, H, W), z (n_per_class, D)), the same z in every class row, so a
    column shows one "style" across the classes."""
    if not model.config.is_conditional:
        raise ValueError("samples per class need a CVAE: the AE and VAE decoders do not take a class label")
    k = model.config.num_classes
    z = _prior_codes(model.config.latent_dim, n_per_class, temperature, seed)  # (n, D): as sample_prior draws
    images = decode(model, z.repeat(k, 1), torch.arange(k).repeat_interleave(n_per_class))  # (K*n, C, H, W)
    return images.reshape(k, n_per_class, *images.shape[1:]), z
