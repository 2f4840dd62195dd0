"""The latent-space toolkit behind every page of Latent Lab: encode, decode, 2-D views, grids, traversals,
interpolation, prior samples, nearest neighbours, attribute vectors and display helpers.

    enc = encode_dataset(model, data.test.x, data.test.y)      # Encoding: mu, logvar (N, D), y (N,)
    view = fit_view(enc.mu)                                   # identity (D <= 2) or PCA (D > 2)
    images, z, plane = manifold_grid(model, 20, view=view)    # 400 decoded images over the view's plane
    png = image_grid(images, nrow=20, scale=4)                # (H, W, 3) uint8, crisp

Conventions: everything runs under `torch.no_grad()` with the model in eval mode (its training flag is
restored afterwards), in bounded batches. Images come back as float32 tensors (N, C, H, W) in [0, 1] on the
CPU, latent codes as float32 tensors (N, D) on the CPU. For a CVAE, every function that encodes or decodes
takes `y`: one class (int) for all rows or an (N,) tensor of classes; a missing `y` raises ValueError. For
the AE and VAE `y` is ignored.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

Labels = int | torch.Tensor | None

VIEW_METHODS = ("auto", "identity", "pca", "tsne")
_NEIGHBOUR_CHUNK_VALUES = 4_000_000  # floats a query chunk may hold at once (its distances or candidate diffs)
_NEIGHBOUR_MARGIN = 8  # extra candidates re-ranked with exact distances after the fast matmul-based pass


# -- plumbing ----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _inference(model) -> Iterator[torch.device]:
    """no_grad + eval mode for the block, then the model's training flag as it was; yields the model's device."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model.device
    finally:
        model.train(was_training)


def _bounded_batch(model, batch_size: int) -> int:
    """batch_size, lowered so that one batch's activations fit the memory budget (config.max_batch_size): a model
    with large images decodes a 400-point grid in several batches instead of one that takes gigabytes."""
    from vae_core.config import ModelConfig, max_batch_size

    config = getattr(model, "config", None)
    return min(batch_size, max_batch_size(config)) if isinstance(config, ModelConfig) and batch_size >= 1 else batch_size


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _labels(model, y: Labels, n: int) -> torch.Tensor | None:
    """The CVAE's labels as an (n,) int64 tensor; None for models that take no label."""
    config = model.config
    if not config.is_conditional:
        return None
    if y is None:
        raise ValueError("a CVAE needs the class label y: pass one class (int) for all rows or an (N,) tensor")
    y = _as_label_tensor(y)
    if y.ndim == 0:
        y = y.expand(n)
    if y.shape != (n,):
        raise ValueError(f"the class label y must be one int or an ({n},) tensor, got shape {tuple(y.shape)}")
    if n and (y.min() < 0 or y.max() >= config.num_classes):
        raise ValueError(f"class labels must be in 0..{config.num_classes - 1}, got {y.min().item()}..{y.max().item()}")
    return y


def _as_label_tensor(y) -> torch.Tensor:
    """An int, numpy integer or integer tensor/array as an int64 CPU tensor; floats and bools are refused."""
    bad = ValueError(f"the class label y must be an int or an (N,) integer tensor, got {type(y).__name__}")
    if isinstance(y, (bool, float, str)):
        raise bad
    try:
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError):
        raise bad from None
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise bad
    return y.long().cpu()


def _plain_labels(y: Labels, n: int) -> torch.Tensor:
    """Labels kept alongside the codes of a model that ignores them: (n,) int64, -1 when none were given."""
    if y is None:
        return torch.full((n,), -1, dtype=torch.int64)
    y = _as_label_tensor(y)
    if y.ndim == 0:
        return y.expand(n).clone()
    if y.shape != (n,):
        raise ValueError(f"the labels y must be one int or an ({n},) tensor, got shape {tuple(y.shape)}")
    return y.clone()


def _check_images(model, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    shape = tuple(model.config.input_shape)
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"{name} must be images (N, {', '.join(map(str, shape))}), got shape {tuple(x.shape)}")
    return x


