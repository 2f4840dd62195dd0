"""Data sources for Latent Lab: built-in sets, the user's .npz files and image folders.

Every source ends up as a `DataSplit`: a train and a test `Dataset` of float32 images (N, C, H, W)
in [0, 1] with int64 class labels, plus a JSON-able `spec` from which `load_from_spec` rebuilds
exactly the same split later (a checkpoint stores it).

    split = load_data("digits", seed=0)           # built-in: digits, shapes, shapes64, mnist, fashion-mnist
    split = load_data("my_images.npz")            # x (N, H, W[, C]), optional y and label_names
    split = load_data("pets.zip", image_size=32)  # one sub-folder per class, as a directory or a .zip

User input is untrusted: files are parsed without pickle, sizes are bounded before anything big is
read or unpacked, and every problem is reported as a one-line `DataError` that says what to do.
The cost of one file is bounded before the work (vae_core/budget.py): the memory a load will take is
estimated from the zip directory and the .npy headers or image headers, and refused over `max_bytes`
(default ESTIMATE_LIMIT_BYTES, within the 256 MB promise); a caller that trusts its own big file (the
command line's --max-data-mb) may pass more. A path written in a checkpoint is never opened
(`load_from_spec`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import os
import queue
import socket
import stat
import struct
import threading
import time
import urllib.parse
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import BinaryIO, Iterator

import numpy as np
import torch
from PIL import Image, ImageOps

from vae_core.budget import ESTIMATE_LIMIT_BYTES, check_image_header, zip_members
from vae_core.errors import DataError

BUILTIN_SOURCES: tuple[str, ...] = ("digits", "shapes", "shapes64", "mnist", "fashion-mnist")

# Limits on user data. They keep a bad or hostile file from exhausting memory or disk, and keep
# training on a 2-core laptop sensible.
MIN_IMAGES = 10  # fewest images in a data set: enough for a train part of >= 2 and a test part of >= 1
MAX_SIDE = 256  # largest image height or width, in pixels
MAX_VALUES = 200_000_000  # largest N * C * H * W whatever the memory budget (800 MB as float32)
MAX_CLASSES = 100
MAX_FILE_BYTES = 1 << 30  # largest .npz or .zip file read into memory, in bytes (and never over max_bytes)
# Most images in a .zip or folder (system files not counted). Each costs 150-320 µs of CPU at 32x32 (Pillow's open,
# decode and resize; measured on a 2-core machine at load 6-9): 4,000 is 0.6-1.3 s. Larger sets load as an .npz.
MAX_ZIP_FILES = 4_000
MAX_ZIP_ENTRIES = 2 * MAX_ZIP_FILES + 1_000  # zip directory entries (folders, __MACOSX copies) parsed at most
MAX_ZIP_DIRECTORY_BYTES = 8 << 20  # a .zip's central directory (names), in bytes
MAX_NPZ_MEMBERS = 64  # arrays in an .npz (the loader reads at most 7)
MAX_UNZIPPED_BYTES = 256 << 20  # largest total uncompressed size of a .zip, in bytes
MAX_MEMBER_BYTES = 64 << 20  # largest single file inside a .zip, uncompressed, in bytes
MAX_COMPRESSION_RATIO = 200  # larger ratios on big members are zip bombs, not images
MAX_IMAGE_PIXELS = 40_000_000  # largest single image in an image folder, in pixels (40 megapixels)
# Decoding PNG costs 2.8-4 ns per decoded byte on one core (measured: 8 MP RGB in 0.09 s, 16 MP grey in 0.065 s),
# so 192 MiB of decoded pixels per folder or .zip is at most ~0.8 s; each image is also bounded alone
# (budget.MAX_IMAGE_DECODED_BYTES: 48 MiB), and the decoding stops at the image that would pass the total.
MAX_FOLDER_DECODED_BYTES = 192 << 20
_CONVERT_CHUNK_PIXELS = 1 << 20  # 16/32-bit images are scaled to 8 bits this many pixels at a time (8 MB of float64)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")

# The procedural shapes set (dSprites-like): fixed content, whatever the split seed.
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
SHAPE_FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPE_FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
SHAPES_COUNT = 20_000
_SHAPES_GENERATION_SEED = 0
_SHAPE_RADIUS = 0.2  # radius of the disc that holds a sprite at max scale, as a fraction of the image side
_RENDER_CHUNK = 4096  # sprites rendered at once: bounds the float temporaries to ~13 MB each at 64x64

_MNIST_LIKE = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # source id -> torchvision class
# All 70,000 MNIST images ship with the package (see vae_core/datasets/MNIST-LICENSE.md): 'mnist' needs no network.
# `python -m vae_core data pack-mnist` rebuilds the file, byte for byte (vae_core/mnist_bundle.py).
MNIST_BUNDLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets", "mnist.npz")
MNIST_BUNDLE_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
MNIST_COPY = "bundled: all 70,000 MNIST images (vae_core/datasets/mnist.npz)"  # a split's spec["copy"]
_NETWORK_PROBE_SECONDS = 3.0
_DOWNLOAD_SOCKET_SECONDS = 20.0  # a stalled download fails after this long without data
_socket_timeout_lock = threading.Lock()


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensor fields with == would be ambiguous
class Dataset:
    """Images, class labels and, for shapes, the ground-truth generative factors."""

    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    y: torch.Tensor  # (N,) int64 class indices 0..K-1
    label_names: tuple[str, ...]  # K names
    factors: torch.Tensor | None = None  # (N, F) int64 factor indices (shapes only)
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


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def load_data(
    source: str | os.PathLike,
    *,
    seed: int = 0,
    image_size: int | None = None,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    max_bytes: int | None = None,
) -> DataSplit:
    """Load a built-in data set by id, or a user .npz file, .zip or folder by path, split by `seed`.

    max_bytes: the memory (bytes) a user file's load may take by the estimate, default ESTIMATE_LIMIT_BYTES.
    """
    if isinstance(source, str) and source in BUILTIN_SOURCES:
        return _load_builtin(source, seed=seed, image_size=image_size, test_fraction=test_fraction, cache_dir=cache_dir)
    path = os.fspath(source)
    if path.lower().endswith(".npz"):
        split = load_npz(path, seed=seed, test_fraction=test_fraction, max_bytes=max_bytes)
        _check_native_size(split.name, *split.input_shape[1:], image_size)
        return split
    if path.lower().endswith(".zip") or os.path.isdir(path):
        return load_image_folder(path, image_size=image_size or 32, seed=seed, test_fraction=test_fraction,
                                 max_bytes=max_bytes)
    known = ", ".join(repr(s) for s in BUILTIN_SOURCES)
    problem = "no such file or folder" if not os.path.exists(path) else "not a .npz file, .zip or folder"
    raise DataError(
        f"unknown data source {path!r} ({problem}): use one of {known}, "
        "or the path of a .npz file, a .zip of class folders or a folder of class folders"
    )


def load_from_spec(
    spec: dict,
    *,
    file: BinaryIO | None = None,
    cache_dir: str | None = None,
    allow_paths: bool = False,
    max_bytes: int | None = None,
) -> DataSplit:
    """Reload the split a checkpoint was trained on; refuse a user file that is missing or changed.

    A spec has "source" (a built-in id, "npz" or "image_folder"), "name", "seed", "test_fraction",
    "image_size" (pixels) and "fingerprint" (sha256 of the file's bytes, of a folder's files, or of a
    built-in set's arrays); user sources add "path" (absolute, or None for an upload).

    No path written in a spec is ever opened unless the caller passes allow_paths=True, which only a caller
    that trusts the spec may do (one it wrote itself, never one read from an uploaded or downloaded
    checkpoint): a checkpoint is untrusted, and its path could name /dev/zero, a FIFO, another user's
    files or a folder of links. Built-in data comes from its name alone. User data comes from `file` (the
    same bytes, checked against the fingerprint); without it the spec is refused with a message that says
    to provide the file.
    """
    source, seed, test_fraction, image_size, fingerprint = _parse_spec(spec)
    if source in BUILTIN_SOURCES:
        split = _load_builtin(
            source, seed=seed, image_size=image_size, test_fraction=test_fraction, cache_dir=cache_dir
        )
        if fingerprint is not None and split.spec["fingerprint"] != fingerprint:
            raise DataError(
                f"the built-in data set {source!r} differs from the one this model was trained on "
                "(made by another version of the library): train the model again"
            )
        return split

    path, name = spec.get("path"), os.path.basename(str(spec.get("name") or "data"))[:200] or "data"
    if path is not None and not isinstance(path, str):
        raise DataError(f"the data recipe has a malformed path {str(path)[:100]!r}: train the model again")
    if file is None and (path is None or not allow_paths):
        if path is None:
            raise DataError(
                f"the model was trained on the uploaded file {name!r}: upload {name!r} again to reload its data"
            )
        raise DataError(
            f"the model was trained on the file {name!r}, which is not opened from the path the checkpoint names "
            f"(paths in model files are never followed): provide {name!r} itself (upload it, or pass --data)"
        )
    if file is None and not os.path.exists(path):
        raise DataError(
            f"the data file {path!r} the model was trained on is missing: put it back, or train a new model"
        )
    _check_split_settings(seed, test_fraction)
    limit = _max_bytes(max_bytes)
    blob, abs_path, name = _open_user_data(file if file is not None else path, name, limit)
    actual = _sha256(blob) if blob is not None else _hash_tree(abs_path)
    if actual != fingerprint:
        raise DataError(
            f"the data {name!r} changed since the model was trained (its content hash differs): "
            "restore the original file, or train a new model on the new data"
        )
    if source == "npz":
        if blob is None:
            raise DataError(f"{name!r} is a folder, but the model was trained on a .npz file: give the .npz file")
        return _npz_split(blob, path=abs_path, name=name, seed=seed, test_fraction=test_fraction, max_bytes=limit)
    _check_int("image_size", image_size, 4, MAX_SIDE)
    return _folder_split(blob, abs_path, name, image_size=image_size, seed=seed, test_fraction=test_fraction,
                         max_bytes=limit)


def spec_cache_key(spec: dict, file: bytes | None = None) -> str:
    """A cache key for the data of `spec` loaded with `file` (bytes or None): the spec and the sha256 of the bytes
    actually given. A key from the spec alone would hand data loaded from one user's upload to anyone holding a
    checkpoint that names its fingerprint (issue 15, finding 11)."""
    import json

    content = hashlib.sha256(bytes(file)).hexdigest() if file is not None else "no-file"
    return json.dumps({"spec": spec, "file_sha256": content}, sort_keys=True, default=str)


def load_npz(
    file: str | os.PathLike | BinaryIO,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    name: str | None = None,
    max_bytes: int | None = None,
    test_only: bool = False,
) -> DataSplit:
    """Load images from a .npz file (a path or a binary file-like object, e.g. an upload).

    Bounded before reading any array: members compressed with anything but deflate, non-numeric arrays, sizes
    that disagree with the zip directory, and loads estimated over max_bytes (bytes) are refused. With test_only,
    a Keras-style file's x_train/y_train are neither read nor counted (for evaluation: a full MNIST file's test
    part fits the budget where the whole file does not), and a file with a single x is all test; the split's
    train part is then its test part.
    """
    _check_split_settings(seed, test_fraction)
    limit = _max_bytes(max_bytes)
    blob, path, name = _open_user_data(file, name, limit)
    if blob is None:
        raise DataError(f"{name!r} is a folder, not a .npz file: give the path of a .npz file")
    return _npz_split(blob, path=path, name=name, seed=seed, test_fraction=test_fraction, max_bytes=limit,
                      test_only=test_only)


def load_image_folder(
    path_or_file: str | os.PathLike | BinaryIO,
    *,
    image_size: int = 32,
    seed: int = 0,
    test_fraction: float = 0.2,
    name: str | None = None,
    max_bytes: int | None = None,
) -> DataSplit:
    """Load a folder (or .zip) with one sub-folder of images per class, resized to image_size pixels.

    A .zip is read in memory, never unpacked to disk. Bounded before the work: the zip directory (entries,
    sizes, compression ratios), each image's header (pixels and decoded bytes), the decoding done in all, and
    the memory of the result (estimated, at most max_bytes bytes).
    """
    _check_int("image_size", image_size, 4, MAX_SIDE)
    _check_split_settings(seed, test_fraction)
    limit = _max_bytes(max_bytes)
    blob, path, name = _open_user_data(path_or_file, name, limit)
    return _folder_split(blob, path, name, image_size=image_size, seed=seed, test_fraction=test_fraction,
                         max_bytes=limit)


def _max_bytes(max_bytes: int | None) -> int:
    """The memory budget of one load, in bytes: the caller's, or ESTIMATE_LIMIT_BYTES."""
    if max_bytes is None:
        return ESTIMATE_LIMIT_BYTES
    _check_int("max_bytes", max_bytes, 1 << 20, 1 << 40)
    return int(max_bytes)


