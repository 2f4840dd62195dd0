"""The built-in sources by id: scikit-learn's 8x8 digits (here), the shapes set and MNIST-like sets."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from vae_core.data.checks import _check_native_size, _check_split_settings
from vae_core.data.mnist import _load_mnist_like
from vae_core.data.shapes import _load_shapes
from vae_core.data.splits import DataSplit, _make_spec, _random_split
from vae_core.data.user_files import _sha256_arrays

BUILTIN_SOURCES: tuple[str, ...] = ("digits", "shapes", "shapes64", "mnist", "fashion-mnist")


def _load_builtin(
    source: str, *, seed: int, image_size: int | None, test_fraction: float, cache_dir: str | None
) -> DataSplit:
    """Dispatch a built-in id to its loader."""
    _check_split_settings(seed, test_fraction)
    if source == "digits":
        return _load_digits(seed, image_size, test_fraction)
    if source in ("shapes", "shapes64"):
        return _load_shapes(source, seed, image_size, test_fraction)
    return _load_mnist_like(source, seed, image_size, test_fraction, cache_dir)


def _load_digits(seed: int, image_size: int | None, test_fraction: float) -> DataSplit:
    """scikit-learn's 8x8 handwritten digits (1,797 images, shipped with the package: offline)."""
    _check_native_size("digits", 8, 8, image_size)
    x, y = _digits_arrays()
    spec = _make_spec("digits", "digits", seed, test_fraction, 8, _sha256_arrays(x, y))
    return _random_split(x[..., None], y, tuple(str(d) for d in range(10)), 16.0, spec)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Digits as read-only (1797, 8, 8) uint8 values 0..16 and (1797,) int64 labels."""
    table = _digits_table()  # (1797, 65): 64 pixel values, then the label
    x, y = table[:, :64].reshape(-1, 8, 8).astype(np.uint8), table[:, 64].astype(np.int64)
    x.flags.writeable = y.flags.writeable = False  # shared by every caller through the cache
    return x, y


def _digits_table() -> np.ndarray:
    """The digits file scikit-learn ships, read as load_digits reads it, but without importing scikit-learn: that
    import takes 1.5 s, more than the rest of a digits training's start-up. Falls back to load_digits if the file
    has moved in another scikit-learn version."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is not None and path.is_file():
        return np.loadtxt(path, delimiter=",")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.concatenate([bunch.data, bunch.target[:, None]], axis=1)