def _check_codes(z: torch.Tensor, d: int, name: str = "z") -> torch.Tensor:
    if z.ndim != 2 or z.shape[1] != d:
        raise ValueError(f"{name} must be latent codes (N, {d}), got shape {tuple(z.shape)}")
    return z


def _vector(v: torch.Tensor, d: int | None, name: str) -> torch.Tensor:
    """A single latent vector (D,) from (D,) or (1, D)."""
    v = torch.as_tensor(v)
    if v.ndim == 2 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 1 or (d is not None and v.shape[0] != d):
        size = d if d is not None else "D"
        raise ValueError(f"{name} must be one latent vector ({size},), got shape {tuple(v.shape)}")
    return v


# -- encoding and decoding -----------------------------------------------------------------------------------------
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


# -- 2-D views -----------------------------------------------------------------------------------------------------
class LatentView:
    """A 2-D view of the latent space. identity (D == 2; D == 1 pads a zero 2nd axis), pca (D > 2; decodable
    through the inverse map), tsne (view only: no inverse, labelled as such).

    Attributes: method, decodable, axis_labels (x, y), latent_dim; for pca mean_ (D,), components_ (2, D)
    (orthonormal rows) and explained_variance_ratio_ (2,); for tsne embedding_ (M, 2) and indices_ (M,), the
    rows of the fitted mu it embeds (indices_ is None for the other methods).
    """

    def __init__(self, method: str, latent_dim: int, axis_labels: tuple[str, str], *,
                 mean: torch.Tensor | None = None, components: torch.Tensor | None = None,
                 explained_variance_ratio: torch.Tensor | None = None, embedding: torch.Tensor | None = None,
                 fitted: torch.Tensor | None = None, indices: torch.Tensor | None = None):
        self.method = method
        self.latent_dim = latent_dim
        self.axis_labels = axis_labels
        self.decodable = method != "tsne"
        self.mean_ = mean  # float64: the maps are computed in double so a round trip is exact to float32
        self.components_ = components
        self.explained_variance_ratio_ = explained_variance_ratio
        self.embedding_ = embedding
        self.indices_ = indices
        self._fitted = fitted  # the points t-SNE embedded, to recognise them in transform

    def __repr__(self) -> str:
        return f"LatentView({self.method!r}, latent_dim={self.latent_dim}, axis_labels={self.axis_labels})"

    def transform(self, mu: torch.Tensor) -> torch.Tensor:
        """View coordinates (N, 2) of latent codes mu (N, D); for tsne only the fitted points."""
        _check_codes(mu, self.latent_dim, "mu")
        if self.method == "tsne":
            if not torch.equal(mu.float().cpu(), self._fitted):
                raise ValueError("a t-SNE view has no map for new points: transform only the points it was fitted "
                                 "on (mu[view.indices_]); use a PCA view to place new points")
            return self.embedding_.clone()
        if self.method == "identity":
            if self.latent_dim == 1:
                return torch.cat([mu.float().cpu(), torch.zeros(len(mu), 1)], dim=1)  # (N, 2): zero 2nd axis
            return mu.float().cpu().clone()
        return ((mu.double().cpu() - self.mean_) @ self.components_.T).float()  # (N, 2)

    def inverse_transform(self, points: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, D) of view points (N, 2): the point of the latent space the view shows there."""
        if not self.decodable:
            raise ValueError("a t-SNE view is for viewing only: it has no inverse map back to the latent space")
        _check_codes(points, 2, "points")
        if self.method == "identity":
            return points[:, : self.latent_dim].float().cpu().clone()  # D == 1 drops the padded axis
        # The plane through the mean spanned by the two components (sklearn's PCA.inverse_transform).
        return (points.double().cpu() @ self.components_ + self.mean_).float()  # (N, D)

    def prior_center_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the prior N(0, I) sits in the view (2,) and its σ along each view axis (2,)."""
        if self.method == "tsne":
            raise ValueError("a t-SNE view has no prior extent: its axes have no units; use mode='data'")
        if self.method == "identity":
            return torch.zeros(2), torch.ones(2)
        center = self.transform(torch.zeros(1, self.latent_dim))[0]  # the prior mean, projected
        # Var(u·z) = |u|² for z ~ N(0, I): 1 for the orthonormal components, kept general anyway.
        return center, self.components_.norm(dim=1).float()