# ---------------------------------------------------------------------------------------------
# Splitting and building tensors
# ---------------------------------------------------------------------------------------------


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
) -> DataSplit:
    """Keep a split that came with the data (MNIST, Keras-style .npz); scales: value range of each part."""
    if len(x_train) < 2 or len(x_test) < 1 or len(x_train) + len(x_test) < MIN_IMAGES:
        raise DataError(
            f"{len(x_train)} train and {len(x_test)} test images: need at least 2 train, 1 test "
            f"and {MIN_IMAGES} in all; add more images"
        )
    return DataSplit(
        train=_dataset(x_train, y_train, label_names, scales[0]),
        test=_dataset(x_test, y_test, label_names, scales[1]),
        spec=spec,
    )


def _check_split_settings(seed: object, test_fraction: object) -> None:
    """Raise DataError unless seed is an int >= 0 and 0 < test_fraction < 1 (checked before slow loading)."""
    _check_int("seed", seed, 0, 2**63 - 1)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise DataError(f"test_fraction is {test_fraction!r}: use a number between 0 and 1, e.g. 0.2")


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


def _parse_spec(spec: dict) -> tuple[str, int, float, int | None, str | None]:
    """Check a stored spec's fields: (source, seed, test_fraction, image_size, fingerprint)."""
    if not isinstance(spec, dict) or "source" not in spec:
        raise DataError("the data recipe is malformed (no 'source'): train the model again")
    source = spec["source"]
    if source not in BUILTIN_SOURCES and source not in ("npz", "image_folder"):
        raise DataError(f"the data recipe names an unknown source {source!r}: train the model again")
    if source not in BUILTIN_SOURCES and not isinstance(spec.get("fingerprint"), str):
        raise DataError("the data recipe has no content hash for its file: train the model again")
    return (
        source,
        spec.get("seed", 0),
        spec.get("test_fraction", 0.2),
        spec.get("image_size"),
        spec.get("fingerprint"),
    )


