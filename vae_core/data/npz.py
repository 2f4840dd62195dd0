"""User .npz files: x (N, H, W[, C]) with optional y and label_names, or Keras-style x_train/y_train/x_test/y_test.
The zip directory and the .npy headers are checked before any array is decompressed.

With the single-x layout a file may also carry ground-truth generative factors, so the disentanglement metrics
(MIG, DCI) and labelled traversals work for any model trained on it:

    np.savez("sprites.npz", x=images, factors=factor_values, factor_names=np.array(["shape", "size", "x", "y"]))

factors (N, K): one row per image, one column per factor, integers or floats (a column with more than
MAX_FACTOR_VALUES distinct values, e.g. a continuous one, is cut into FACTOR_BINS equal-width bins); each column is
mapped to indices 0..V-1. factor_names (K,) is optional text ("factor 0", "factor 1", ... by default)."""
from __future__ import annotations

import io
import math
import os
import zipfile
from typing import BinaryIO

import numpy as np

from vae_core.budget import ESTIMATE_LIMIT_BYTES, zip_members
from vae_core.data.checks import (MAX_CLASSES, MAX_NPZ_MEMBERS, MAX_SIDE, MAX_VALUES, MIN_IMAGES,
                                  _check_member_readable, _check_split_settings, _max_bytes)
from vae_core.data.splits import DataSplit, _given_split, _make_spec, _random_split
from vae_core.data.user_files import _open_user_data, _sha256
from vae_core.errors import DataError


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
            factor_info = _npz_factors(npz, len(x), name) if "factors" in keys else {}
            if "factor_names" in keys and "factors" not in keys:
                raise DataError(f"{name!r} has factor_names but no factors array: save factors=(N, K) values too")
            x, scale = _normalise_values(x, "x", name)
            spec = _make_spec("npz", name, seed, test_fraction, x.shape[1], _sha256(blob), path=path)
            if test_only:  # evaluation on every image of the file
                return _given_split(x, y, x, y, names, (scale, scale), spec, **factor_info)
            return _random_split(x, y, names, scale, spec, **factor_info)
        if {"x_train", "x_test"} <= keys:
            if "factors" in keys:
                raise DataError(f"{name!r} has factors with x_train/x_test: factors go with the single-x layout, "
                                "np.savez(path, x=images, factors=values): the app splits both the same way")
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


_NPZ_KEYS = ("x", "y", "label_names", "x_train", "y_train", "x_test", "y_test", "factors", "factor_names")  # read
MAX_FACTORS = 32  # columns of a factors array
MAX_FACTOR_VALUES = 1_000  # distinct values of one factor kept as they are; more are binned
FACTOR_BINS = 20  # equal-width bins of a factor with more distinct values (the metrics' own bin count for codes)


_NUMERIC_KINDS = "biuf"  # bool, int, uint, float: what images may be


_LABEL_KINDS = "biufUS"  # labels and class names may also be text


_MAX_TEXT_ITEMSIZE = 1024  # bytes per label or class name: 256 characters of UTF-32


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
    if key == "factors":
        if dtype.kind not in _NUMERIC_KINDS or dtype.itemsize > 8:
            raise DataError(f"factors has dtype {dtype}; expected numbers (integers or floats), one column per factor")
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


def _npz_factors(npz, n: int, name: str) -> dict:
    """Ground-truth factors (N, K) -> {"factors": (N, K) int64 indices, "factor_names", "factor_sizes"}."""
    values = _npz_array(npz, "factors", name, MAX_VALUES)
    if values.ndim == 1:
        values = values[:, None]  # one factor
    if values.ndim != 2 or values.shape[1] == 0:
        raise DataError(f"factors has shape {values.shape}; expected (N, K): one row per image, one column per factor")
    if len(values) != n:
        raise DataError(f"factors has {len(values)} rows but there are {n} images: give one row of factors per image")
    k = values.shape[1]
    if k > MAX_FACTORS:
        raise DataError(f"factors has {k} columns, over the limit of {MAX_FACTORS}: keep the factors you want to score")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise DataError("factors contains NaN or inf values: give every image a finite value for every factor")
    columns = [_factor_indices(values[:, j]) for j in range(k)]
    names = _npz_text_list(npz, "factor_names", name, k) if "factor_names" in npz.files else None
    return {"factors": np.stack(columns, axis=1),
            "factor_names": tuple(names) if names else tuple(f"factor {j}" for j in range(k)),
            "factor_sizes": tuple(int(c.max()) + 1 for c in columns)}


def _factor_indices(column: np.ndarray) -> np.ndarray:
    """One factor's values -> indices 0..V-1 in sorted order; over MAX_FACTOR_VALUES values, FACTOR_BINS bins."""
    values, inverse = np.unique(column, return_inverse=True)
    if len(values) <= MAX_FACTOR_VALUES:
        return inverse.reshape(-1).astype(np.int64)
    edges = np.histogram_bin_edges(column.astype(np.float64), bins=FACTOR_BINS)
    binned = np.digitize(column.astype(np.float64), edges[:-1]) - 1  # (N,) in 0..FACTOR_BINS-1
    return np.unique(binned, return_inverse=True)[1].reshape(-1).astype(np.int64)  # only the bins in use


def _npz_text_list(npz, key: str, name: str, k: int) -> list[str]:
    """A 1-D array of k names as strings (factor_names)."""
    names = _npz_array(npz, key, name, 10_000)
    if names.ndim != 1 or len(names) != k:
        raise DataError(f"{key} has shape {names.shape}; expected ({k},): one name per factor column")
    if names.dtype.kind not in "US":
        raise DataError(f"{key} has dtype {names.dtype}; expected text, e.g. np.array(['shape', 'size'])")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in names.tolist()]


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