def fit_view(mu: torch.Tensor, method: str = "auto", *, seed: int = 0, max_tsne_points: int = 2000) -> LatentView:
    """A 2-D view fitted on latent codes mu (N, D). auto: identity for D <= 2, else pca."""
    if method not in VIEW_METHODS:
        raise ValueError(f"view method must be one of {', '.join(VIEW_METHODS)}, got {method!r}")
    if mu.ndim != 2 or mu.shape[1] < 1:
        raise ValueError(f"mu must be latent codes (N, D), got shape {tuple(mu.shape)}")
    d = mu.shape[1]
    if method == "auto":
        method = "identity" if d <= 2 else "pca"
    if method == "identity":
        if d > 2:
            raise ValueError(f"an identity view needs D <= 2, got D = {d}: use a pca (or tsne) view")
        return LatentView("identity", d, ("z[0]", "z[1]") if d == 2 else ("z[0]", "(none: 1-D latent)"))
    if method == "pca":
        return _fit_pca(mu)
    return _fit_tsne(mu, seed, max_tsne_points)


def _fit_pca(mu: torch.Tensor) -> LatentView:
    from sklearn.decomposition import PCA

    n, d = mu.shape
    if d < 2 or n < 2:
        raise ValueError(f"a PCA view needs D >= 2 and at least 2 points, got {n} points of D = {d}")
    pca = PCA(n_components=2).fit(mu.detach().double().cpu().numpy())  # double: a faithful inverse map
    ratio = torch.from_numpy(pca.explained_variance_ratio_.copy())
    labels = (f"PC 1 ({100 * ratio[0]:.0f}% of variance)", f"PC 2 ({100 * ratio[1]:.0f}%)")
    return LatentView("pca", d, labels, mean=torch.from_numpy(pca.mean_.copy()),
                      components=torch.from_numpy(pca.components_.copy()), explained_variance_ratio=ratio)


def _fit_tsne(mu: torch.Tensor, seed: int, max_points: int) -> LatentView:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits  # an sklearn dependency

    n, d = mu.shape
    if n < 4:
        raise ValueError(f"a t-SNE view needs at least 4 points, got {n}")
    if max_points < 4:
        raise ValueError(f"max_tsne_points must be >= 4, got {max_points}")
    indices = _subsample(n, max_points, seed)  # (M,)
    fitted = mu.detach().float().cpu()[indices]  # (M, D)
    perplexity = min(30.0, (len(fitted) - 1) / 3)  # sklearn needs perplexity < M; ~3 perplexities of neighbours
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca" if d >= 2 else "random", random_state=seed)
    # One OpenMP thread: sklearn's OpenMP runtime and torch's (two libgomp copies) both spin-wait for cores, and the
    # Barnes-Hut step opens a parallel region per iteration; on a 2-core machine that ran 2-50x slower.
    with threadpool_limits(1, user_api="openmp"):
        embedding = torch.from_numpy(tsne.fit_transform(fitted.double().numpy())).float()  # (M, 2)
    return LatentView("tsne", d, ("t-SNE 1 (view only)", "t-SNE 2 (view only)"),
                      embedding=embedding, fitted=fitted, indices=indices)


def _subsample(n: int, m: int, seed: int) -> torch.Tensor:
    """At most m of n row indices (M,), sorted, the same for the same seed: t-SNE is O(N log N) per step."""
    if n <= m:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:m].sort().values


