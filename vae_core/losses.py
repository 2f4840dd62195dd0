"""Likelihoods, the analytic KL and the ELBO.

Units and reductions (the most common source of confusion in VAE code):
every number here is in **nats per example**. The reconstruction term -log p(x|z) is **summed over all pixels**
(and channels) of an image, the KL term is **summed over the latent dimensions**, and only then are they
**averaged over the examples of a batch**. With a mean over pixels instead, the reconstruction term shrinks by
a factor C*H*W against the KL and the model behaves as if β were C*H*W times larger (blurry images, collapse).

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))          (Kingma & Welling 2014, eq. 3)
    loss    = recon + β * w * KL,   recon = -E_q[log p(x|z)]        (Higgins et al. 2017; w is the warm-up weight)

The ELBO we report is always the true bound (β = 1, no warm-up), whatever β the model was trained with.

Two more objectives share the reconstruction term (same units) and change the regulariser:

    WAE-MMD  loss = recon + λ MMD²(q_z, p_z)                     (Tolstikhin et al. 2018, Algorithm 2)
    β-TCVAE  loss = recon + MI + β TC + dimension-wise KL          (Chen et al. 2018, eq. 4 with α = γ = 1)

The WAE's encoder is deterministic: it has no posterior, so it has no ELBO (nor KL); what is defined is the
reconstruction and the MMD. The β-TCVAE's three terms are minibatch estimates; its reported ELBO is the true one
with the analytic KL, as for the other kinds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    kl_per_dim: torch.Tensor  # (B, D) nats, analytic; zeros for the AE and the WAE (no posterior)
    loss: torch.Tensor  # () the objective, averaged over the batch
    # Batch-level terms of the objective (), nats per example: "mmd" (WAE); "mi", "tc", "dwkl" (β-TCVAE).
    penalties: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def kl(self) -> torch.Tensor:
        return self.kl_per_dim.sum(1)  # (B,)

    @property
    def elbo(self) -> torch.Tensor:
        return -(self.recon + self.kl)  # (B,) the true bound, β = 1 (-recon for the AE and the WAE: not a bound)


def elbo_terms(model, x: torch.Tensor, y: torch.Tensor | None = None, kl_weight: float | None = None,
               generator: torch.Generator | None = None, dataset_size: int | None = None) -> ELBOTerms:
    """One-sample ELBO parts and the training objective for a batch.

    kl_weight: the regulariser's weight, default the model's β (during warm-up β times the ramp). For the WAE it
    scales λ by the same ramp (kl_weight / β); for the β-TCVAE it weights the TC, and the MI and dimension-wise KL
    get the ramp alone. dataset_size: N of the β-TCVAE's estimator (the training set's size; default len(x)).
    """
    config = model.config
    out = model(x, y, generator)  # ModelOutput: logits (B, C, H, W); mu, logvar, z (B, D)
    log_sigma = model.log_sigma if model.log_sigma is not None else math.log(config.gaussian_sigma)
    recon = reconstruction_nll(out.logits, x, config.likelihood, log_sigma)  # (B,)
    if out.logvar is None:  # the AE and the WAE: no posterior, no KL
        kl_per_dim = torch.zeros_like(out.mu)
    else:
        kl_per_dim = kl_normal(out.mu, out.logvar)  # (B, D)
    weight = config.beta if kl_weight is None else kl_weight
    ramp = weight / config.beta if config.beta > 0 else 1.0  # the warm-up's share of β
    penalties: dict[str, torch.Tensor] = {}
    if config.kind == "wae":
        prior_z = torch.randn(out.z.shape, generator=generator, device=out.z.device, dtype=out.z.dtype)  # (B, D) ~ p(z)
        penalties["mmd"] = mmd_imq(out.z, prior_z)
        loss = recon.mean() + ramp * config.mmd_weight * penalties["mmd"]
    elif config.kind == "tcvae":
        penalties.update(tc_decomposition(out.z, out.mu, out.logvar, dataset_size or len(x)))
        loss = recon.mean() + ramp * penalties["mi"] + weight * penalties["tc"] + ramp * penalties["dwkl"]
    else:
        loss = (recon + weight * kl_per_dim.sum(1)).mean()
    return ELBOTerms(recon=recon, kl_per_dim=kl_per_dim, loss=loss, penalties=penalties)


# -- WAE-MMD ------------------------------------------------------------------------------------------------------
MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # multiples of C the authors' code sums the kernel over


def imq_kernel(a: torch.Tensor, b: torch.Tensor, prior_var: float = 1.0) -> torch.Tensor:
    """Inverse multiquadric kernel k(a, b) = C / (C + ||a - b||²), summed over the scales C·s, C = 2 D σ²: (n, m).

    Tolstikhin et al. 2018, sec. 4 (C = 2 d_z σ_z² with the prior N(0, σ_z² I)); the sum over several scales is
    what their code does, so no single bandwidth has to fit the codes.
    """
    base = 2.0 * a.shape[1] * prior_var
    sq_dist = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)  # (n, m)
    return sum(base * s / (base * s + sq_dist) for s in MMD_SCALES)


def mmd_imq(z: torch.Tensor, prior_z: torch.Tensor) -> torch.Tensor:
    """Unbiased estimate () of MMD²(q_z, p_z) from codes z (n, D) and prior samples (n, D) (Algorithm 2):

        1/(n(n-1)) Σ_{l≠j} [k(z̃_l, z̃_j) + k(z_l, z_j)] - 2/n² Σ_{l,j} k(z_l, z̃_j)

    (a U-statistic: it can dip below zero when the two distributions match)."""
    n = z.shape[0]
    if n < 2:
        return z.new_zeros(())
    off_diagonal = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)  # (n, n)
    within = (imq_kernel(prior_z, prior_z) + imq_kernel(z, z)) * off_diagonal  # (n, n)
    across = imq_kernel(z, prior_z)  # (n, n)
    return within.sum() / (n * (n - 1)) - 2.0 * across.sum() / (n * n)


# -- β-TCVAE ------------------------------------------------------------------------------------------------------
def log_normal_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) per dimension, broadcasting; nats."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


_PAIR_VALUES = 4_000_000  # at most this many log q(z_id | x_j) values at once (16 MB of float32)


def tc_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int
                     ) -> dict[str, torch.Tensor]:
    """Index-code MI, total correlation and dimension-wise KL (each (), nats per example) of a batch of samples
    z ~ q(z|x) (B, D), by minibatch-weighted sampling (Chen et al. 2018, sec. 4.1):

        log q(z_i) ≈ log Σ_j q(z_i | x_j) - log(B N)           (and the same per dimension for Π_d q(z_id))
        MI = E[log q(z|x) - log q(z)],  TC = E[log q(z) - Σ_d log q(z_d)],  DWKL = E[Σ_d log q(z_d) - log p(z)]

    Their sum is a one-sample estimate of KL(q(z|x) || p(z)) averaged over the batch (eq. 2). The log(B N)
    normalisation is the paper's and its code's (rtqichen/beta-tcvae, vae_quant.py). It shifts each term by a
    constant the gradients do not see (the terms' sum not at all): when the posterior is the prior, MI reads
    log N, TC (D - 1) log N and DWKL -D log N instead of 0, so compare these terms across epochs, not with zero.
    """
    b, d = z.shape
    log_norm = math.log(b * dataset_size)
    log_qz, log_qz_product = [], []
    rows = max(1, _PAIR_VALUES // (b * d))  # a large evaluation batch is taken a few rows at a time
    for start in range(0, b, rows):
        zi = z[start:start + rows]  # (R, D)
        log_q_pairs = log_normal_density(zi.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # (R, B, D): log q(z_id | x_j)
        log_qz.append(torch.logsumexp(log_q_pairs.sum(2), dim=1) - log_norm)  # (R,) log q(z_i)
        log_qz_product.append((torch.logsumexp(log_q_pairs, dim=1) - log_norm).sum(1))  # (R,) Σ_d log q(z_id)
    log_qz, log_qz_product = torch.cat(log_qz), torch.cat(log_qz_product)  # (B,), (B,)
    log_qz_given_x = log_normal_density(z, mu, logvar).sum(1)  # (B,)
    log_pz = log_normal_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)  # (B,)
    return {"mi": (log_qz_given_x - log_qz).mean(), "tc": (log_qz - log_qz_product).mean(),
            "dwkl": (log_qz_product - log_pz).mean()}


def kl_warmup_weight(beta: float, progress_epochs: float, warmup_epochs: float) -> float:
    """β times a linear ramp from 0 to 1 over the first `warmup_epochs` epochs (Bowman et al. 2016)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, progress_epochs / warmup_epochs)
