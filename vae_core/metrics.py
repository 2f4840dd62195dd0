"""Numbers that say how good a model is: the ELBO and its parts, an importance-weighted -log p(x), active units.

All in nats per example unless said otherwise. Everything runs under `torch.no_grad()` in bounded batches.
"""
from __future__ import annotations

import math

import torch

from vae_core.errors import DataError
from vae_core.losses import elbo_terms, kl_normal, reconstruction_nll

PENALTY_KEYS = ("mmd", "mi", "tc", "dwkl")  # the WAE's MMD and the β-TCVAE's three terms (losses.ELBOTerms.penalties)
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active when Cov_x(E_q[z_d | x]) > 0.01


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _labels(model, y: torch.Tensor | None) -> torch.Tensor | None:
    return y if model.config.is_conditional else None


@torch.no_grad()
def evaluate_elbo(model, x: torch.Tensor, y: torch.Tensor | None = None, *, batch_size: int = 1024,
                  seed: int = 0) -> dict:
    """ELBO, recon, KL (nats per example), KL per latent dimension, and active units over a whole set.

    The WAE has no posterior, hence no ELBO and no KL: its "elbo" and "kl" are None and "mmd" is the MMD² to the
    prior (mean of the batches' unbiased estimates). The β-TCVAE adds "mi", "tc" and "dwkl", estimated per batch with
    N = len(x). (The AE keeps its historical convention: KL 0 and "elbo" = -recon.)"""
    was_training = model.training
    model.eval()
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    recon_sum = 0.0
    kl_dim_sum = torch.zeros(model.config.latent_dim, dtype=torch.float64)
    means = []
    penalty_sums: dict[str, float] = {}
    for part in _batches(len(x), batch_size):
        xb = x[part].to(device)
        yb = y[part].to(device) if y is not None else None
        terms = elbo_terms(model, xb, _labels(model, yb), generator=generator, dataset_size=len(x))
        recon_sum += terms.recon.double().sum().item()
        kl_dim_sum += terms.kl_per_dim.double().sum(0).cpu()
        for key, value in terms.penalties.items():
            penalty_sums[key] = penalty_sums.get(key, 0.0) + float(value) * len(xb)
        means.append(model.encode(xb, _labels(model, yb))[0].cpu())
    model.train(was_training)
    n = len(x)
    kl_per_dim = (kl_dim_sum / n).tolist()
    recon = recon_sum / n
    kl = float(sum(kl_per_dim))
    no_elbo = model.config.kind == "wae"
    return {
        "elbo": None if no_elbo else -(recon + kl),
        "recon": recon,
        "kl": None if no_elbo else kl,
        "kl_per_dim": kl_per_dim,
        # The WAE's codes are trained to spread like the prior, so their variance says which are used; the AE's are not.
        "active_units": active_units(torch.cat(means)) if model.config.is_generative else model.config.latent_dim,
        **{key: total / n for key, total in penalty_sums.items()},
    }


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Latent dimensions whose posterior mean varies across inputs: Var_x(E_q[z_d|x]) > threshold (Burda et al. 2015)."""
    if len(mu) < 2:
        return 0
    return int((mu.double().var(dim=0) > threshold).sum().item())


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int = 1000,
                        max_batch_pixels: int = 8_000_000, seed: int = 0) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) per example (N,), in nats (Burda et al. 2015, eq. 8).

        log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

    K = 1 is the ELBO in expectation; the bound tightens as K grows. Memory stays bounded: the K samples are
    drawn in chunks so that at most `max_batch_pixels` decoded pixel values exist at once.
    """
    if not model.config.is_variational:
        raise ValueError("the importance-weighted bound needs a posterior q(z|x); an AE has none")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    was_training = model.training
    model.eval()
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    pixels = model.config.input_size
    out = []
    examples_per_batch = max(1, min(len(x), max_batch_pixels // (pixels * min(k, 64))))
    for part in _batches(len(x), examples_per_batch):
        xb = x[part].to(device)  # (B, C, H, W)
        yb = _labels(model, y[part].to(device) if y is not None else None)
        mu, logvar = model.encode(xb, yb)  # (B, D)
        b = len(xb)
        chunk = max(1, min(k, max_batch_pixels // (pixels * b)))
        log_w = []
        for start in range(0, k, chunk):
            s = min(chunk, k - start)
            log_w.append(_log_importance_weights(model, xb, yb, mu, logvar, s, generator))  # (B, s)
        log_w = torch.cat(log_w, dim=1)  # (B, K)
        out.append((torch.logsumexp(log_w.double(), dim=1) - math.log(k)).cpu())
    model.train(was_training)
    return torch.cat(out)


def _log_importance_weights(model, x, y, mu, logvar, s, generator) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) for s samples z ~ q(z|x) of each example: (B, s)."""
    b, d = mu.shape
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((s, b, d), generator=generator, device=mu.device, dtype=mu.dtype)  # (s, B, D)
    z = mu + std * eps  # (s, B, D)
    z_flat = z.reshape(s * b, d)
    y_rep = y.repeat(s) if y is not None else None
    logits = model.decode(z_flat, y_rep)  # (s*B, C, H, W)
    x_rep = x.repeat(s, 1, 1, 1)
    log_sigma = model.log_sigma if model.log_sigma is not None else math.log(model.config.gaussian_sigma)
    log_px_z = -reconstruction_nll(logits, x_rep, model.config.likelihood, log_sigma).view(s, b)
    log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)  # (s, B)
    log_qz = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(-1)  # (s, B)
    return (log_px_z + log_pz - log_qz).transpose(0, 1)  # (B, s)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL of each latent dimension over a set (D,), in nats."""
    return kl_normal(mu, logvar).mean(0)


def evaluate_model(model, test, *, iwae_samples: int = 0, iwae_examples: int | None = None, seed: int = 0) -> dict:
    """ELBO, recon, KL, active units and (K > 0) the importance-weighted -log p(x) on a test set, nats per example.
    For the WAE, "elbo", "kl" and "nll" are None (no posterior) and "mmd" is given; the β-TCVAE adds "mi", "tc", "dwkl".

    The numbers of `python -m vae_core evaluate` and of the zoo's model cards; `iwae_examples` limits the
    (costly) importance-weighted estimate to the first examples.
    """
    if tuple(test.x.shape[1:]) != tuple(model.config.input_shape):
        raise DataError(f"the data's images are {'x'.join(map(str, test.x.shape[1:]))} but the model expects "
                        f"{'x'.join(map(str, model.config.input_shape))}: use the data set it was trained on")
    if model.config.is_conditional and int(test.y.max()) >= model.config.num_classes:
        raise DataError(f"the data has labels up to {int(test.y.max())} but the CVAE knows {model.config.num_classes} classes")
    metrics = evaluate_elbo(model, test.x, test.y, seed=seed)
    out = {k: metrics[k] for k in ("elbo", "recon", "kl", "active_units", *PENALTY_KEYS) if k in metrics}
    out["kl_per_dim"] = metrics["kl_per_dim"]
    out["nll"] = None
    if iwae_samples > 0 and model.config.is_variational:
        n = len(test.x) if iwae_examples is None else min(iwae_examples, len(test.x))
        out["nll"] = float(-iwae_log_likelihood(model, test.x[:n], test.y[:n], k=iwae_samples, seed=seed).mean())
        out["nll_samples"], out["nll_examples"] = iwae_samples, n
    out["n_test"] = len(test.x)
    return out
