"""Grids over a plane of the latent space: its extent (the prior's box or the data's range), its points, their
decoded images, and where to draw the picture so that each tile sits on its code."""
from __future__ import annotations

import torch

from vae_core.latent._plumbing import Labels, _labels, _vector
from vae_core.latent.decoding import decode
from vae_core.latent.views import LatentView


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
        if view.latent_dim_ != d:
            raise ValueError(f"the view was fitted on D = {view.latent_dim_} codes but the model has D = {d}")
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


def code_radius(mu: torch.Tensor, quantile: float = 0.99) -> float:
    """How far from 0 the codes reach: the `quantile` of |mu| over every code and dimension of mu (N, D). For an
    autoencoder, whose codes are not tied to the prior's scale, this sizes a slider range that covers the data."""
    if mu.ndim != 2 or mu.numel() == 0:
        raise ValueError(f"mu must be a non-empty (N, D) batch of codes, got shape {tuple(mu.shape)}")
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    return float(torch.quantile(mu.detach().abs().double().cpu().reshape(-1), quantile))


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
