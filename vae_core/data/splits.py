"""What every source returns: a DataSplit of a train and a test Dataset of tensors, and the JSON-able recipe
(`spec`) that loads the same split again."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vae_core.data.checks import MIN_IMAGES, _check_split_settings
from vae_core.errors import DataError


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensor fields with == would be ambiguous
class Dataset:
    """Images, class labels and, for shapes, the ground-truth generative factors."""

    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    y: torch.Tensor  # (N,) int64 class indices 0..K-1
    label_names: tuple[str, ...]  # K names
    factors: torch.Tensor | None = None  # (N, F) int64 factor indices (shapes, or an .npz with factors)
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()  # number of distinct values of each factor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True, eq=False)
class DataSplit:
    """A train and a test set, and the recipe (`spec`) that loads the same split again."""

    train: Dataset
    test: Dataset
    spec: dict  # JSON-able; see load_from_spec

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image: (channels, height, width)."""
        c, h, w = self.train.x.shape[1:]
        return (c, h, w)

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return len(self.train.label_names)

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names, indexed by label."""
        return self.train.label_names

    @property
    def name(self) -> str:
        """Short human name: a built-in id or the user file's base name."""
        return str(self.spec.get("name") or self.spec.get("source") or "data")  # hand-made splits may lack a name


def _split_indices(n: int, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic random (train, test) index arrays, each sorted, for n items."""
    if n < MIN_IMAGES:
        raise DataError(f"only {n} images: need at least {MIN_IMAGES} to split into train and test sets; add more")
    # A private generator, not the global RNG: several threads may load data at once.
    perm = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, round(n * test_fraction)), n - 2)  # keep >= 1 test and >= 2 train images
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _to_tensor(x: np.ndarray, scale: float) -> torch.Tensor:
    """(N, H, W, C) array of values in [0, scale] -> (N, C, H, W) float32 tensor in [0, 1]."""
    out = np.ascontiguousarray(np.moveaxis(x, -1, 1), dtype=np.float32)
    if scale != 1:
        out /= scale
    return torch.from_numpy(out)


def _dataset(
    x: np.ndarray,
    y: np.ndarray,
    label_names: tuple[str, ...],
    scale: float,
    factors: np.ndarray | None = None,
    factor_names: tuple[str, ...] = (),
    factor_sizes: tuple[int, ...] = (),
) -> Dataset:
    """Wrap (N, H, W, C) images in [0, scale] and labels 0..K-1 as a Dataset of tensors."""
    return Dataset(
        x=_to_tensor(x, scale),
        y=torch.from_numpy(np.array(y, dtype=np.int64)),
        label_names=label_names,
        factors=None if factors is None else torch.from_numpy(np.array(factors, dtype=np.int64)),
        factor_names=factor_names,
        factor_sizes=factor_sizes,
    )


def _random_split(
    x: np.ndarray,
    y: np.ndarray,
    label_names: tuple[str, ...],
    scale: float,
    spec: dict,
    factors: np.ndarray | None = None,
    **factor_info,
) -> DataSplit:
    """Split one pool of (N, H, W, C) images by spec['seed'] and spec['test_fraction']."""
    train, test = _split_indices(len(x), spec["seed"], spec["test_fraction"])
    parts = []
    for idx in (train, test):  # index before converting to float: halves the peak memory
        f = None if factors is None else factors[idx]
        parts.append(_dataset(x[idx], y[idx], label_names, scale, f, **factor_info))
    return DataSplit(train=parts[0], test=parts[1], spec=spec)


def _given_split(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    label_names: tuple[str, ...],
    scales: tuple[float, float],
    spec: dict,
    factors: np.ndarray | None = None,
    **factor_info,
) -> DataSplit:
    """Keep a split that came with the data (MNIST, Keras-style .npz); scales: value range of each part.
    factors (with factor_names, factor_sizes): one row per image of the test part, the part metrics are read on."""
    if len(x_train) < 2 or len(x_test) < 1 or len(x_train) + len(x_test) < MIN_IMAGES:
        raise DataError(
            f"{len(x_train)} train and {len(x_test)} test images: need at least 2 train, 1 test "
            f"and {MIN_IMAGES} in all; add more images"
        )
    return DataSplit(
        train=_dataset(x_train, y_train, label_names, scales[0]),
        test=_dataset(x_test, y_test, label_names, scales[1], factors, **factor_info),
        spec=spec,
    )


def _make_spec(
    source: str, name: str, seed: int, test_fraction: float, image_size: int, fingerprint: str, **extra
) -> dict:
    """The JSON-able recipe stored with a model; `load_from_spec` reads it back."""
    _check_split_settings(seed, test_fraction)
    return {
        "source": source,
        "name": name,
        "seed": int(seed),
        "test_fraction": float(test_fraction),
        "image_size": int(image_size),
        "fingerprint": fingerprint,
        **extra,
    }
