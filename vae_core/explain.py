"""One input, followed step by step through a model: the numbers behind the "How a VAE works" page.

    ex = explain_example(model, x, y=None, seed=0)   # x: one image (C, H, W) or (1, C, H, W)
    ex["mu"], ex["sigma"], ex["eps"], ex["z"]        # the encoder's output, the noise, the code (D,)
    ex["image"]                                      # the decoded image (C, H, W) in [0, 1]
    ex["sum"]["recon"], ex["sum"]["kl"]              # the two loss terms in nats, as training sums them
    ex["mean"]["recon"]                              # the same with the pixels averaged instead of summed

Units are those of `vae_core.losses`: nats for one example, the reconstruction summed over every pixel (and
channel), the KL summed over the latent dimensions. The reconstruction is the one-sample estimate at the drawn z,
so it moves when ε is redrawn; the KL is the closed form, so it depends on μ and σ only.

The "mean" reduction is the one many code bases use by accident (`reduction="mean"` over pixels, the KL still
summed over dimensions): the reconstruction shrinks by C*H*W, the KL does not, so the KL weighs C*H*W times more,
as if β were C*H*W times larger.
"""
from __future__ import annotations

import math

import torch

from vae_core.losses import kl_normal, reconstruction_nll


def _one_image(model, x: torch.Tensor) -> torch.Tensor:
    """x as a batch of one (1, C, H, W) float32 on the model's device, or ValueError naming the expected shape."""
    shape = tuple(model.config.input_shape)
    x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or len(x) != 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"x must be one image {shape} or (1, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    return x.to(model.device, torch.float32)


def _one_label(model, y) -> torch.Tensor | None:
    """The CVAE's label as a (1,) tensor; None for models that take no label."""
    if not model.config.is_conditional:
        return None
    if y is None:
        raise ValueError("a CVAE needs the class label y of the image")
    y = torch.as_tensor(y).reshape(-1)
    if len(y) != 1 or y.is_floating_point() or not 0 <= int(y[0]) < model.config.num_classes:
        raise ValueError(f"y must be one class in 0..{model.config.num_classes - 1}, got {y.tolist()}")
    return y.long().to(model.device)


def _reductions(recon: float, kl: float, beta: float, n_pixels: int) -> dict:
    """The loss terms under the sum and the mean reduction over pixels, and how the KL's weight changes."""
    out = {}
    for name, r in (("sum", recon), ("mean", recon / n_pixels)):
        loss = r + beta * kl
        out[name] = {
            "recon": r,
            "kl": kl,  # summed over dimensions under both reductions: that is the point
            "loss": loss,  # what training minimises: recon + β·KL
            "kl_share": (beta * kl / loss) if loss > 0 else 0.0,  # fraction of the loss that is β·KL
            "kl_to_recon": (beta * kl / r) if r > 0 else math.inf,  # β·KL for each nat of reconstruction
        }
    return out


def explain_example(model, x: torch.Tensor, y=None, seed: int = 0) -> dict:
    """Every number of one pass of one image through the model, with ε drawn by a generator seeded by `seed`.

    Returns a dict: kind, beta, n_pixels (C*H*W), latent_dim; mu, sigma, eps, z (D,) float32 CPU tensors (sigma and
    eps None for the AE, whose code is the point z = mu); image (C, H, W) in [0, 1], decoded from z; recon (nats,
    summed over pixels), kl_per_dim (D,) and kl (nats, summed over dimensions; zeros and 0 for the AE), elbo =
    -(recon + kl) (the true bound, β = 1), loss = recon + β·kl; and "sum" / "mean": the loss terms under each
    reduction over pixels (see _reductions).

    The same seed draws the same ε; the draw is the one `vae_core.losses.elbo_terms` makes with a generator seeded
    alike, so recon and kl are the reference's numbers for this image.
    """
    config = model.config
    xb, yb = _one_image(model, x), _one_label(model, y)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            mu, logvar = model.encode(xb, yb)  # (1, D) each; logvar None for the AE
            if logvar is None:
                sigma = eps = None
                z = mu
                kl_per_dim = torch.zeros_like(mu)
            else:
                sigma = torch.exp(0.5 * logvar)
                # The draw reparameterize makes: randn of mu's shape from the generator.
                generator = torch.Generator(device=mu.device).manual_seed(int(seed))
                eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                z = mu + sigma * eps  # the reparameterisation trick
                kl_per_dim = kl_normal(mu, logvar)
            logits = model.decode(z, yb)  # (1, C, H, W)
            log_sigma = model.log_sigma if model.log_sigma is not None else math.log(config.gaussian_sigma)
            recon = float(reconstruction_nll(logits, xb, config.likelihood, log_sigma)[0])
            image = torch.sigmoid(logits)[0]
    finally:
        model.train(was_training)

    def flat(t):
        return None if t is None else t[0].detach().float().cpu()

    kl = float(kl_per_dim.double().sum())
    beta = float(config.beta) if config.is_variational else 0.0  # the AE's loss has no KL term at all
    n_pixels = config.input_size
    return {
        "kind": config.kind, "beta": beta, "n_pixels": n_pixels, "latent_dim": config.latent_dim,
        "mu": flat(mu), "sigma": flat(sigma), "eps": flat(eps), "z": flat(z),
        "image": image.detach().float().cpu(),
        "recon": recon, "kl_per_dim": flat(kl_per_dim), "kl": kl,
        "elbo": -(recon + kl), "loss": recon + beta * kl,
        **_reductions(recon, kl, beta, n_pixels),
    }


__all__ = ["explain_example"]