# -- grids over a plane --------------------------------------------------------------------------------------------
def grid_extent(view: LatentView | None, mu: torch.Tensor | None = None, *, mode: str = "prior", k: float = 3.0,
                quantile: float = 0.01, dims: tuple[int, int] = (0, 1)) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of a 2-D plane: ±k prior σ around the prior mean ("prior"), or the
    [quantile, 1 - quantile] range of the data in the view ("data"). Without a view the plane is dims of z."""
    if mode == "prior":
        if view is None:
            center, scale = torch.zeros(2), torch.ones(2)
        else:
            center, scale = view.prior_center_and_scale()
        lo, hi = center - k * scale, center + k * scale
        return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])
    if mode != "data":
        raise ValueError(f"extent mode must be 'prior' or 'data', got {mode!r}")
    if not 0 <= quantile < 0.5:
        raise ValueError(f"quantile must be in [0, 0.5), got {quantile}")
    if view is not None and view.method == "tsne":
        points = view.embedding_  # the only points a t-SNE view has
    elif mu is None or len(mu) == 0:
        raise ValueError("a 'data' extent needs the latent codes mu of the data")
    elif view is not None:
        points = view.transform(mu)
    else:
        points = _plane_of(mu.float().cpu(), dims)
    q = torch.tensor([quantile, 1 - quantile], dtype=torch.float64)
    lo_hi = torch.quantile(points.double(), q, dim=0)  # (2 quantiles, 2 axes)
    out = []
    for axis in range(2):
        lo, hi = lo_hi[0, axis].item(), lo_hi[1, axis].item()
        if hi - lo < 1e-6:  # all data on one line (e.g. the padded axis of a 1-D latent): give it some width
            lo, hi = lo - 1.0, hi + 1.0
        out += [lo, hi]
    return tuple(out)


def _plane_of(mu: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
    """Columns dims of mu (N, 2); a missing 2nd dim of a 1-D latent reads as zeros."""
    d = mu.shape[1]
    cols = [mu[:, i] if i < d else torch.zeros(len(mu)) for i in dims]
    return torch.stack(cols, dim=1)


def plane_grid(n: int, extent: tuple[float, float, float, float]) -> torch.Tensor:
    """n x n points (n*n, 2) of a plane in row-major order, top row first: the largest y at the top."""
    if n < 1:
        raise ValueError(f"the grid needs n >= 1 points per side, got {n}")
    x_min, x_max, y_min, y_max = extent
    xs = torch.linspace(x_min, x_max, n, dtype=torch.float64)
    ys = torch.linspace(y_max, y_min, n, dtype=torch.float64)  # top row first, so it displays like a plot
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (n, n) each: row i has y = ys[i]
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).float()  # (n*n, 2)


def manifold_grid(model, n: int = 20, *, view: LatentView | None = None, extent=None, dims: tuple[int, int] = (0, 1),
                  base: torch.Tensor | None = None, y: Labels = None,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decodes an n x n grid over a 2-D plane: (images (n*n, C, H, W), z (n*n, D), plane coords (n*n, 2)),
    row-major with the top row at the largest y. With a view its plane, mapped back by inverse_transform;
    without one, dims `dims` of `base` (default zeros) vary and the others stay (a 1-D latent varies along x)."""
    d = model.config.latent_dim
    if view is not None:
        if not view.decodable:
            raise ValueError("a t-SNE view cannot be decoded: use a pca or identity view for the manifold grid")
        if view.latent_dim != d:
            raise ValueError(f"the view was fitted on D = {view.latent_dim} codes but the model has D = {d}")
    else:
        dims = tuple(int(i) for i in dims)
        if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= i < max(d, 2) for i in dims) or dims[0] >= d:
            raise ValueError(f"dims must be two different latent dimensions in 0..{d - 1}, got {dims}")
    extent = grid_extent(view, mode="prior", dims=dims) if extent is None else tuple(float(v) for v in extent)
    plane = plane_grid(n, extent)  # (n*n, 2)
    if view is not None:
        z = view.inverse_transform(plane)  # (n*n, D)
    else:
        base = torch.zeros(d) if base is None else _vector(base, d, "base").float().cpu()
        z = base.repeat(len(plane), 1)  # (n*n, D)
        for axis, i in enumerate(dims):
            if i < d:  # dims[1] may be the absent 2nd axis of a 1-D latent
                z[:, i] = plane[:, axis]
    images = decode(model, z, _labels(model, y, len(z)))
    return images, z, plane


# -- traversals, interpolation, sampling ---------------------------------------------------------------------------
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


