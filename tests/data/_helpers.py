"""Small inputs written into tmp_path, an offline network, and the invariants of every split: shared by the
data tests."""
from __future__ import annotations

import contextlib
import errno
import io
import json
import socket
import struct
import threading
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vae_core.data import mnist as mnist_module
from vae_core.data import DataSplit


def write_npz(path: Path, **arrays) -> Path:
    """np.savez the arrays to path and return it."""
    np.savez(path, **arrays)
    return path


def images_u8(n: int = 20, h: int = 8, w: int = 8, c: int | None = None, seed: int = 0) -> np.ndarray:
    """Random uint8 images (n, h, w) or (n, h, w, c)."""
    shape = (n, h, w) if c is None else (n, h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_png(path: Path, mode: str = "L", size: tuple[int, int] = (12, 10), seed: int = 0) -> None:
    """A small random image (width, height = size) so that resizing does something."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mode == "L":
        arr = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    elif mode == "RGBA":
        arr = rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    else:
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def make_class_folder(root: Path, classes: dict[str, int] | None = None, mode: str = "L") -> Path:
    """root/<class>/<i>.png for each class, with the given image counts."""
    classes = classes or {"cats": 6, "dogs": 5}
    for k, (name, count) in enumerate(classes.items()):
        for i in range(count):
            write_png(root / name / f"{i}.png", mode=mode, seed=100 * k + i)
    return root


def zip_tree(src: Path, zip_path: Path, prefix: str = "") -> Path:
    """Zip every file under src, names relative to src and prefixed by `prefix`."""
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(src).as_posix())
    return zip_path


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format torchvision reads for MNIST."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist_cache(root: Path, train: int = 12, test: int = 4) -> None:
    """A tiny Fashion-MNIST where torchvision keeps its download (root/FashionMNIST/raw, IDX files): seeded random
    images, labels 0, 1, 2, ... in turn."""
    raw = root / "FashionMNIST" / "raw"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


class Upload(io.BytesIO):
    """Stands in for Streamlit's UploadedFile: bytes with a .name and getvalue()."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name


class OfflineNetwork:
    """socket.create_connection as on a machine without a network, recording every attempt.

    By default each connection fails at once (ENETUNREACH, as with no route); with `hang = True` it never
    answers instead (a DNS look-up or a SYN that a firewall drops), until the test ends. torchvision's
    MNIST.download (FashionMNIST inherits it) is recorded too: entering it means the loader tried to download.
    Whatever the machine's real network, these tests see the same offline world."""

    def __init__(self):
        self.connections: list[tuple[str, float | None]] = []  # (host, time-out) of each attempt
        self.downloads: list[str] = []
        self.hang = False
        self.answered = False
        self.release = threading.Event()

    def create_connection(self, address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, *args, **kwargs):
        self.connections.append((address[0], None if timeout is socket._GLOBAL_DEFAULT_TIMEOUT else timeout))
        if self.hang:
            self.release.wait()
            self.answered = True
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    def assert_probed_within_the_time_out_and_never_downloaded(self, source: str) -> None:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, mnist_module._MNIST_LIKE[source])
        mirrors = {urllib.parse.urlsplit(url).hostname for url in cls.mirrors}
        assert self.connections, "the loader did not check the network before giving up"
        assert {host for host, _ in self.connections} <= mirrors, self.connections
        limit = mnist_module._NETWORK_PROBE_SECONDS
        assert all(t is not None and 0 < t <= limit for _, t in self.connections), (
            f"a network probe without a time-out of at most {limit} s: {self.connections}")
        assert self.downloads == [], "torchvision's download (no time-outs, retries every mirror) was entered"


@contextlib.contextmanager
def count_zip_members_opened(monkeypatch):
    """Yields a list that records the name of every zip member opened (read or unpacked) meanwhile."""
    opened: list[str] = []
    original = zipfile.ZipFile.open

    def spy(archive, name, mode="r", *args, **kwargs):
        if mode == "r":
            opened.append(getattr(name, "filename", name))
        return original(archive, name, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    yield opened
    monkeypatch.setattr(zipfile.ZipFile, "open", original)


def sorted_rows(t: torch.Tensor) -> torch.Tensor:
    """Rows of a 2-D tensor in lexicographic order, to compare data sets regardless of order."""
    return t[np.lexsort(t.numpy().T[::-1])]


def assert_valid_split(split: DataSplit) -> None:
    """Common invariants of every split."""
    for part in (split.train, split.test):
        assert part.x.dtype == torch.float32 and part.x.ndim == 4
        assert part.y.dtype == torch.int64 and part.y.shape == (len(part),)
        assert 0.0 <= part.x.min() and part.x.max() <= 1.0
        assert part.y.min() >= 0 and part.y.max() < split.num_classes
        assert tuple(part.x.shape[1:]) == split.input_shape
    assert len(split.train) >= 2 and len(split.test) >= 1
    assert json.loads(json.dumps(split.spec)) == split.spec  # JSON-able


def huge_header_npz(path: Path) -> Path:
    """An .npz whose x.npy header claims 6.5e9 values but carries no data: must be refused unread."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (100_000, 256, 256)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", buf.getvalue())
    return path
