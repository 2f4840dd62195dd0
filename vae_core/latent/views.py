"""2-D views of the latent space, in scikit-learn's manner: parameters in `__init__`, `fit(codes)` returns the view,
what it learnt ends in "_".

    view = PCAView().fit(enc.mu)              # or IdentityView() (D <= 2), TSNEView(seed=0) (view only)
    points = view.transform(enc.mu)           # (N, 2)
    codes = view.inverse_transform(points)    # (N, D): the codes the view shows there (not for t-SNE)
    view = fit_view(enc.mu)                   # the default: identity for D <= 2, else PCA

Every view has `method` ("identity", "pca", "tsne"), `decodable` (whether it maps back to codes), `axis_labels` and,
once fitted, `latent_dim_`. The maps of the linear views are computed in float64, so a round trip is exact to
float32.
"""
from __future__ import annotations

import math

import torch

from vae_core.latent._plumbing import _check_codes, _subsample

VIEW_METHODS = ("auto", "identity", "pca", "tsne")


class LatentView:
    """What every 2-D view offers; the subclasses fit it."""

    method = ""
    decodable = True  # whether inverse_transform maps view points back to latent codes
    latent_dim_: int  # D of the codes it was fitted on

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_"))
        return f"{type(self).__name__}({params})"

    def fit(self, codes: torch.Tensor) -> "LatentView":
        raise NotImplementedError

    @property
    def axis_labels(self) -> tuple[str, str]:
        raise NotImplementedError

    def transform(self, codes: torch.Tensor) -> torch.Tensor:
        """View coordinates (N, 2) of latent codes (N, D)."""
        raise NotImplementedError

    def inverse_transform(self, points: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, D) of view points (N, 2): the point of the latent space the view shows there."""
        raise ValueError("a t-SNE view is for viewing only: it has no inverse map back to the latent space")

    def linear_map(self) -> torch.Tensor:
        """The view's linear map A (2, D), float64: a point's coordinates are A (z - mean)."""
        raise ValueError("a t-SNE view has no linear map: posterior ellipses need a pca or identity view")

    def prior_center_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the prior N(0, I) sits in the view (2,) and its σ along each view axis (2,)."""
        raise ValueError("a t-SNE view has no prior extent: its axes have no units; use mode='data'")


class IdentityView(LatentView):
    """The latent plane itself: D == 2 as it is; D == 1 with a zero second axis."""

    method = "identity"

    def fit(self, codes: torch.Tensor) -> "IdentityView":
        d = _latent_dim_of(codes)
        if d > 2:
            raise ValueError(f"an identity view needs D <= 2, got D = {d}: use a pca (or tsne) view")
        self.latent_dim_ = d
        return self

    @property
    def axis_labels(self) -> tuple[str, str]:
        return ("z[0]", "z[1]") if self.latent_dim_ == 2 else ("z[0]", "(none: 1-D latent)")

    def transform(self, codes: torch.Tensor) -> torch.Tensor:
        _check_codes(codes, self.latent_dim_, "mu")
        if self.latent_dim_ == 1:
            return torch.cat([codes.float().cpu(), torch.zeros(len(codes), 1)], dim=1)  # (N, 2): zero 2nd axis
        return codes.float().cpu().clone()

    def inverse_transform(self, points: torch.Tensor) -> torch.Tensor:
        _check_codes(points, 2, "points")
        return points[:, : self.latent_dim_].float().cpu().clone()  # D == 1 drops the padded axis

    def linear_map(self) -> torch.Tensor:
        return torch.eye(2, self.latent_dim_, dtype=torch.float64)  # D == 1: the padded 2nd axis gets no spread

    def prior_center_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(2), torch.ones(2)