def _check_int(what: str, value: object, low: int, high: int) -> None:
    """Raise DataError unless value is an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise DataError(f"{what} is {value!r}: use a whole number from {low} to {high}")


def _check_native_size(name: str, height: int, width: int, image_size: int | None) -> None:
    """Sources of fixed size accept image_size only when it matches a side (resizing is for image folders)."""
    if image_size is not None and image_size not in (height, width):
        raise DataError(
            f"image_size={image_size} does not apply to {name!r} (its images are {height}x{width}): "
            "leave image_size unset, or use an image folder, which is resized"
        )


# ---------------------------------------------------------------------------------------------
# Built-in sources
# ---------------------------------------------------------------------------------------------


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
    from sklearn.datasets import load_digits  # imported here: sklearn takes a second to import

    bunch = load_digits()
    x, y = bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False  # shared by every caller through the cache
    return x, y


def _load_shapes(source: str, seed: int, image_size: int | None, test_fraction: float) -> DataSplit:
    """The procedural shapes set at 32x32 ('shapes') or 64x64 ('shapes64'), split by `seed`."""
    size = 64 if source == "shapes64" else 32
    _check_native_size(source, size, size, image_size)
    images, factors, fingerprint = _shapes_arrays(size)
    spec = _make_spec(source, source, seed, test_fraction, size, fingerprint)
    return _random_split(
        images[..., None],
        factors[:, 0],
        SHAPE_NAMES,
        1.0,
        spec,
        factors=factors,
        factor_names=SHAPE_FACTOR_NAMES,
        factor_sizes=SHAPE_FACTOR_SIZES,
    )


@functools.lru_cache(maxsize=2)
def _shapes_arrays(image_size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The fixed shapes set as read-only arrays, with its content hash (cached: the app reloads often)."""
    images, factors = make_shapes(SHAPES_COUNT, image_size, seed=_SHAPES_GENERATION_SEED)
    images.flags.writeable = factors.flags.writeable = False
    return images, factors, _sha256_arrays(images, factors)


def _load_mnist_like(
    source: str, seed: int, image_size: int | None, test_fraction: float, cache_dir: str | None
) -> DataSplit:
    """MNIST (bundled) or Fashion-MNIST (torchvision, downloaded once into the cache), with their 60k/10k split.

    An MNIST split's spec says which copy it came from in spec["copy"]; the fingerprint is computed as for a
    torchvision copy (uint8 images, int64 labels), so models trained on torchvision's MNIST still reload.
    """
    _check_native_size(source, 28, 28, image_size)
    if source == "mnist":
        train_x, train_y, test_x, test_y, fingerprint = mnist_arrays()
        names, extra = tuple(str(d) for d in range(10)), {"copy": MNIST_COPY}
    else:
        train_x, train_y, test_x, test_y, classes = _mnist_arrays(source, cache_dir)
        names, extra = tuple(classes), {}
        fingerprint = _sha256_arrays(train_x, train_y, test_x, test_y)
    spec = _make_spec(source, source, seed, test_fraction, 28, fingerprint, **extra)
    return _given_split(train_x[..., None], train_y, test_x[..., None], test_y, names, (255.0, 255.0), spec)


def mnist_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The bundled MNIST, read-only: x_train (60000, 28, 28) uint8, y_train int64, x_test, y_test, fingerprint."""
    return _bundled_mnist(MNIST_BUNDLE)


@functools.lru_cache(maxsize=1)
def _bundled_mnist(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The bundled MNIST as read-only (train x, train y, test x, test y, fingerprint), checked against its sha256.

    Images are uint8 (N, 28, 28), labels int64. Cached: the file is read and checked once per process.
    """
    restore = (
        "restore it with `git checkout -- vae_core/datasets/mnist.npz`, "
        "or rebuild it with `python -m vae_core data pack-mnist`"
    )
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise DataError(f"the bundled MNIST copy {path} is missing: {restore}") from None
    except OSError as e:
        raise DataError(f"cannot read the bundled MNIST copy {path} ({e.strerror}): {restore}") from e
    actual = _sha256(blob)
    if actual != MNIST_BUNDLE_SHA256:
        raise DataError(
            f"the bundled MNIST copy {path} is damaged or not the expected file "
            f"(sha256 {actual[:12]}..., expected {MNIST_BUNDLE_SHA256[:12]}...): {restore}"
        )
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        x_train, x_test = npz["x_train"], npz["x_test"]
        y_train, y_test = npz["y_train"].astype(np.int64), npz["y_test"].astype(np.int64)
    arrays = (x_train, y_train, x_test, y_test)
    for a in arrays:
        a.flags.writeable = False  # shared by every caller through the cache
    return (*arrays, _sha256_arrays(*arrays))


