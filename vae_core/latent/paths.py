"""Moving through the latent space: one dimension at a time (traversals), from one code to another
(interpolation), along an attribute's direction, and how plausible the model finds the images on the way."""
from __future__ import annotations

import torch

from vae_core.latent._plumbing import Labels, _batches, _bounded_batch, _check_images, _inference, _labels, _vector
from vae_core.latent.decoding import decode
from vae_core.losses import elbo_terms


def traversal_codes(base: torch.Tensor, dims: list[int], values: torch.Tensor) -> torch.Tensor:
    """Latent codes (len(dims), n, D): row r is base with coordinate dims[r] set to each of values (n,)."""
    base = _vector(base, None, "base").float().cpu()
    z = base.repeat(len(dims), len(values), 1)  # (R, n, D)
    for row, i in enumerate(dims):
        z[row, :, i] = values
    return z


def traverse(model, base: torch.Tensor, *, dims: list[int] | None = None, values: torch.Tensor | None = None,
             n: int = 9, span: float = 3.0, y: Labels = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decodes base (D,) with one coordinate at a time swept over values (default linspace(-span, span, n)):
    (images (len(dims), n, C, H, W), values (n,))."""
    d = model.config.latent_dim
    base = _vector(base, d, "base")
    dims = list(range(d)) if dims is None else [int(i) for i in dims]
    if not dims or not all(0 <= i < d for i in dims):
        raise ValueError(f"dims must be latent dimensions in 0..{d - 1}, got {dims}")
    if values is None:
        if n < 1:
            raise ValueError(f"a traversal needs n >= 1 values, got {n}")
        values = torch.linspace(-span, span, n)
    values = torch.as_tensor(values, dtype=torch.float32).flatten().cpu()
    z = traversal_codes(base, dims, values)  # (R, n, D)
    images = decode(model, z.reshape(-1, d), _labels(model, y, z.shape[0] * z.shape[1]))  # (R*n, C, H, W)
    return images.reshape(len(dims), len(values), *images.shape[1:]), values


def interpolate(z0: torch.Tensor, z1: torch.Tensor, n: int = 10, method: str = "linear") -> torch.Tensor:
    """n latent codes (n, D) from z0 to z1 (D,), both ends included: "linear" or "slerp" (Shoemake 1985;
    White 2016, "Sampling generative networks"), which falls back to linear for (anti)parallel or zero vectors."""
    if method not in ("linear", "slerp"):
        raise ValueError(f"interpolation method must be 'linear' or 'slerp', got {method!r}")
    if n < 2:
        raise ValueError(f"an interpolation path needs n >= 2 points (both ends), got {n}")
    z0, z1 = _vector(z0, None, "z0"), _vector(z1, None, "z1")
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    a, b = z0.double().cpu(), z1.double().cpu()
    t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]  # (n, 1)
    path = (1 - t) * a + t * b  # (n, D); this form (not a + t(b - a)) hits both ends exactly
    if method == "slerp":
        na, nb = a.norm(), b.norm()
        if na > 1e-12 and nb > 1e-12:
            cos = torch.clamp(a @ b / (na * nb), -1.0, 1.0)
            omega = torch.arccos(cos)  # angle between the vectors
            sin = torch.sin(omega)
            if sin > 1e-6:  # else (anti)parallel: the great circle is undefined, keep the line
                path = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
    path = path.to(z0.dtype if z0.is_floating_point() else torch.float32)
    path[0], path[-1] = z0, z1  # exact ends, whatever the rounding of the sines
    return path


def attribute_vector(mu: torch.Tensor, y: torch.Tensor, class_a: int, class_b: int) -> torch.Tensor:
    """Mean latent code of class a minus that of class b (D,): the direction from b to a."""
    mu, y = mu.detach().cpu(), torch.as_tensor(y).cpu()
    if mu.ndim != 2 or y.shape != (len(mu),):
        raise ValueError(f"mu (N, D) and y (N,) must match, got {tuple(mu.shape)} and {tuple(y.shape)}")
    means = []
    for c in (class_a, class_b):
        rows = mu[y == c]
        if len(rows) == 0:
            raise ValueError(f"class {c} has no examples to average")
        means.append(rows.double().mean(0))
    return (means[0] - means[1]).float()


def apply_attribute(z: torch.Tensor, vector: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """z + strength * vector, for one code (D,) or a batch (N, D)."""
    if z.shape[-1] != vector.shape[-1] or vector.ndim != 1:
        raise ValueError(f"the vector ({vector.shape[-1]},) must match the codes' last dim, got {tuple(z.shape)}")
    return z + strength * vector.to(z.dtype)


def path_elbo(model, images: torch.Tensor, y: Labels = None, *, seed: int = 0, batch_size: int = 256
              ) -> torch.Tensor:
    """The one-sample ELBO (N,) in nats of each image under the model: -(reconstruction + KL), z drawn with a
    generator seeded by `seed`, so the same images give the same numbers. For an AE (no posterior, no KL) it is
    minus the reconstruction error alone. Used to score decoded images: low values mark images the model itself
    finds implausible (e.g. decodes of the holes between clusters)."""
    _check_images(model, images, "images")
    labels = _labels(model, y, len(images))
    out = []
    with _inference(model) as device:
        generator = torch.Generator(device=device).manual_seed(seed)
        for part in _batches(len(images), _bounded_batch(model, batch_size)):
            yb = labels[part].to(device) if labels is not None else None
            terms = elbo_terms(model, images[part].to(device, torch.float32), yb, generator=generator)
            out.append(terms.elbo.double().cpu())
    return torch.cat(out).float() if out else torch.empty(0)