class PCAView(LatentView):
    """The plane through the codes' mean that keeps the most of their variance (D > 2); decodable through the
    inverse map (sklearn's PCA.inverse_transform).

    Learnt: mean_ (D,), components_ (2, D) orthonormal rows, explained_variance_ratio_ (2,), all float64."""

    method = "pca"

    def fit(self, codes: torch.Tensor) -> "PCAView":
        from sklearn.decomposition import PCA

        d = _latent_dim_of(codes)
        n = len(codes)
        if d < 2 or n < 2:
            raise ValueError(f"a PCA view needs D >= 2 and at least 2 points, got {n} points of D = {d}")
        pca = PCA(n_components=2).fit(codes.detach().double().cpu().numpy())  # double: a faithful inverse map
        self.latent_dim_ = d
        self.mean_ = torch.from_numpy(pca.mean_.copy())
        self.components_ = torch.from_numpy(pca.components_.copy())
        self.explained_variance_ratio_ = torch.from_numpy(pca.explained_variance_ratio_.copy())
        return self

    @classmethod
    def from_plane(cls, mean: torch.Tensor, components: torch.Tensor, axis_labels: tuple[str, str]) -> "PCAView":
        """A view onto a given plane, mean (D,) and orthonormal components (2, D), instead of a learnt one: e.g.
        the plane of z[0] and z[1] when there are no codes to fit on. Its explained_variance_ratio_ is None."""
        view = cls()
        view.latent_dim_ = len(mean)
        view.mean_, view.components_ = mean.double().cpu(), components.double().cpu()
        view.explained_variance_ratio_ = None
        view._given_labels = tuple(axis_labels)
        return view

    @property
    def axis_labels(self) -> tuple[str, str]:
        ratio = self.explained_variance_ratio_
        if ratio is None:
            return self._given_labels
        return f"PC 1 ({100 * ratio[0]:.0f}% of variance)", f"PC 2 ({100 * ratio[1]:.0f}%)"

    def transform(self, codes: torch.Tensor) -> torch.Tensor:
        _check_codes(codes, self.latent_dim_, "mu")
        return ((codes.double().cpu() - self.mean_) @ self.components_.T).float()  # (N, 2)

    def inverse_transform(self, points: torch.Tensor) -> torch.Tensor:
        _check_codes(points, 2, "points")
        # The plane through the mean spanned by the two components.
        return (points.double().cpu() @ self.components_ + self.mean_).float()  # (N, D)

    def linear_map(self) -> torch.Tensor:
        return self.components_.double()

    def prior_center_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        center = self.transform(torch.zeros(1, self.latent_dim_))[0]  # the prior mean, projected
        # Var(u·z) = |u|² for z ~ N(0, I): 1 for the orthonormal components, kept general anyway.
        return center, self.components_.norm(dim=1).float()


class TSNEView(LatentView):
    """A t-SNE embedding of at most max_points of the codes (a seeded subsample): for viewing only, with no map
    for new points nor back to the latent space.

    Learnt: indices_ (M,) the rows of the fitted codes it embeds, embedding_ (M, 2), fitted_codes_ (M, D)."""

    method = "tsne"
    decodable = False
    axis_labels = ("t-SNE 1 (view only)", "t-SNE 2 (view only)")

    def __init__(self, seed: int = 0, max_points: int = 2000):
        self.seed = seed
        self.max_points = max_points

    def fit(self, codes: torch.Tensor) -> "TSNEView":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits  # an sklearn dependency

        d = _latent_dim_of(codes)
        n = len(codes)
        if n < 4:
            raise ValueError(f"a t-SNE view needs at least 4 points, got {n}")
        if self.max_points < 4:
            raise ValueError(f"max_tsne_points must be >= 4, got {self.max_points}")
        self.latent_dim_ = d
        self.indices_ = _subsample(n, self.max_points, self.seed)  # (M,): t-SNE is O(M log M) per step
        self.fitted_codes_ = codes.detach().float().cpu()[self.indices_]  # (M, D)
        perplexity = min(30.0, (len(self.indices_) - 1) / 3)  # sklearn needs perplexity < M; ~3 perplexities
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca" if d >= 2 else "random", random_state=self.seed)
        # One OpenMP thread: sklearn's OpenMP runtime and torch's (two libgomp copies) both spin-wait for cores, and
        # the Barnes-Hut step opens a parallel region per iteration; on a 2-core machine that ran 2-50x slower.
        with threadpool_limits(1, user_api="openmp"):
            self.embedding_ = torch.from_numpy(tsne.fit_transform(self.fitted_codes_.double().numpy())).float()
        return self

    def transform(self, codes: torch.Tensor) -> torch.Tensor:
        """The embedding (M, 2) of the fitted points (codes[view.indices_]); other points have none."""
        _check_codes(codes, self.latent_dim_, "mu")
        if not torch.equal(codes.float().cpu(), self.fitted_codes_):
            raise ValueError("a t-SNE view has no map for new points: transform only the points it was fitted "
                             "on (mu[view.indices_]); use a PCA view to place new points")
        return self.embedding_.clone()


def fit_view(mu: torch.Tensor, method: str = "auto", *, seed: int = 0, max_tsne_points: int = 2000) -> LatentView:
    """A 2-D view fitted on latent codes mu (N, D). auto: identity for D <= 2, else pca."""
    if method not in VIEW_METHODS:
        raise ValueError(f"view method must be one of {', '.join(VIEW_METHODS)}, got {method!r}")
    d = _latent_dim_of(mu)
    if method == "auto":
        method = "identity" if d <= 2 else "pca"
    if method == "identity":
        return IdentityView().fit(mu)
    if method == "pca":
        return PCAView().fit(mu)
    return TSNEView(seed=seed, max_points=max_tsne_points).fit(mu)


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
    a = view.linear_map()  # (2, D)
    _check_codes(mu, view.latent_dim_, "mu")
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


def _latent_dim_of(mu: torch.Tensor) -> int:
    if mu.ndim != 2 or mu.shape[1] < 1:
        raise ValueError(f"mu must be latent codes (N, D), got shape {tuple(mu.shape)}")
    return mu.shape[1]
