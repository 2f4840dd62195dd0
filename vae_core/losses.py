"""Likelihoods, the analytic KL and the ELBO.

Units and reductions (the most common source of confusion in VAE code):
every number here is in **nats per example**. The reconstruction term -log p(x|z) is **summed over all pixels**
(and channels) of an image, the KL term is **summed over the latent dimensions**, and only then are they
**averaged over the examples of a batch**. With a mean over pixels instead, the reconstruction term shrinks by
a factor C*H*W against the KL and the model behaves as if β were C*H*W times larger (blurry images, collapse).

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))          (Kingma & Welling 2014, eq. 3)
    loss    = recon + β * w * KL,   recon = -E_q[log p(x|z)]        (Higgins et al. 2017; w is the warm-up weight)

The ELBO we report is always the true bound (β = 1, no warm-up), whatever β the model was trained with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LOG_2PI = math.log(2 * math.pi)


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str,
                       log_sigma: torch.Tensor | float | None = None) -> torch.Tensor:
    """-log p(x|z) per example (B,), in nats, summed over pixels. `logits` are the decoder's outputs."""
    if likelihood == "bernoulli":
        # Binary cross-entropy with logits: stable for targets anywhere in [0, 1].
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # (B, C, H, W)
    elif likelihood == "gaussian":
        # N(x; sigmoid(logits), σ² I): 0.5 ((x - mean) / σ)² + log σ + 0.5 log 2π per pixel.
        log_sigma_t = torch.as_tensor(log_sigma, dtype=logits.dtype, device=logits.device)
        z = (x - torch.sigmoid(logits)) * torch.exp(-log_sigma_t)
        nll = 0.5 * z.pow(2) + log_sigma_t + 0.5 * _LOG_2PI  # (B, C, H, W)
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}")
    return nll.flatten(1).sum(1)  # (B,)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example and dimension (B, D), in nats.

    Closed form from Kingma & Welling 2014, appendix B: -0.5 * (1 + log σ² - μ² - σ²).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


@dataclass
class ELBOTerms:
    """Per-example parts of the objective; `loss` is the scalar to minimise."""

    recon: torch.Tensor  # (B,) nats
    kl_per_dim: torch.Tensor  # (B, D) nats; zeros for the AE
    loss: torch.Tensor  # () recon + kl_weight * KL, averaged over the batch

    @property
    def kl(self) -> torch.Tensor:
        return self.kl_per_dim.sum(1)  # (B,)

    @property
    def elbo(self) -> torch.Tensor:
        return -(self.recon + self.kl)  # (B,) the true bound, β = 1


def elbo_terms(model, x: torch.Tensor, y: torch.Tensor | None = None, kl_weight: float | None = None,
               generator: torch.Generator | None = None) -> ELBOTerms:
    """One-sample ELBO parts for a batch; kl_weight defaults to the model's β."""
    config = model.config
    logits, mu, logvar, _ = model(x, y, generator)
    log_sigma = model.log_sigma if model.log_sigma is not None else math.log(config.gaussian_sigma)
    recon = reconstruction_nll(logits, x, config.likelihood, log_sigma)  # (B,)
    if logvar is None:  # the AE: no posterior, no KL
        kl_per_dim = torch.zeros_like(mu)
    else:
        kl_per_dim = kl_normal(mu, logvar)  # (B, D)
    weight = config.beta if kl_weight is None else kl_weight
    loss = (recon + weight * kl_per_dim.sum(1)).mean()
    return ELBOTerms(recon=recon, kl_per_dim=kl_per_dim, loss=loss)


def kl_warmup_weight(beta: float, progress_epochs: float, warmup_epochs: float) -> float:
    """β times a linear ramp from 0 to 1 over the first `warmup_epochs` epochs (Bowman et al. 2016)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, progress_epochs / warmup_epochs)
