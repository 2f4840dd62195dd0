"""Nearest neighbours: in pixels or between codes ("is it just copying?"), and the tile nearest a point."""
from __future__ import annotations

import torch

from vae_core.latent._plumbing import Labels, _batches, _subsample
from vae_core.latent.encoding import encode_dataset

_NEIGHBOUR_CHUNK_VALUES = 4_000_000  # floats a query chunk may hold at once (its distances or candidate diffs)
_NEIGHBOUR_MARGIN = 8  # extra candidates re-ranked with exact distances after the fast matmul-based pass


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
