"""MNIST, bundled with the package (vae_core/datasets/mnist.npz: no network), and Fashion-MNIST, downloaded once by
torchvision into a cache, with a short network probe so that offline fails fast."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import queue
import socket
import threading
import time
import urllib.parse
from typing import Iterator

import numpy as np

from vae_core.data.checks import _check_native_size
from vae_core.data.splits import DataSplit, _given_split, _make_spec
from vae_core.data.user_files import _sha256, _sha256_arrays
from vae_core.errors import DataError

_MNIST_LIKE = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # source id -> torchvision class
# All 70,000 MNIST images ship with the package (see vae_core/datasets/MNIST-LICENSE.md): 'mnist' needs no network.
# `python -m vae_core data pack-mnist` rebuilds the file, byte for byte (vae_core/mnist_bundle.py).
MNIST_BUNDLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets", "mnist.npz")
MNIST_BUNDLE_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
MNIST_COPY = "bundled: all 70,000 MNIST images (vae_core/datasets/mnist.npz)"  # a split's spec["copy"]
_NETWORK_PROBE_SECONDS = 3.0
_DOWNLOAD_SOCKET_SECONDS = 20.0  # a stalled download fails after this long without data
_socket_timeout_lock = threading.Lock()


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