# -- nearest neighbours --------------------------------------------------------------------------------------------
def nearest_neighbours(query: torch.Tensor, reference: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest reference rows (Euclidean, rows flattened) of each query row: (indices (M, k) int64,
    distances (M, k)), nearest first; in chunks of the query so memory stays bounded."""
    q = query.detach().reshape(len(query), -1).float().cpu()  # (M, P)
    r = reference.detach().reshape(len(reference), -1).float().cpu()  # (N, P)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query and reference rows differ in size: {q.shape[1]} vs {r.shape[1]} values")
    if not 1 <= k <= len(r):
        raise ValueError(f"k must be in 1..{len(r)} (the reference size), got {k}")
    candidates = min(len(r), k + _NEIGHBOUR_MARGIN)
    # Each query row holds N distances, then C candidate differences of P values: bound both.
    chunk = max(1, _NEIGHBOUR_CHUNK_VALUES // max(len(r), candidates * q.shape[1]))
    out_idx, out_dist = [], []
    for part in _batches(len(q), chunk):
        qb = q[part]  # (B, P)
        # Fast pass: cdist through a matmul (|q|² + |r|² - 2 q·r) ranks the candidates but loses precision for
        # near points (an image's distance to itself comes out ~1e-3, not 0) ...
        approx = torch.cdist(qb, r)  # (B, N)
        cand = approx.topk(candidates, dim=1, largest=False).indices  # (B, C)
        # ... so the candidates are re-ranked with exact differences.
        exact = (qb[:, None, :] - r[cand]).norm(dim=2)  # (B, C)
        order = exact.argsort(dim=1, stable=True)[:, :k]  # (B, k)
        out_idx.append(cand.gather(1, order))
        out_dist.append(exact.gather(1, order))
    if not out_idx:
        return torch.empty(0, k, dtype=torch.int64), torch.empty(0, k)
    return torch.cat(out_idx), torch.cat(out_dist)


def nearest_training_images(model, images: torch.Tensor, train_x: torch.Tensor, *, k: int = 5, space: str = "pixel",
                            train_mu: torch.Tensor | None = None, y: Labels = None, train_y: Labels = None,
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """"Is it just copying?": the k nearest training images of each image, by L2 over pixels ("pixel") or between
    posterior means ("latent"; pass train_mu to skip re-encoding the training set): (indices, distances)."""
    if space == "pixel":
        return nearest_neighbours(images, train_x, k)
    if space != "latent":
        raise ValueError(f"space must be 'pixel' or 'latent', got {space!r}")
    query_mu = encode_dataset(model, images, y).mu  # (M, D)
    if train_mu is None:
        if model.config.is_conditional and train_y is None:
            raise ValueError("a CVAE needs the training labels train_y (or train_mu) to encode the training images")
        train_mu = encode_dataset(model, train_x, train_y).mu  # (N, D)
    return nearest_neighbours(query_mu, train_mu, k)


# -- attribute vectors ---------------------------------------------------------------------------------------------
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


# -- display -------------------------------------------------------------------------------------------------------
def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] -> (N, H, W, C) uint8 for display (C kept: 1 or 3)."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    scaled = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()


def _tile(images: torch.Tensor, nrow: int, padding: int, pad_value: float) -> torch.Tensor:
    """torchvision.utils.make_grid's layout (checked against it in the tests) without importing torchvision, which
    pulls in torch._dynamo and costs the app's first page ~1.5 s: (N, C, H, W) -> (3, rows*(H+p)+p, cols*(W+p)+p),
    one channel repeated to RGB, and a lone image returned without padding."""
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)  # (N, 3, H, W)
    n, c, h, w = images.shape
    if n == 1:
        return images[0]
    cols = min(nrow, n)
    rows = -(-n // cols)  # ceil
    step_h, step_w = h + padding, w + padding
    grid = images.new_full((c, rows * step_h + padding, cols * step_w + padding), pad_value)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[:, r * step_h + padding:r * step_h + padding + h, col * step_w + padding:col * step_w + padding + w] = images[i]
    return grid


def image_grid(images: torch.Tensor, nrow: int, *, padding: int = 1, pad_value: float = 1.0, scale: int = 1
               ) -> np.ndarray:
    """One picture (H, W, 3) uint8 of images (N, C, H, W) in [0, 1], nrow per row, each pixel a scale x scale
    block (nearest neighbour: no blur, an 8x8 digit stays crisp)."""
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if not (isinstance(scale, int) and scale >= 1):
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    grid = _tile(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=pad_value)
    grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)  # (3, H*s, W*s)
    return (grid * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


__all__ = [
    "Encoding", "encode_dataset", "decode", "reconstruct",
    "LatentView", "fit_view", "grid_extent", "plane_grid", "manifold_grid",
    "traversal_codes", "traverse", "interpolate", "sample_prior", "samples_per_class",
    "nearest_neighbours", "nearest_training_images", "attribute_vector", "apply_attribute",
    "to_uint8", "image_grid", "VIEW_METHODS",
]


# -- for the explore pages: map extents, uncertainty ellipses, the ELBO along a path, images in and out ------------
def view_extent(view: LatentView, mu: torch.Tensor, *, k: float = 3.0, quantile: float = 0.005, pad: float = 0.05
                ) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of a map that shows the data ([quantile, 1 - quantile] range) and, for a
    decodable view, the prior's ±kσ box too, widened by `pad` of its size on each side: a collapsed model's
    codes (all near 0) still get a readable map, and an AE's far-flung codes are not cut off."""
    x0, x1, y0, y1 = grid_extent(view, mu, mode="data", quantile=quantile)
    if view.decodable:
        px0, px1, py0, py1 = grid_extent(view, mode="prior", k=k)
        x0, x1, y0, y1 = min(x0, px0), max(x1, px1), min(y0, py0), max(y1, py1)
    dx, dy = pad * (x1 - x0), pad * (y1 - y0)
    return x0 - dx, x1 + dx, y0 - dy, y1 + dy


def _view_matrix(view: LatentView) -> torch.Tensor:
    """The linear map (2, D) of a decodable view, float64."""
    if view.method == "pca":
        return view.components_.double()
    if view.method == "identity":
        return torch.eye(2, view.latent_dim, dtype=torch.float64)  # D == 1: the padded 2nd axis gets no spread
    raise ValueError("a t-SNE view has no linear map: posterior ellipses need a pca or identity view")


def posterior_ellipses(view: LatentView, mu: torch.Tensor, logvar: torch.Tensor, *, k: float = 1.0,
                       n_vertices: int = 48) -> torch.Tensor:
    """Outlines (N, n_vertices, 2), in view coordinates, of each posterior N(mu, diag(σ²)) at k σ.

    A linear view A (2, D) maps that Gaussian to N(A mu, A diag(σ²) Aᵀ) exactly, so in a PCA view the ellipse
    is the true spread of the code within the view's plane (tilted when the view mixes dimensions); the spread
    along the directions the view hides is not shown. Each outline is closed (the last vertex equals the first)."""
    if logvar is None:
        raise ValueError("an autoencoder has no posterior σ: ellipses need a VAE or CVAE")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if n_vertices < 3:
        raise ValueError(f"an outline needs n_vertices >= 3, got {n_vertices}")
    a = _view_matrix(view)  # (2, D)
    _check_codes(mu, view.latent_dim, "mu")
    var = torch.exp(logvar.double().cpu())  # (N, D)
    cov = torch.einsum("id,nd,jd->nij", a, var, a)  # (N, 2, 2): A diag(σ²) Aᵀ
    eigval, eigvec = torch.linalg.eigh(cov)  # (N, 2), (N, 2, 2) columns are the principal axes
    axes = eigvec * eigval.clamp(min=0).sqrt()[:, None, :]  # (N, 2, 2): each column scaled by its σ
    t = torch.linspace(0, 2 * math.pi, n_vertices, dtype=torch.float64)
    circle = torch.stack([torch.cos(t), torch.sin(t)], dim=1)  # (V, 2)
    centers = view.transform(mu).double()  # (N, 2)
    outlines = centers[:, None, :] + k * torch.einsum("nij,vj->nvi", axes, circle)  # (N, V, 2)
    outlines[:, -1] = outlines[:, 0]  # closed exactly, whatever the rounding of cos(2π)
    return outlines.float()


def path_elbo(model, images: torch.Tensor, y: Labels = None, *, seed: int = 0, batch_size: int = 256
              ) -> torch.Tensor:
    """The one-sample ELBO (N,) in nats of each image under the model: -(reconstruction + KL), z drawn with a
    generator seeded by `seed`, so the same images give the same numbers. For an AE (no posterior, no KL) it is
    minus the reconstruction error alone. Used to score decoded images: low values mark images the model itself
    finds implausible (e.g. decodes of the holes between clusters)."""
    from vae_core.losses import elbo_terms  # here: losses is not needed by the rest of this module

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


def image_from_bytes(data: bytes, shape: tuple[int, int, int], *, invert: bool = False) -> torch.Tensor:
    """One image file (png, jpg, ...) as a (1, C, H, W) tensor in [0, 1] of the model's input shape: converted
    to grey or RGB, resized (area averaging down, bilinear up), optionally inverted (dark ink on light paper ->
    light on dark, as the digits are). Raises UserInputError for a file that is not a readable image.

    Bounded from the header before any pixel is decoded (vae_core.data.decode_image: at most 40 megapixels and
    48 MiB decoded; JPEGs decode at the smallest scale that covers the model's side); an image far larger than the
    model's input is box-averaged down to about twice its side before the float32 conversion, so the work after
    decoding is a few MB whatever the picture."""
    from PIL import Image

    from vae_core.anomaly import resize_images
    from vae_core.data import decode_image
    from vae_core.errors import DataError, UserInputError

    _, h_out, w_out = (int(v) for v in shape)
    try:
        im, _ = decode_image(bytes(data), "this image", fit=max(h_out, w_out))
        factor = min(im.width // (2 * w_out), im.height // (2 * h_out))
        if factor >= 2:
            im = im.reduce(factor)  # box average: the same area averaging as resize_images, on far fewer pixels
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    except DataError as exc:
        message = str(exc)
        if message.startswith("cannot read image"):
            raise UserInputError("This file could not be read as an image: upload a PNG or JPEG picture.") from None
        raise UserInputError(f"{message[0].upper()}{message[1:]}") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserInputError(f"This file could not be read as an image ({type(exc).__name__}): "
                             "upload a PNG or JPEG picture.") from None
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, H, W)
    x = resize_images(x, shape)  # grey by luminance when the model is greyscale
    return 1.0 - x if invert else x


def png_bytes(picture: np.ndarray) -> bytes:
    """A (H, W, 3) or (H, W) uint8 picture as PNG file bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG")
    return buffer.getvalue()


def animated_gif(images: torch.Tensor, *, scale: int = 1, duration_ms: int = 200, progress_bar: bool = True
                 ) -> bytes:
    """Images (N, C, H, W) in [0, 1] as a looping animated GIF of exactly N frames, each pixel a scale x scale
    block (no blur). With progress_bar, a bar under each frame grows with the step: it shows where the animation
    is, and it keeps equal consecutive images (a collapsed model) as separate frames, which GIF writers merge."""
    import io

    from PIL import Image

    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if not (isinstance(scale, int) and scale >= 1):
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    n = len(images)
    frames = to_uint8(images)  # (N, H, W, C)
    if frames.shape[-1] == 1:
        frames = frames.repeat(3, axis=-1)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)  # (N, H*s, W*s, 3)
    if progress_bar:
        width = frames.shape[2]
        if width < n:
            raise ValueError(f"a progress bar needs frames at least {n} pixels wide: raise the scale")
        bar = np.full((n, max(2, scale), width, 3), 255, dtype=np.uint8)  # white track under the image
        for i in range(n):
            bar[i, :, : math.ceil(width * (i + 1) / n)] = (79, 70, 229)  # filled part: strictly longer each step
        frames = np.concatenate([frames, bar], axis=1)
    pictures = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms,
                     loop=0, disposal=1)
    return buffer.getvalue()


__all__ += ["view_extent", "posterior_ellipses", "path_elbo", "image_from_bytes", "png_bytes", "animated_gif"]


# -- for the decode and generate pages: the tile nearest a point, how far codes reach, a copying baseline ----------
def nearest_index(points, target) -> int:
    """The row of points (N,) or (N, K) nearest to target (a number, or (K,)), Euclidean; ties go to the first
    row. E.g. which tile of a traversal row (its values) or of a manifold grid (its plane) is nearest a code."""
    p = torch.as_tensor(points, dtype=torch.float64).cpu()
    p = p[:, None] if p.ndim == 1 else p  # (N, K)
    t = torch.as_tensor(target, dtype=torch.float64).cpu().reshape(-1)  # (K,)
    if p.ndim != 2 or len(p) == 0 or p.shape[1] != t.shape[0]:
        raise ValueError(f"points (N,) or (N, K) and a target of K values needed, got {tuple(p.shape)} and "
                         f"{tuple(t.shape)}")
    return int((p - t).norm(dim=1).argmin())  # argmin returns the first of equal minima


def code_radius(mu: torch.Tensor, quantile: float = 0.99) -> float:
    """How far from 0 the codes reach: the `quantile` of |mu| over every code and dimension of mu (N, D). For an
    autoencoder, whose codes are not tied to the prior's scale, this sizes a slider range that covers the data."""
    if mu.ndim != 2 or mu.numel() == 0:
        raise ValueError(f"mu must be a non-empty (N, D) batch of codes, got shape {tuple(mu.shape)}")
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    return float(torch.quantile(mu.detach().abs().double().cpu().reshape(-1), quantile))


def typical_nearest_distance(query: torch.Tensor, reference: torch.Tensor, *, max_points: int = 100, seed: int = 0
                             ) -> float:
    """The median Euclidean pixel distance from images `query` (e.g. test images, never trained on) to their
    nearest image in `reference` (the training set), on at most max_points query images drawn with `seed`: the
    yardstick for "is a sample just a copy?" (a copy sits much nearer its training image than new images do)."""
    if len(query) == 0:
        raise ValueError("the query set is empty")
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    rows = _subsample(len(query), max_points, seed)  # (M,)
    _, dist = nearest_neighbours(query[rows], reference, k=1)  # (M, 1)
    return float(dist[:, 0].median())


__all__ += ["nearest_index", "code_radius", "typical_nearest_distance"]


# -- for the latent map page: where to draw a decoded grid so each tile sits on its code ----------------------------
def grid_picture_box(extent: tuple[float, float, float, float], n: int, tile_px, padding: int = 0
                     ) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) over which to stretch image_grid(manifold_grid(model, n, extent=extent) images,
    nrow=n, padding=padding) so that the centre of every tile lands exactly on the code it was decoded from.
    tile_px: the images' size in pixels, one int for square images or (width, height).

    The grid's codes run from edge to edge of `extent` (plane_grid), so the picture must reach half a tile (and
    the padding) beyond it: stretched over `extent` itself, the outer tiles would sit up to half a cell inwards."""
    tile_w, tile_h = (tile_px, tile_px) if isinstance(tile_px, int) else (int(tile_px[0]), int(tile_px[1]))
    if n < 2 or min(tile_w, tile_h) < 1 or padding < 0:
        raise ValueError(f"need n >= 2, tiles >= 1 pixel and padding >= 0, got {n}, {tile_px}, {padding}")
    out = []
    for (lo, hi), tile in ((extent[:2], tile_w), (extent[2:], tile_h)):
        size = n * (tile + padding) + padding  # the picture's pixels along this axis
        per_px = (hi - lo) / (n - 1) / (tile + padding)  # data units per pixel: neighbouring codes are a tile apart
        start = lo - (padding + tile / 2) * per_px  # the first tile's centre (at pixel padding + tile/2) is on lo
        out += [start, start + size * per_px]
    return tuple(out)


__all__ += ["grid_picture_box"]
