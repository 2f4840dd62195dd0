"""How every function of this package runs the model: in eval mode under no_grad (the training flag restored
afterwards), in batches bounded by the memory budget, with the CVAE's labels and the tensors' shapes checked."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

Labels = int | torch.Tensor | None


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


def _subsample(n: int, m: int, seed: int) -> torch.Tensor:
    """At most m of n row indices (M,), sorted, the same for the same seed: t-SNE is O(N log N) per step."""
    if n <= m:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:m].sort().values