def _mnist_arrays(
    source: str, cache_dir: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(train images, train labels, test images, test labels, class names) from the cache, downloading if needed.

    Torchvision's copies: used for Fashion-MNIST ('mnist' loads the bundled copy, see _bundled_mnist).
    """
    import torchvision.datasets  # imported here: only the downloaded sources need torchvision

    cls = getattr(torchvision.datasets, _MNIST_LIKE[source])
    root = (
        cache_dir or os.environ.get("LATENT_LAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "latent_lab")
    )
    title = "MNIST" if source == "mnist" else "Fashion-MNIST"
    try:
        parts = [cls(root, train=train, download=False) for train in (True, False)]
    except RuntimeError:  # torchvision's "Dataset not found": not in the cache yet
        parts = None
    except Exception as e:  # a half-written or corrupt cache
        raise DataError(
            f"the cached {title} files in {root} are unreadable ({e}): delete that folder and try again"
        ) from e
    if parts is None:
        offline = (
            f"could not download {title} (no network?): use 'mnist' (bundled), 'digits' or 'shapes', "
            "or bring your own .npz or image folder"
        )
        # torchvision retries each mirror with no time-out; a short probe first makes offline fail fast.
        if not _any_reachable(cls.mirrors):
            raise DataError(offline)
        try:
            with _socket_timeout(_DOWNLOAD_SOCKET_SECONDS):
                parts = [cls(root, train=train, download=True) for train in (True, False)]
        except Exception as e:  # URLError, HTTP errors, checksum failures, a full disk...
            raise DataError(f"{offline} [{type(e).__name__}: {e}]") from e
    train, test = parts
    return train.data.numpy(), train.targets.numpy(), test.data.numpy(), test.targets.numpy(), list(cls.classes)


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Give sockets opened meanwhile a default time-out: torchvision's urlopen calls set none."""
    # The default is process-wide, so it is set only if unset and always restored; the lock keeps
    # two concurrent downloads from restoring each other's value.
    with _socket_timeout_lock:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(seconds if previous is None else previous)
        try:
            yield
        finally:
            socket.setdefaulttimeout(previous)


def _any_reachable(urls: list[str], timeout: float = _NETWORK_PROBE_SECONDS) -> bool:
    """True if a TCP connection to any of the URLs' hosts opens within `timeout` seconds."""
    results: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def probe(url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                results.put(True)
        except (OSError, UnicodeError):
            results.put(False)

    # Daemon threads, because a DNS look-up ignores socket time-outs and could hang the caller.
    for url in urls:
        threading.Thread(target=probe, args=(url,), daemon=True).start()
    deadline = time.monotonic() + timeout + 0.5
    for _ in urls:  # return at the first success, or once every probe has failed
        try:
            if results.get(timeout=max(0.0, deadline - time.monotonic())):
                return True
        except queue.Empty:
            return False
    return False


# ---------------------------------------------------------------------------------------------
# Procedural shapes
# ---------------------------------------------------------------------------------------------


def make_shapes(n: int, image_size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random sprites: images (n, S, S) uint8 in {0, 1} and their factor indices (n, 5) int64."""
    _check_int("n", n, 1, 10_000_000)
    _check_int("image_size", image_size, 8, MAX_SIDE)
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(SHAPE_FACTOR_SIZES), size=(n, len(SHAPE_FACTOR_SIZES)), dtype=np.int64)
    return render_shapes(factors, image_size), factors


def render_shapes(factors: np.ndarray, image_size: int) -> np.ndarray:
    """Draw one sprite per row of factor indices (shape, scale, orientation, pos_x, pos_y): (n, S, S) uint8."""
    factors = np.asarray(factors, dtype=np.int64).reshape(-1, len(SHAPE_FACTOR_SIZES))
    if (factors < 0).any() or (factors >= np.array(SHAPE_FACTOR_SIZES)).any():
        raise DataError(f"shape factor indices out of range: each column must be below {SHAPE_FACTOR_SIZES}")
    s = image_size
    images = np.zeros((len(factors), s, s), dtype=np.uint8)
    r_max = _SHAPE_RADIUS * s  # pixels
    # Only a window around each sprite is evaluated, not the whole frame: 5x less work at 64x64.
    win = min(s, math.ceil(2 * r_max) + 2)
    for start in range(0, len(factors), _RENDER_CHUNK):
        _render_chunk(images, factors[start : start + _RENDER_CHUNK], start, r_max, win)
    return images


def _render_chunk(images: np.ndarray, factors: np.ndarray, start: int, r_max: float, win: int) -> None:
    """Render factors into images[start : start + len(factors)] by testing each window pixel's centre."""
    s = images.shape[1]
    shape, scale, orient, pos_x, pos_y = factors.T
    radius = r_max * (0.5 + 0.5 * scale / (SHAPE_FACTOR_SIZES[1] - 1))  # pixels, 0.5..1.0 of the max
    theta = 2 * np.pi * orient / SHAPE_FACTOR_SIZES[2]  # radians in [0, 2 pi)
    # Positions in [0, 1] map to centres that keep a sprite at max scale (and any rotation) in frame.
    cx = r_max + pos_x / (SHAPE_FACTOR_SIZES[3] - 1) * (s - 2 * r_max)
    cy = r_max + pos_y / (SHAPE_FACTOR_SIZES[4] - 1) * (s - 2 * r_max)
    x0 = np.clip(np.floor(cx - r_max).astype(np.int64), 0, s - win)  # window corner, pixels
    y0 = np.clip(np.floor(cy - r_max).astype(np.int64), 0, s - win)
    grid = np.arange(win)
    # Pixel centres relative to the sprite centre, in units of its radius (the sprite's unit disc).
    dx = ((x0[:, None] + grid + 0.5 - cx[:, None]) / radius[:, None]).astype(np.float32)
    dy = ((y0[:, None] + grid + 0.5 - cy[:, None]) / radius[:, None]).astype(np.float32)
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    for k, inside in enumerate(_SHAPE_TESTS):
        sel = np.flatnonzero(shape == k)
        c, sn = cos[sel, None, None], sin[sel, None, None]
        u = c * dx[sel, None, :] + sn * dy[sel, :, None]  # (m, rows, cols): rotate into the sprite frame
        v = c * dy[sel, :, None] - sn * dx[sel, None, :]
        rows = (y0[sel, None] + grid)[:, :, None]
        cols = (x0[sel, None] + grid)[:, None, :]
        images[(start + sel)[:, None, None], rows, cols] = inside(u, v)


def _inside_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Square whose corners touch the unit disc."""
    return np.maximum(np.abs(u), np.abs(v)) <= np.float32(1 / math.sqrt(2))


def _inside_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Ellipse with semi-axes 1 (along u) and 0.5, so orientation shows."""
    return u * u + 4 * v * v <= 1


def _inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, lobes up, scaled and shifted into the unit disc."""
    # The curve spans x in [-1.14, 1.14], y in [-1, 1.24]; its smallest enclosing circle is centred
    # at (0, 0.25) with radius 1.25. Image v points down, so y = -v.
    x = 1.25 * u
    y = 0.25 - 1.25 * v
    q = x * x + y * y - 1
    return q * q * q - x * x * y * y * y <= 0


_SHAPE_TESTS = (_inside_square, _inside_ellipse, _inside_heart)  # in the order of SHAPE_NAMES


# ---------------------------------------------------------------------------------------------
# User files: reading, hashing
# ---------------------------------------------------------------------------------------------


def _open_user_data(
    source: str | os.PathLike | BinaryIO, name: str | None, max_bytes: int = MAX_FILE_BYTES
) -> tuple[bytes | None, str | None, str]:
    """(file bytes or None for a directory, absolute path or None for an upload, display name).

    A file over min(MAX_FILE_BYTES, max_bytes) is refused from its size, before it is read.
    """
    limit = min(MAX_FILE_BYTES, max_bytes)
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        display = name or os.path.basename(path.rstrip(os.sep)) or path
        if os.path.isdir(path):
            return None, path, display
        if not os.path.isfile(path):
            raise DataError(f"file not found: {path!r}: check the path")
        size = os.path.getsize(path)
        if size > limit:
            raise DataError(
                f"{display!r} is {size / 2**20:.0f} MiB, over the {limit >> 20} MiB limit: use a smaller file"
            )
        try:
            with open(path, "rb") as f:
                return f.read(limit + 1), path, display
        except OSError as e:
            raise DataError(f"cannot read {path!r} ({e.strerror}): check the file's permissions") from e
    if not (hasattr(source, "getvalue") or hasattr(source, "read")):
        raise TypeError(f"expected a path or a binary file-like object, got {type(source).__name__}")
    display = os.path.basename(name or getattr(source, "name", None) or "upload") or "upload"
    return _read_upload(source, display, limit), None, display


def _read_upload(file: BinaryIO, display: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """All bytes of an uploaded file-like object (Streamlit's UploadedFile has getvalue()), at most `limit`."""
    if hasattr(file, "getvalue"):
        blob = file.getvalue()
    else:
        if hasattr(file, "seek"):
            file.seek(0)
        blob = file.read(limit + 1)
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise DataError(f"{display!r} was not opened in binary mode: pass the uploaded file or open(path, 'rb')")
    if len(blob) > limit:
        raise DataError(f"{display!r} is over the {limit >> 20} MiB limit: use a smaller file")
    return bytes(blob)


def _sha256(blob: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(blob).hexdigest()


def _sha256_arrays(*arrays: np.ndarray) -> str:
    """Hex sha256 of arrays' dtypes, shapes and contents (the fingerprint of a built-in set)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _hash_tree(root: str) -> str:
    """Hex sha256 of every non-ignored file's relative path and content under a directory."""
    h = hashlib.sha256()
    for rel in _walk_files(root):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        with open(os.path.join(root, rel), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _is_ignored(name: str) -> bool:
    """Hidden files and folders and OS clutter (.DS_Store, __MACOSX/, Thumbs.db) are skipped."""
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _walk_files(root: str) -> list[str]:
    """Sorted '/'-separated relative paths of the non-ignored files under root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d))  # prune, and walk in a fixed order
        rel_dir = os.path.relpath(dirpath, root)
        for f in sorted(filenames):
            if not _is_ignored(f):
                found.append(f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/"))
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# .npz files
# ---------------------------------------------------------------------------------------------


def _npz_split(
    blob: bytes, *, path: str | None, name: str, seed: int, test_fraction: float, max_bytes: int = ESTIMATE_LIMIT_BYTES,
    test_only: bool = False,
) -> DataSplit:
    """Parse .npz bytes (layout x/y/label_names or Keras-style x_train/y_train/x_test/y_test) and split.

    The zip directory and the .npy headers are checked first (_npz_plan): nothing is decompressed before that.
    """
    _npz_plan(blob, name, max_bytes, test_only=test_only)
    npz = _open_npz(blob, name)
    with npz:
        keys = set(npz.files)
        if "x" in keys:
            x = _npz_images(npz, "x", name)
            y = _npz_labels(npz, "y", len(x), name) if "y" in keys else np.zeros(len(x), np.int64)
            y, names = _remap_labels(
                [y], _npz_label_names(npz, name) if "label_names" in keys else None, "y" in keys, name
            )
            y = y[0]
            x, scale = _normalise_values(x, "x", name)
            spec = _make_spec("npz", name, seed, test_fraction, x.shape[1], _sha256(blob), path=path)
            if test_only:  # evaluation on every image of the file
                return _given_split(x, y, x, y, names, (scale, scale), spec)
            return _random_split(x, y, names, scale, spec)
        if {"x_train", "x_test"} <= keys:
            return _keras_split(npz, blob, path, name, seed, test_fraction, test_only=test_only)
    found = ", ".join(sorted(keys)) or "nothing"
    raise DataError(
        f"{name!r} has no array named 'x' (found: {found}): save it with np.savez(path, x=images, y=labels) "
        "or with x_train, y_train, x_test, y_test"
    )


def _keras_split(npz, blob: bytes, path: str | None, name: str, seed: int, test_fraction: float, *,
                 test_only: bool = False) -> DataSplit:
    """The Keras-style layout: the file's own train/test split is kept (test_only: the test part stands for both)."""
    keys = set(npz.files)
    x_test = _npz_images(npz, "x_test", name)
    x_train = x_test if test_only else _npz_images(npz, "x_train", name)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"x_train images are {x_train.shape[1:]} but x_test images are {x_test.shape[1:]} in {name!r}: "
            "make both the same size and channel count"
        )
    has_y = {"y_train", "y_test"} & keys
    if has_y and has_y != {"y_train", "y_test"}:
        raise DataError(f"{name!r} has {has_y.pop()} but not its partner: save both y_train and y_test, or neither")
    if has_y:
        y_test = _npz_labels(npz, "y_test", len(x_test), name)
        ys = [y_test if test_only else _npz_labels(npz, "y_train", len(x_train), name), y_test]
    else:
        ys = [np.zeros(len(x_train), np.int64), np.zeros(len(x_test), np.int64)]
    names_given = _npz_label_names(npz, name) if "label_names" in keys else None
    (y_train, y_test), names = _remap_labels(ys, names_given, bool(has_y), name)
    x_train, scale_train = _normalise_values(x_train, "x_train", name)
    x_test, scale_test = _normalise_values(x_test, "x_test", name)
    spec = _make_spec("npz", name, seed, test_fraction, x_train.shape[1], _sha256(blob), path=path)
    return _given_split(x_train, y_train, x_test, y_test, names, (scale_train, scale_test), spec)


_NPZ_KEYS = ("x", "y", "label_names", "x_train", "y_train", "x_test", "y_test")  # the members the loader reads
_NUMERIC_KINDS = "biuf"  # bool, int, uint, float: what images may be
_LABEL_KINDS = "biufUS"  # labels and class names may also be text
_MAX_TEXT_ITEMSIZE = 1024  # bytes per label or class name: 256 characters of UTF-32
_COMPRESSION_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}


def _npz_plan(blob: bytes, name: str, max_bytes: int, *, test_only: bool = False
              ) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Check an .npz from its zip directory and its members' .npy headers alone; {key: (shape, dtype)}.

    Refused before any array is read: a directory too big to parse cheaply; members compressed with bzip2 or LZMA
    (slow to inflate, and their sizes are checked only once inflated), or encrypted; dtypes that are not numbers
    (objects, structures, datetimes, complex) or text where text is allowed (labels, class names); a header whose
    declared size disagrees with the directory's; and a load whose estimated memory is over max_bytes: the file,
    each array read (and one copy of it, made when splitting), the float32 tensors images become, and label work.
    """
    if blob.startswith(b"\x93NUMPY"):
        raise DataError(f"{name!r} is a single .npy array, not an .npz archive: save it with np.savez(path, x=images)")
    try:
        archive = zip_members(blob, repr(name), max_entries=MAX_NPZ_MEMBERS, max_directory_bytes=64 << 10,
                              error=DataError, remedy="save only the arrays x, y and label_names")
    except DataError as e:
        if "corrupt or truncated" not in str(e):
            raise
        raise DataError(
            f"{name!r} is not a readable .npz file (not a complete zip archive): "
            "save the images with np.savez(path, x=images)"
        ) from None
    plan, cost, parts = {}, len(blob), []
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        keras = "x.npy" not in members and "x_test.npy" in members
        skipped = ("x_train", "y_train") if test_only and keras else ()  # neither read nor counted
        for key in (k for k in _NPZ_KEYS if k not in skipped):
            info = members.get(key + ".npy")
            if info is None:
                continue
            _check_member_readable(info, f"array {key!r} in {name!r}", "save the file again without a password",
                                   "save the file with np.savez or np.savez_compressed")
            shape, dtype, header_bytes = _npy_member_header(archive, info, key, name)
            _check_npz_dtype(key, dtype, name)
            count = math.prod(shape)
            if count > MAX_VALUES or dtype.itemsize > _MAX_TEXT_ITEMSIZE:
                raise DataError(
                    f"array {key!r} in {name!r} is too large ({shape}, {dtype}): keep N*C*H*W within {MAX_VALUES:,} values"
                )
            nbytes = count * dtype.itemsize
            if info.file_size != header_bytes + nbytes:
                raise DataError(
                    f"array {key!r} in {name!r} declares {nbytes:,} bytes of data ({shape}, {dtype}) but the archive "
                    f"holds {max(info.file_size - header_bytes, 0):,}: the file is damaged or was edited; save it again"
                )
            is_image = key.startswith("x")
            # the array, one copy (index or astype), then float32 tensors (+ a NaN mask for floats) or label work
            cost += 2 * nbytes + (count * (4 + (dtype.kind == "f")) if is_image else 32 * count)
            parts.append(f"{key} {'x'.join(map(str, shape)) or 'scalar'} {dtype}")
            plan[key] = (tuple(shape), dtype)
    if cost > max_bytes:
        raise DataError(
            f"{name!r} is too large to load here: {', '.join(parts)} would take about {cost / 2**20:,.0f} MiB, "
            f"over the {max_bytes / 2**20:,.0f} MiB limit: use fewer or smaller images, or on the command line "
            f"raise the limit with --max-data-mb {math.ceil(cost / 2**20 / 16) * 16}"
        )
    return plan


def _check_member_readable(info: zipfile.ZipInfo, what: str, unencrypted: str, deflated: str) -> None:
    """A zip member we read must be unencrypted and stored or deflated (bzip2 and LZMA are slow to inflate, and
    their sizes are known only once inflated); `what` names it, the other two say what to do."""
    if info.flag_bits & 0x1:
        raise DataError(f"{what} is encrypted: {unencrypted}")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = _COMPRESSION_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise DataError(f"{what} is compressed with {method}, which is not read: {deflated}")


def _npy_member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, name: str
                       ) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length in bytes) of one .npy member, inflating only its first bytes."""
    try:
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            return tuple(int(n) for n in shape), np.dtype(dtype), f.tell()
    except Exception as e:  # any parse failure means a corrupt member
        raise DataError(f"array {key!r} in {name!r} is corrupt ({type(e).__name__}): save the file again") from e


def _check_npz_dtype(key: str, dtype: np.dtype, name: str) -> None:
    """Images are numbers; labels and class names are numbers or text; nothing is an object or a structure."""
    if dtype.hasobject:
        raise DataError(
            f"array {key!r} in {name!r} holds Python objects (pickled data), which is refused: "
            "save plain numeric arrays (e.g. np.asarray(images, dtype=np.uint8))"
        )
    if key.startswith("x"):
        if dtype.kind not in _NUMERIC_KINDS or dtype.itemsize > 8:
            raise DataError(f"{key} has dtype {dtype}; expected uint8 values 0-255 or floats in [0, 1]")
        return
    if dtype.kind not in _LABEL_KINDS or (dtype.kind in _NUMERIC_KINDS and dtype.itemsize > 8):
        expected = "a list of class names (text)" if key == "label_names" else "integer class labels"
        raise DataError(f"{key} has dtype {dtype}; expected {expected}")
    if dtype.itemsize > _MAX_TEXT_ITEMSIZE:
        raise DataError(f"{key} has text of {dtype.itemsize:,} bytes per item: keep labels and names under 256 characters")


def _open_npz(blob: bytes, name: str) -> np.lib.npyio.NpzFile:
    """np.load the bytes, never unpickling; anything but an .npz archive is a DataError."""
    try:
        loaded = np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(
            f"{name!r} is not a readable .npz file ({type(e).__name__}): save the images with np.savez(path, x=images)"
        ) from e
    if isinstance(loaded, np.ndarray):
        raise DataError(f"{name!r} is a single .npy array, not an .npz archive: save it with np.savez(path, x=images)")
    return loaded


def _npz_header(npz, key: str, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an .npz member, read from its header without loading the data."""
    try:
        with npz.zip.open(key + ".npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    except Exception as e:  # any parse failure means a corrupt member
        raise DataError(f"array {key!r} in {name!r} is corrupt ({type(e).__name__}): save the file again") from e
    return shape, dtype


def _npz_array(npz, key: str, name: str, max_values: int) -> np.ndarray:
    """Load one .npz member after checking its header: no objects, bounded size."""
    shape, dtype = _npz_header(npz, key, name)
    if dtype.hasobject:
        raise DataError(
            f"array {key!r} in {name!r} holds Python objects (pickled data), which is refused: "
            "save plain numeric arrays (e.g. np.asarray(images, dtype=np.uint8))"
        )
    if math.prod(shape) > max_values or dtype.itemsize > 1024:
        raise DataError(
            f"array {key!r} in {name!r} is too large ({shape}, {dtype}): keep N*C*H*W within {MAX_VALUES:,} values"
        )
    try:
        return npz[key]
    except Exception as e:  # truncated data, CRC errors...
        raise DataError(
            f"array {key!r} in {name!r} cannot be read ({type(e).__name__}: {e}): save the file again"
        ) from e


def _npz_images(npz, key: str, name: str) -> np.ndarray:
    """Load and shape-check an image array: (N, H, W) or (N, H, W, C) -> (N, H, W, C), C in {1, 3}."""
    x = _npz_array(npz, key, name, MAX_VALUES)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{key} has {x.ndim} dimensions {x.shape}; expected (N, H, W) or (N, H, W, C) images")
    n, h, w, c = x.shape
    if c not in (1, 3):
        hint = "move channels last with np.moveaxis(x, 1, -1)" if h in (1, 3) else "use 1 (grey) or 3 (RGB) channels"
        hint = "drop the alpha channel with x[..., :3]" if c == 4 else hint
        raise DataError(f"{key} has {c} channels (shape {x.shape}); expected 1 or 3 channels last: {hint}")
    if n == 0 or h == 0 or w == 0:
        raise DataError(f"{key} is empty (shape {x.shape}): save at least {MIN_IMAGES} images")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise DataError(f"{key} images are {h}x{w}, over the {MAX_SIDE}-pixel limit per side: resize them first")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{key} has dtype {x.dtype}; expected uint8 values 0-255 or floats in [0, 1]")
    return x


def _normalise_values(x: np.ndarray, key: str, name: str) -> tuple[np.ndarray, float]:
    """Check pixel values; return (images, scale): ints 0..255 -> scale 255, floats in [0, 1] -> 1."""
    if x.dtype.kind == "b":
        return x.astype(np.uint8), 1.0
    if x.dtype.kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{key} has integer values from {lo} to {hi}; expected 0-255: clip or rescale the images")
        return x, 255.0
    if not np.isfinite(x).all():
        raise DataError(f"{key} contains NaN or inf values: replace them (e.g. np.nan_to_num) before saving")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        hint = "divide by 255, or save uint8 images" if hi <= 255 and lo >= 0 else "rescale them to [0, 1]"
        raise DataError(f"{key} has float values from {lo:g} to {hi:g}; expected [0, 1]: {hint}")
    return x, 1.0


def _npz_labels(npz, key: str, n: int, name: str) -> np.ndarray:
    """Load labels: (N,) or (N, 1) integers, integral floats or strings."""
    y = _npz_array(npz, key, name, MAX_VALUES)
    if y.ndim == 2 and y.shape[1] == 1:  # Keras's CIFAR files store (N, 1)
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{key} has shape {y.shape}; expected one label per image, shape ({n},)")
    if len(y) != n:
        raise DataError(f"{key} has {len(y)} labels but there are {n} images: give one label per image")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise DataError(f"{key} has non-integral labels (e.g. 0.5 or NaN): use whole-number class labels")
        return y.astype(np.int64)
    if y.dtype.kind not in "biuUS":
        raise DataError(f"{key} has dtype {y.dtype}; expected integer class labels")
    return y


def _npz_label_names(npz, name: str) -> list[str]:
    """Load label_names as a list of strings."""
    names = _npz_array(npz, "label_names", name, 10_000)
    if names.ndim != 1:
        raise DataError(f"label_names has shape {names.shape}; expected a 1-D list of class names")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in names.tolist()]


def _remap_labels(
    ys: list[np.ndarray], names: list[str] | None, has_y: bool, name: str
) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Map label values (over all parts) to 0..K-1 in sorted order; names from label_names or the values."""
    if len({"U" if y.dtype.kind in "US" else "n" for y in ys}) > 1:
        raise DataError(f"{name!r} mixes text and number labels between y_train and y_test: use one kind")
    if ys[0].dtype.kind == "S":
        ys = [y.astype(str) for y in ys]  # bytes labels -> text, for names and sorting
    values, inverse = np.unique(np.concatenate(ys), return_inverse=True)
    k = len(values)
    if k > MAX_CLASSES:
        raise DataError(f"{name!r} has {k} classes, over the limit of {MAX_CLASSES}: merge classes or drop the labels")
    if names is not None:
        if len(names) != k:
            raise DataError(
                f"label_names has {len(names)} names but the labels have {k} distinct values: give one name per class"
            )
        label_names = tuple(names)
    elif not has_y:
        label_names = ("all",)
    else:
        label_names = tuple(str(v) for v in values.tolist())
    splits = np.cumsum([len(y) for y in ys])[:-1]
    return [part.astype(np.int64) for part in np.split(inverse.reshape(-1), splits)], label_names


# ---------------------------------------------------------------------------------------------
# Image folders and .zip files
# ---------------------------------------------------------------------------------------------


def _folder_split(
    blob: bytes | None,
    path: str | None,
    name: str,
    *,
    image_size: int,
    seed: int,
    test_fraction: float,
    max_bytes: int = ESTIMATE_LIMIT_BYTES,
) -> DataSplit:
    """Read a class-folder tree (a directory when blob is None, else a .zip's bytes, read in memory) and split it."""
    if blob is None:
        x, y, names = _read_class_folders(_DiskTree(path, name), image_size, name, max_bytes)
        fingerprint = _hash_tree(path)  # after reading: a malformed folder is reported before hashing it all
    else:
        fingerprint = _sha256(blob)
        with _zip_tree(blob, name) as tree:
            x, y, names = _read_class_folders(tree, image_size, name, max_bytes)
    spec = _make_spec("image_folder", name, seed, test_fraction, image_size, fingerprint, path=path)
    return _random_split(x, y, names, 255.0, spec)


class _DiskTree:
    """A folder on disk as a tree of path tuples (for trusted paths: the command line, the app's own files)."""

    def __init__(self, root: str, name: str):
        self.root, self.name = root, name

    def _path(self, rel: tuple[str, ...]) -> str:
        return os.path.join(self.root, *rel)

    def listdir(self, rel: tuple[str, ...]) -> list[str]:
        return sorted(e for e in os.listdir(self._path(rel)) if not _is_ignored(e))

    def isdir(self, rel: tuple[str, ...]) -> bool:
        return os.path.isdir(self._path(rel))

    def files_under(self, rel: tuple[str, ...]) -> list[str]:
        return _walk_files(self._path(rel))

    def open(self, rel: tuple[str, ...]) -> str:
        """The file's path, once it is known to be a regular file (not a device, a pipe or a socket)."""
        path = self._path(rel)
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except OSError as e:
            raise DataError(f"cannot read {'/'.join(rel)} in {self.name!r} ({e.strerror}): remove it") from e
        if not regular:
            raise DataError(f"{'/'.join(rel)} in {self.name!r} is not a regular file (a device, pipe or socket): remove it")
        return path


class _ZipTree:
    """A .zip's files as a read-only tree of path tuples, read from memory: nothing is written to disk."""

    def __init__(self, archive: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, list[str]]], name: str):
        self.archive, self.name = archive, name
        self.files: dict[tuple[str, ...], zipfile.ZipInfo] = {}
        self.children: dict[tuple[str, ...], set[str]] = {(): set()}
        self.under: dict[tuple[str, ...], list[str]] = {}
        for info, parts in members:
            key = tuple(parts)
            if not key:
                continue
            for i in range(len(key)):
                self.children.setdefault(key[:i], set()).add(key[i])
            self.files[key] = info  # a duplicate name: the later member wins, as when unpacking
        clash = next((k for k in self.files if k in self.children), None)
        if clash is not None:
            raise DataError(f"{'/'.join(clash)!r} in {name!r} is both a file and a folder: zip the class folders again")
        for key in self.files:
            for i in range(len(key)):
                self.under.setdefault(key[:i], []).append("/".join(key[i:]))

    def listdir(self, rel: tuple[str, ...]) -> list[str]:
        return sorted(self.children.get(rel, ()))

    def isdir(self, rel: tuple[str, ...]) -> bool:
        return rel in self.children

    def files_under(self, rel: tuple[str, ...]) -> list[str]:
        return sorted(self.under.get(rel, []))

    def open(self, rel: tuple[str, ...]) -> BinaryIO:
        info = self.files[rel]
        try:
            return io.BytesIO(self.archive.read(info))  # zipfile stops at the declared size and checks the CRC
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError, zlib.error) as e:
            raise DataError(
                f"cannot unpack {info.filename!r} from {self.name!r} ({e}): zip the class folders again"
            ) from e


@contextlib.contextmanager
def _zip_tree(blob: bytes, name: str) -> Iterator[_ZipTree]:
    """The .zip's tree, after its directory, names, sizes and compression were checked (nothing inflated yet)."""
    try:
        archive = zip_members(blob, repr(name), max_entries=MAX_ZIP_ENTRIES,
                              max_directory_bytes=MAX_ZIP_DIRECTORY_BYTES, error=DataError, remedy="use fewer images")
    except DataError as e:
        if "corrupt or truncated" not in str(e):
            raise
        raise DataError(f"{name!r} is not a valid .zip file (no complete zip directory): zip the class folders again"
                        ) from None
    with archive:
        yield _ZipTree(archive, _safe_members(archive, name), name)


def _safe_members(archive: zipfile.ZipFile, name: str) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The files to read with their path parts; refuses unsafe names and zip bombs before inflating anything."""
    members, total = [], 0
    for info in archive.infolist():
        parts = _safe_parts(info.filename, name)
        if info.is_dir() or any(_is_ignored(p) for p in parts):
            continue
        _check_member_readable(info, f"{info.filename!r} in {name!r}", "zip the class folders without a password",
                               "zip the class folders with the usual (deflate) compression")
        total += info.file_size
        big = info.file_size > (1 << 20)
        if big and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise DataError(
                f"{info.filename!r} in {name!r} expands {info.file_size // max(info.compress_size, 1)}x "
                "(a zip bomb?): refusing it; zip ordinary image files"
            )
        if info.file_size > MAX_MEMBER_BYTES:
            raise DataError(
                f"{info.filename!r} in {name!r} is {info.file_size / 2**20:,.0f} MiB, over the "
                f"{MAX_MEMBER_BYTES >> 20} MiB limit per file: shrink the image"
            )
        members.append((info, parts))
    if len(members) > MAX_ZIP_FILES:
        raise DataError(f"{name!r} holds {len(members):,} files, over the limit of {MAX_ZIP_FILES:,}: use fewer images")
    if total > MAX_UNZIPPED_BYTES:
        raise DataError(
            f"{name!r} would unpack to {total / 2**20:,.0f} MiB, over the {MAX_UNZIPPED_BYTES >> 20} MiB limit "
            "(a zip bomb?): use fewer or smaller images"
        )
    return members


def _safe_parts(filename: str, name: str) -> list[str]:
    """Split a zip member name into path parts; refuse absolute paths and '..' (path traversal)."""
    norm = filename.replace("\\", "/")
    if PurePosixPath(norm).is_absolute() or PureWindowsPath(filename).drive or PureWindowsPath(filename).is_absolute():
        raise DataError(
            f"{name!r} contains an absolute path {filename!r}: refusing to unpack it; zip relative paths only"
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(
            f"{name!r} contains a path with '..' ({filename!r}), which could escape the folder: refusing it"
        )
    return parts


def _read_class_folders(
    tree: _DiskTree | _ZipTree, image_size: int, name: str, max_bytes: int = ESTIMATE_LIMIT_BYTES
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (N, S, S, C) uint8 with C = 1 if all are grey else 3, labels (N,), and the class names.

    Bounded before decoding: the result's memory (estimated as colour: the uint8 images, a copy made by the split,
    and the float32 tensors, 18 bytes per pixel) against max_bytes; then each image's header, and the decoding done
    in all (MAX_FOLDER_DECODED_BYTES), before the image is decoded.
    """
    root = _unwrap_single_folder(tree)
    classes = _class_files(tree, root, name)
    n = sum(len(files) for _, files in classes)
    pixels = n * image_size * image_size
    cost = 18 * pixels
    if pixels > MAX_VALUES or cost > max_bytes:
        raise DataError(
            f"{n} images of {image_size}x{image_size} are too many: they would take about {cost / 2**20:,.0f} MiB, "
            f"over the {max_bytes / 2**20:,.0f} MiB limit: use fewer images or a smaller image_size"
        )
    x = np.empty((n, image_size, image_size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    grey, decoded, i = True, 0, 0
    for label, (class_dir, files) in enumerate(classes):
        for rel in files:
            source = tree.open((*root, class_dir, *rel.split("/")))
            pixels, is_grey, cost_i = _read_image(source, f"{class_dir}/{rel}", image_size, name,
                                                  decode_left=MAX_FOLDER_DECODED_BYTES - decoded)
            x[i] = pixels[..., None] if pixels.ndim == 2 else pixels  # grey fills all three channels
            decoded += cost_i
            labels[i] = label
            grey &= is_grey
            i += 1
    return (x[..., :1] if grey else x), labels, tuple(c for c, _ in classes)


def _class_files(tree: _DiskTree | _ZipTree, root: tuple[str, ...], name: str) -> list[tuple[str, list[str]]]:
    """[(class folder name, sorted image paths relative to it)] in sorted class order."""
    entries = tree.listdir(root)
    stray = [e for e in entries if not tree.isdir((*root, e))]
    dirs = [e for e in entries if tree.isdir((*root, e))]
    if len(dirs) < 2:
        found = f"one class ({dirs[0]!r})" if dirs else "no class folders"
        found = "its images directly inside, so one class" if stray and not dirs else found
        raise DataError(
            f"{name!r} has {found}; need at least 2 classes: put each class in its own sub-folder (e.g. cats/, dogs/)"
        )
    if stray:
        raise DataError(
            f"{stray[0]!r} in {name!r} is not inside a class folder: put each class's images in its own sub-folder"
        )
    if len(dirs) > MAX_CLASSES:
        raise DataError(f"{name!r} has {len(dirs)} class folders, over the limit of {MAX_CLASSES}: merge classes")
    classes, total = [], 0
    for d in dirs:
        files = tree.files_under((*root, d))
        for rel in files:
            if not rel.lower().endswith(IMAGE_EXTENSIONS):
                raise DataError(
                    f"{d}/{rel} in {name!r} is not an image ({', '.join(e[1:] for e in IMAGE_EXTENSIONS[:5])}, ...): "
                    "remove it or move it out of the folder"
                )
        if not files:
            raise DataError(f"class folder {d!r} in {name!r} has no images: add images or remove the folder")
        total += len(files)
        if total > MAX_ZIP_FILES:
            raise DataError(f"{name!r} has over {MAX_ZIP_FILES:,} images: use fewer")
        classes.append((d, files))
    return classes


def _unwrap_single_folder(tree: _DiskTree | _ZipTree) -> tuple[str, ...]:
    """Step into a lone top-level folder that only wraps the class folders (common when zipping a folder)."""
    entries = tree.listdir(())
    if len(entries) != 1 or not tree.isdir((entries[0],)):
        return ()
    inner = (entries[0],)
    inner_entries = tree.listdir(inner)
    # A lone folder holding images is one class (reported as such), not a wrapper.
    if inner_entries and all(tree.isdir((*inner, e)) for e in inner_entries):
        return inner
    return ()


def decode_image(
    source: str | bytes | BinaryIO, what: str, *, fit: int | None = None, decode_left: int | None = None
) -> tuple[Image.Image, int]:
    """One image file (a path, bytes or a binary file) as a decoded 'L' or 'RGB' PIL image, and the bytes its
    decoding took. The one bounded image reader of the package (image folders, .zip files, the Interpolate page).

    Bounded from the header, before any pixel is decoded (Image.open reads only the header): at most
    MAX_IMAGE_PIXELS pixels and budget.MAX_IMAGE_DECODED_BYTES decoded bytes (width x height x bytes per pixel of
    the file's mode: 16-bit grey is 2, RGB 4 as Pillow holds it), and at most decode_left bytes when given.
    fit (pixels): a JPEG is decoded at the smallest scale that still covers fit x fit (draft mode). EXIF rotation
    is applied in place; 16- and 32-bit grey is scaled to 8 bits a chunk at a time (no float64 copy of the image).
    Peak memory is about three decoded copies (≤ 144 MiB). Raises DataError with a one-line message.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        with Image.open(source) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(
                    f"{what} is {w}x{h} pixels, over the {MAX_IMAGE_PIXELS // 1_000_000} megapixel limit: "
                    "shrink it first"
                )
            if fit is not None:
                img.draft(None, (fit, fit))  # JPEG decodes at reduced size: much faster for photos
            decoded = check_image_header(img, what, error=DataError)
            if decode_left is not None and decoded > decode_left:
                raise DataError(
                    f"decoding the images of {what.split(' in ', 1)[-1]} would take over "
                    f"{MAX_FOLDER_DECODED_BYTES >> 20} MiB of pixels (reached at {what.split(' in ', 1)[0]}): "
                    "shrink the images (e.g. to 256x256) before zipping them"
                )
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # phone photos store their rotation in EXIF
            return _to_l_or_rgb(img), decoded
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{what} is too many pixels ({e}): shrink it first") from e
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError, struct.error,
            ZeroDivisionError, MemoryError) as e:
        raise DataError(f"cannot read image {what} ({e}): remove it or save it again as PNG or JPEG") from e


def _read_image(
    source: str | BinaryIO, rel: str, image_size: int, name: str, *, decode_left: int | None = None
) -> tuple[np.ndarray, bool, int]:
    """One image file -> ((S, S) grey or (S, S, 3) RGB uint8, whether it is greyscale, bytes its decoding took)."""
    img, decoded = decode_image(source, f"{rel} in {name!r}", fit=image_size, decode_left=decode_left)
    try:
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        pixels = np.asarray(img)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read image {rel} in {name!r} ({e}): remove it or save it again as PNG or JPEG") from e
    if pixels.ndim == 2:  # 'L'
        return pixels, True, decoded
    grey = bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())
    return pixels, grey, decoded


def _to_l_or_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 'L' (grey) or 'RGB', dropping alpha and scaling 16-bit grey to 8 bits."""
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("1", "LA", "La"):
        return img.convert("L")
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit grey: PIL's convert would clip, not scale
        a = np.asarray(img)  # 2 or 4 bytes per pixel
        hi = a.max()
        top = 1.0 if img.mode == "F" and hi <= 1 else (65535.0 if hi > 255 else 255.0)
        out = np.empty(a.shape, np.uint8)
        flat_in, flat_out = a.reshape(-1), out.reshape(-1)
        for start in range(0, flat_in.size, _CONVERT_CHUNK_PIXELS):  # float64 a chunk at a time, not the image
            chunk = flat_in[start : start + _CONVERT_CHUNK_PIXELS].astype(np.float64)
            flat_out[start : start + _CONVERT_CHUNK_PIXELS] = np.clip(chunk / top * 255 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(out)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when palette transparency goes straight to RGB
    return img.convert("RGB")
