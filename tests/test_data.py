"""Tests for vae_core.data: built-in sources, validation, splits, the shapes set and user files.

Everything runs offline on small data made here (tmp_path). No mocks of our own code; a few checks spy on the
standard library (a socket that refuses or never answers stands for an offline machine, a counter on
zipfile.ZipFile.open for "nothing was unpacked") to assert what a wall-clock limit used to stand for: a test
asserts behaviour, timings belong in bench/.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import socket
import struct
import tempfile
import threading
import urllib.parse
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.data import mnist as mnist_module
from vae_core.data import shapes as shapes_module
from vae_core.data import (
    BUILTIN_SOURCES,
    MIN_IMAGES,
    SHAPE_FACTOR_NAMES,
    SHAPE_FACTOR_SIZES,
    DataSplit,
    load_data,
    load_from_spec,
    load_image_folder,
    load_npz,
    make_shapes,
    render_shapes,
)
from vae_core.errors import DataError

# ---------------------------------------------------------------------------------------------
# Helpers that write small inputs into tmp_path
# ---------------------------------------------------------------------------------------------


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


@pytest.fixture
def offline(monkeypatch):
    import torchvision.datasets

    network = OfflineNetwork()
    monkeypatch.setattr(socket, "create_connection", network.create_connection)

    def download(dataset):
        network.downloads.append(type(dataset).__name__)
        raise RuntimeError("download attempted while offline")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", download)
    yield network
    network.release.set()  # let probes that were left hanging end


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


# ---------------------------------------------------------------------------------------------
# Built-in sources
# ---------------------------------------------------------------------------------------------


class TestBuiltinSources:
    def test_digits(self):
        split = load_data("digits")
        assert_valid_split(split)
        assert split.input_shape == (1, 8, 8)
        assert len(split.train) + len(split.test) == 1797
        assert len(split.test) == round(1797 * 0.2)
        assert split.label_names == tuple("0123456789") and split.num_classes == 10
        assert split.name == "digits" and split.train.factors is None
        assert split.train.x.max() == 1.0  # 16/16: values were divided by 16

    @pytest.mark.parametrize("source, size", [("shapes", 32), ("shapes64", 64)])
    def test_shapes(self, source, size):
        split = load_data(source)
        assert_valid_split(split)
        assert split.input_shape == (1, size, size)
        assert len(split.train) + len(split.test) == 20_000
        assert split.label_names == ("square", "ellipse", "heart")
        assert split.name == source
        for part in (split.train, split.test):
            assert ((part.x == 0) | (part.x == 1)).all() and part.x.max() == 1  # binary
            assert part.factors.shape == (len(part), 5) and part.factors.dtype == torch.int64
            assert part.factor_names == SHAPE_FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
            assert part.factor_sizes == SHAPE_FACTOR_SIZES == (3, 6, 40, 32, 32)
            assert torch.equal(part.y, part.factors[:, 0])  # label = shape

    def test_unknown_source_names_the_accepted_kinds(self, tmp_path):
        for bad in ("mnsit", str(tmp_path / "notes.txt")):
            with pytest.raises(DataError, match="digits.*npz.*zip.*folder"):
                load_data(bad)
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(DataError, match="not a .npz file, .zip or folder"):
            load_data(tmp_path / "notes.txt")

    def test_image_size_must_match_fixed_size_sources(self):
        assert load_data("digits", image_size=8).input_shape == (1, 8, 8)
        with pytest.raises(DataError, match="image_size=32 does not apply to 'digits'"):
            load_data("digits", image_size=32)

    # 'mnist' is bundled (tests/test_mnist_bundle.py loads it with the network blocked); Fashion-MNIST is
    # downloaded once into the cache, so offline it must fail, fast and clearly.
    def test_fashion_mnist_offline_fails_fast(self, tmp_path, offline):
        # "Fast" as behaviour: the loader gives up after a probe bounded by its own time-out and never enters
        # torchvision's download, which retries every mirror with no time-out (minutes offline).
        message = r"could not download Fashion-MNIST.*'mnist' \(bundled\).*'digits'"
        with pytest.raises(DataError, match=message) as err:
            load_data("fashion-mnist", cache_dir=str(tmp_path))
        assert "\n" not in str(err.value)
        offline.assert_probed_within_the_time_out_and_never_downloaded("fashion-mnist")

    @pytest.mark.timeout(60)  # the safety net: a probe that nobody bounds would hang here
    def test_a_network_that_never_answers_does_not_hang_the_loader(self, tmp_path, offline):
        # A DNS look-up or a SYN dropped by a firewall never answers: the loader returns anyway, with the
        # offline message, because it waits for its probes only up to their time-out.
        offline.hang = True
        with pytest.raises(DataError, match="could not download Fashion-MNIST"):
            load_data("fashion-mnist", cache_dir=str(tmp_path))
        assert not offline.answered, "the loader only returned once the network answered"
        offline.assert_probed_within_the_time_out_and_never_downloaded("fashion-mnist")

    def test_fashion_mnist_loads_from_cache_without_network(self, tmp_path, offline):
        import torchvision.datasets

        raw = tmp_path / "FashionMNIST" / "raw"
        rng = np.random.default_rng(0)
        for prefix, n in (("train", 12), ("t10k", 4)):
            write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
        split = load_data("fashion-mnist", cache_dir=str(tmp_path))
        assert_valid_split(split)
        assert (len(split.train), len(split.test)) == (12, 4)  # the file's own split is kept
        assert split.input_shape == (1, 28, 28)
        assert split.label_names == tuple(torchvision.datasets.FashionMNIST.classes)
        assert split.test.y.tolist() == [0, 1, 2, 3]
        assert offline.connections == [] and offline.downloads == []  # the cache is enough: no network touched

    def test_builtin_sources_listed(self):
        assert BUILTIN_SOURCES == ("digits", "shapes", "shapes64", "mnist", "fashion-mnist")

    def test_hand_made_split_has_a_name(self):
        digits = load_data("digits")
        assert DataSplit(digits.train, digits.test, {"source": "bench"}).name == "bench"


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


class TestSplits:
    def test_same_seed_same_split_other_seed_other_split(self):
        a, b, c = load_data("digits", seed=1), load_data("digits", seed=1), load_data("digits", seed=2)
        assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
        assert not torch.equal(a.test.x, c.test.x)
        assert len(a.test) == len(c.test)

    def test_split_partitions_the_data(self):
        from sklearn.datasets import load_digits

        split = load_data("digits", seed=3, test_fraction=0.5)
        assert len(split.test) == round(1797 * 0.5)
        everything = torch.cat([split.train.x, split.test.x]).flatten(1)
        reference = torch.from_numpy(load_digits().images / 16).float().flatten(1)
        assert torch.equal(sorted_rows(everything), sorted_rows(reference))  # same images, reordered

    def test_threads_get_the_same_split(self):
        results = [None] * 4

        def work(i: int) -> None:
            results[i] = load_data("digits", seed=7).test.y

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(torch.equal(r, results[0]) for r in results)

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"test_fraction": 0.0}, "test_fraction"),
            ({"test_fraction": 1.0}, "test_fraction"),
            ({"test_fraction": "0.2"}, "test_fraction"),
            ({"seed": -1}, "seed"),
            ({"seed": 1.5}, "seed"),
        ],
    )
    def test_bad_split_settings(self, kwargs, match):
        with pytest.raises(DataError, match=match):
            load_data("digits", **kwargs)

    def test_bad_settings_fail_before_reading_files(self, tmp_path):
        with pytest.raises(DataError, match="seed"):
            load_npz(tmp_path / "does_not_exist.npz", seed=-3)
        with pytest.raises(DataError, match="test_fraction"):
            load_image_folder(tmp_path, test_fraction=2)

    def test_minimum_size(self, tmp_path):
        small = load_npz(write_npz(tmp_path / "ten.npz", x=images_u8(MIN_IMAGES)))
        assert (len(small.train), len(small.test)) == (8, 2)
        with pytest.raises(DataError, match=f"only 9 images: need at least {MIN_IMAGES}"):
            load_npz(write_npz(tmp_path / "nine.npz", x=images_u8(9)))

    def test_extreme_fraction_keeps_two_train_images(self, tmp_path):
        split = load_npz(write_npz(tmp_path / "a.npz", x=images_u8(10)), test_fraction=0.99)
        assert (len(split.train), len(split.test)) == (2, 8)

    def test_keras_layout_keeps_its_split(self, tmp_path):
        path = write_npz(
            tmp_path / "k.npz",
            x_train=images_u8(12),
            y_train=np.arange(12) % 3,
            x_test=images_u8(5, seed=1),
            y_test=np.arange(5) % 3,
        )
        a, b = load_npz(path, seed=0), load_npz(path, seed=99)
        assert (len(a.train), len(a.test)) == (12, 5)
        assert torch.equal(a.test.x, b.test.x)
        assert torch.equal(a.test.x, torch.from_numpy(images_u8(5, seed=1)).float().div(255).unsqueeze(1))


# ---------------------------------------------------------------------------------------------
# The procedural shapes set
# ---------------------------------------------------------------------------------------------


class TestShapes:
    def test_make_shapes_contract(self):
        images, factors = make_shapes(500, 32, seed=5)
        assert images.shape == (500, 32, 32) and images.dtype == np.uint8
        assert set(np.unique(images)) == {0, 1}
        assert factors.shape == (500, 5) and factors.dtype == np.int64
        assert (factors >= 0).all() and (factors < np.array(SHAPE_FACTOR_SIZES)).all()
        again_images, again_factors = make_shapes(500, 32, seed=5)
        assert np.array_equal(images, again_images) and np.array_equal(factors, again_factors)
        assert not np.array_equal(factors, make_shapes(500, 32, seed=6)[1])

    @pytest.mark.parametrize("size", [32, 64])
    def test_generation_is_vectorised_in_bounded_chunks(self, size, monkeypatch):
        # What "20,000 sprites in under 2 s" stood for, as behaviour (the time itself: bench/data_timings.py):
        # sprites are drawn a chunk of _RENDER_CHUNK at a time with array operations, not one by one in Python,
        # so the work is a handful of vectorised passes and the temporaries stay bounded whatever n.
        chunks = []
        render_chunk = shapes_module._render_chunk

        def counting(images, factors, *args):
            chunks.append(len(factors))
            return render_chunk(images, factors, *args)

        monkeypatch.setattr(shapes_module, "_render_chunk", counting)
        n = 2 * shapes_module._RENDER_CHUNK + 7
        images, factors = make_shapes(n, size, seed=0)
        assert chunks == [shapes_module._RENDER_CHUNK, shapes_module._RENDER_CHUNK, 7]
        # The seams between chunks change nothing: each sprite is the one drawn alone.
        seam = slice(shapes_module._RENDER_CHUNK - 3, shapes_module._RENDER_CHUNK + 3)
        assert np.array_equal(np.stack([render_shapes(f[None], size)[0] for f in factors[seam]]), images[seam])

    @pytest.mark.parametrize("source", ["shapes", "shapes64"])
    def test_the_shapes_set_is_generated_once_per_process(self, source, monkeypatch):
        # The app loads the set on every rerun: after the first load, others reuse the cached arrays.
        first = load_data(source, seed=0)
        calls = []
        make = shapes_module.make_shapes
        monkeypatch.setattr(shapes_module, "make_shapes", lambda *a, **k: calls.append(a) or make(*a, **k))
        again, other_split = load_data(source, seed=0), load_data(source, seed=1)
        assert calls == [], "the shapes set was drawn again"
        assert torch.equal(again.train.x, first.train.x) and torch.equal(again.test.factors, first.test.factors)
        assert other_split.spec["fingerprint"] == first.spec["fingerprint"]

    def test_same_data_set_whatever_the_split_seed(self):
        def pool(seed):
            split = load_data("shapes", seed=seed)
            factors = torch.cat([split.train.factors, split.test.factors])
            x = torch.cat([split.train.x, split.test.x])
            order = np.lexsort(factors.numpy().T[::-1])
            return factors[order], x[order]

        (f1, x1), (f2, x2) = pool(0), pool(1)
        assert torch.equal(f1, f2) and torch.equal(x1, x2)

    def test_same_factors_same_image(self):
        images, factors = make_shapes(20_000, 32, seed=0)
        _, first = np.unique(factors, axis=0, return_index=True)
        rows = {tuple(f): i for i, f in zip(first, factors[first])}
        duplicates = [i for i in range(len(factors)) if rows[tuple(factors[i])] != i]
        assert duplicates, "20,000 draws from 737,280 combinations should repeat some"
        for i in duplicates:
            assert np.array_equal(images[i], images[rows[tuple(factors[i])]])
        assert np.array_equal(render_shapes(factors[:50], 32), images[:50])

    def test_larger_scale_more_pixels(self):
        images, factors = make_shapes(6_000, 32, seed=1)
        area = images.sum(axis=(1, 2))
        means = [area[factors[:, 1] == s].mean() for s in range(6)]
        assert all(a < b for a, b in zip(means, means[1:]))

    @pytest.mark.parametrize("column, axis", [(3, 1), (4, 0)])  # pos_x -> columns, pos_y -> rows
    def test_position_moves_the_centre_of_mass(self, column, axis):
        base = np.array([[2, 3, 7, 16, 16]] * 32)
        base[:, column] = np.arange(32)
        images = render_shapes(base, 32).astype(float)
        coords = np.arange(32) + 0.5
        centre = (images.sum(axis=2 - axis) * coords).sum(axis=1) / images.sum(axis=(1, 2))
        assert np.all(np.diff(centre) > 0)
        assert centre[-1] - centre[0] > 12

    def test_orientation_rotates(self):
        f = np.array([[1, 5, 0, 16, 16], [1, 5, 10, 16, 16]])  # ellipse, 0 and 90 degrees
        flat, upright = render_shapes(f, 32)
        assert np.array_equal(flat, upright.T)  # 90 degree rotation about the centre = transpose here

    def test_every_sprite_is_visible_and_in_frame(self):
        for size in (32, 64):
            images, factors = make_shapes(3_000, size, seed=2)
            assert images.sum(axis=(1, 2)).min() >= 8
        # At max scale and extreme positions the sprite keeps its full area (not cut by the frame).
        corners = np.array([[0, 5, 5, px, py] for px in (0, 31) for py in (0, 31)] + [[0, 5, 5, 16, 16]])
        areas = render_shapes(corners, 32).sum(axis=(1, 2))
        assert np.all(np.abs(areas - areas[-1]) <= 2)

    def test_bad_factors(self):
        with pytest.raises(DataError, match="out of range"):
            render_shapes(np.array([[3, 0, 0, 0, 0]]), 32)
        with pytest.raises(DataError, match="image_size"):
            make_shapes(10, 4)


# ---------------------------------------------------------------------------------------------
# .npz files: accepted layouts
# ---------------------------------------------------------------------------------------------


class TestNpzFiles:
    def test_uint8_n_h_w(self, tmp_path):
        x = images_u8(20, 9, 7)
        split = load_npz(write_npz(tmp_path / "grey.npz", x=x))
        assert_valid_split(split)
        assert split.input_shape == (1, 9, 7) and split.name == "grey.npz"
        assert split.label_names == ("all",) and split.train.y.eq(0).all()
        whole = torch.cat([split.train.x, split.test.x])
        assert sorted(whole.mul(255).round().flatten().tolist()) == sorted(x.astype(float).flatten().tolist())

    @pytest.mark.parametrize("channels", [1, 3])
    def test_float_with_channels(self, tmp_path, channels):
        x = images_u8(15, 6, 6, channels).astype(np.float64) / 255
        split = load_npz(write_npz(tmp_path / "f.npz", x=x))
        assert_valid_split(split)
        assert split.input_shape == (channels, 6, 6)

    def test_uint8_rgb_values(self, tmp_path):
        x = np.zeros((10, 4, 4, 3), np.uint8)
        x[:, :, :, 2] = 255  # blue
        split = load_npz(write_npz(tmp_path / "blue.npz", x=x))
        assert split.input_shape == (3, 4, 4)
        assert torch.equal(split.train.x[0, 2], torch.ones(4, 4)) and split.train.x[:, :2].eq(0).all()

    def test_labels_are_remapped_in_sorted_order(self, tmp_path):
        y = np.array([30, 10, 20, 10, 30, 20, 10, 20, 30, 30, 10, 20])
        split = load_npz(write_npz(tmp_path / "l.npz", x=images_u8(12), y=y))
        assert split.label_names == ("10", "20", "30") and split.num_classes == 3
        all_y = torch.cat([split.train.y, split.test.y]).sort().values
        assert all_y.tolist() == sorted((y // 10 - 1).tolist())

    def test_label_names_are_honoured(self, tmp_path):
        y = np.arange(12) % 2
        path = write_npz(
            tmp_path / "n.npz", x=images_u8(12), y=y.astype(np.float32), label_names=np.array(["cat", "dog"])
        )
        split = load_npz(path)
        assert split.label_names == ("cat", "dog")

    def test_column_labels_and_text_labels(self, tmp_path):
        split = load_npz(write_npz(tmp_path / "c.npz", x=images_u8(12), y=(np.arange(12) % 3)[:, None]))
        assert split.num_classes == 3
        text = np.array(["b", "a"] * 6)
        split = load_npz(write_npz(tmp_path / "t.npz", x=images_u8(12), y=text))
        assert split.label_names == ("a", "b")

    def test_upload_uses_display_name_and_hash(self, tmp_path):
        path = write_npz(tmp_path / "up.npz", x=images_u8(12))
        split = load_npz(Upload(path.read_bytes(), "my data.npz"))
        assert split.name == "my data.npz" and split.spec["path"] is None
        assert split.spec["fingerprint"] == load_npz(path).spec["fingerprint"]
        plain = load_npz(io.BytesIO(path.read_bytes()), name="given.npz")
        assert plain.name == "given.npz"

    def test_load_data_dispatches_npz(self, tmp_path):
        path = write_npz(tmp_path / "d.npz", x=images_u8(12, 8, 10))
        split = load_data(str(path), seed=3)
        assert split.spec["source"] == "npz" and split.spec["path"] == str(path)
        assert load_data(path, image_size=10).input_shape == (1, 8, 10)  # a side that matches is fine
        with pytest.raises(DataError, match="image_size=16 does not apply.*8x10"):
            load_data(path, image_size=16)


# ---------------------------------------------------------------------------------------------
# Validation: every malformed input is a one-line DataError that names the problem
# ---------------------------------------------------------------------------------------------


def huge_header_npz(path: Path) -> Path:
    """An .npz whose x.npy header claims 6.5e9 values but carries no data: must be refused unread."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (100_000, 256, 256)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", buf.getvalue())
    return path


BAD_NPZ = {
    "two_dims": (dict(x=np.zeros((20, 8), np.uint8)), "2 dimensions"),
    "five_dims": (dict(x=np.zeros((20, 8, 8, 1, 1), np.uint8)), "5 dimensions"),
    "two_channels": (dict(x=np.zeros((20, 8, 8, 2), np.uint8)), "2 channels"),
    "channels_first": (dict(x=np.zeros((20, 3, 8, 8), np.uint8)), "moveaxis"),
    "rgba": (dict(x=np.zeros((20, 8, 8, 4), np.uint8)), "alpha"),
    "nan": (dict(x=np.full((20, 8, 8), np.nan)), "NaN"),
    "inf": (dict(x=np.full((20, 8, 8), np.inf)), "NaN or inf"),
    "float_over_one": (dict(x=np.full((20, 8, 8), 200.0)), r"expected \[0, 1\]: divide by 255"),
    "float_negative": (dict(x=np.full((20, 8, 8), -0.5)), r"expected \[0, 1\]"),
    "int_over_255": (dict(x=np.full((20, 8, 8), 300, np.int32)), "0-255"),
    "int_negative": (dict(x=np.full((20, 8, 8), -1, np.int16)), "0-255"),
    "complex": (dict(x=np.zeros((20, 8, 8), np.complex64)), "dtype"),
    "empty": (dict(x=np.zeros((0, 8, 8), np.uint8)), "empty"),
    "too_few": (dict(x=np.zeros((5, 8, 8), np.uint8)), "only 5 images"),
    "huge_side": (dict(x=np.zeros((10, 300, 8), np.uint8)), "256-pixel limit"),
    "labels_length": (dict(x=images_u8(20), y=np.arange(19)), "19 labels but there are 20 images"),
    "labels_2d": (dict(x=images_u8(20), y=np.zeros((20, 2))), "one label per image"),
    "labels_non_integral": (dict(x=images_u8(20), y=np.linspace(0, 1, 20)), "non-integral"),
    "labels_nan": (dict(x=images_u8(20), y=np.full(20, np.nan)), "non-integral"),
    "label_names_length": (
        dict(x=images_u8(20), y=np.arange(20) % 2, label_names=np.array(["a", "b", "c"])),
        "label_names has 3 names",
    ),
    "too_many_classes": (dict(x=images_u8(202), y=np.arange(202) % 101), "101 classes"),
    "no_x": (dict(images=images_u8(20)), "no array named 'x' \\(found: images\\)"),
    "keras_partner": (dict(x_train=images_u8(12), y_train=np.zeros(12), x_test=images_u8(3)), "partner"),
    "keras_shapes": (dict(x_train=images_u8(12), x_test=images_u8(3, 9, 9)), "same size"),
    "keras_too_small": (dict(x_train=images_u8(1), x_test=images_u8(9)), "at least 2 train"),
}


class TestValidation:
    @pytest.mark.parametrize("case", sorted(BAD_NPZ))
    def test_bad_npz_content(self, tmp_path, case):
        arrays, match = BAD_NPZ[case]
        path = write_npz(tmp_path / f"{case}.npz", **arrays)
        with pytest.raises(DataError, match=match) as err:
            load_npz(path)
        assert "\n" not in str(err.value)

    def test_object_arrays_are_refused(self, tmp_path):
        path = tmp_path / "obj.npz"
        np.savez(path, x=np.array([images_u8(2), "text"], dtype=object))  # savez pickles object arrays
        with pytest.raises(DataError, match="Python objects"):
            load_npz(path)

    def test_pickle_file_is_refused(self, tmp_path):
        import pickle

        path = tmp_path / "pickled.npz"
        path.write_bytes(pickle.dumps({"x": images_u8(12)}))
        with pytest.raises(DataError, match="not a readable .npz"):
            load_npz(path)

    @pytest.mark.parametrize(
        "content, match",
        [
            (b"this is not numpy", "not a readable .npz"),
            (b"PK\x03\x04 truncated zip", "not a readable .npz"),
        ],
    )
    def test_not_an_npz(self, tmp_path, content, match):
        path = tmp_path / "bad.npz"
        path.write_bytes(content)
        with pytest.raises(DataError, match=match):
            load_npz(path)

    def test_truncated_or_damaged_npz(self, tmp_path):
        raw = write_npz(tmp_path / "good.npz", x=images_u8(50, 32, 32)).read_bytes()
        path = tmp_path / "cut.npz"
        path.write_bytes(raw[:-2000])
        with pytest.raises(DataError, match="not a readable .npz"):
            load_npz(path)
        path.write_bytes(raw[:3000] + bytes([raw[3000] ^ 255]) + raw[3001:])  # one pixel flipped: bad CRC
        with pytest.raises(DataError, match="'x'.*cannot be read.*CRC"):
            load_npz(path)

    def test_npy_instead_of_npz(self, tmp_path):
        path = tmp_path / "single.npz"
        with open(path, "wb") as f:
            np.save(f, images_u8(12))
        with pytest.raises(DataError, match="single .npy array"):
            load_npz(path)

    def test_missing_file(self, tmp_path):
        with pytest.raises(DataError, match="file not found"):
            load_npz(tmp_path / "nope.npz")
        with pytest.raises(DataError, match="file not found"):
            load_data(tmp_path / "nope.zip")

    def test_huge_declared_array_is_refused_unread(self, tmp_path):
        with pytest.raises(DataError, match="too large"):
            load_npz(huge_header_npz(tmp_path / "huge.npz"))


# ---------------------------------------------------------------------------------------------
# Image folders and .zip files
# ---------------------------------------------------------------------------------------------


class TestImageFolders:
    def test_grey_directory(self, tmp_path):
        root = make_class_folder(tmp_path / "pets", {"dogs": 5, "cats": 6})
        split = load_image_folder(root, image_size=16)
        assert_valid_split(split)
        assert split.input_shape == (1, 16, 16)
        assert split.label_names == ("cats", "dogs")  # sorted class folders
        assert len(split.train) + len(split.test) == 11
        assert split.name == "pets" and split.spec["path"] == str(root)
        assert split.spec["source"] == "image_folder" and split.spec["image_size"] == 16

    def test_colour_gives_three_channels(self, tmp_path):
        root = make_class_folder(tmp_path / "c", {"a": 5, "b": 5})
        write_png(root / "a" / "colour.png", mode="RGB")
        assert load_image_folder(root).input_shape == (3, 32, 32)

    def test_rgb_with_equal_channels_and_rgba(self, tmp_path):
        root = make_class_folder(tmp_path / "g", {"a": 5, "b": 5})
        Image.fromarray(np.full((8, 8, 3), 77, np.uint8)).save(root / "a" / "grey_rgb.png")
        assert load_image_folder(root, image_size=8).input_shape == (1, 8, 8)
        write_png(root / "b" / "alpha.png", mode="RGBA")
        assert load_image_folder(root, image_size=8).input_shape == (3, 8, 8)

    def test_other_image_formats(self, tmp_path):
        root = tmp_path / "formats"
        for c in ("a", "b"):
            (root / c).mkdir(parents=True)
            for i in range(5):  # 16-bit grey: scaled to [0, 1], not clipped
                Image.fromarray(np.full((6, 9), 65535 if c == "a" else 0, np.uint16)).save(root / c / f"{i}.png")
        Image.new("1", (20, 20), 1).save(root / "a" / "bilevel.png")
        grey = load_image_folder(root, image_size=4)
        assert grey.input_shape == (1, 4, 4)
        whole = torch.cat([grey.train.x, grey.test.x])
        assert set(whole.flatten(1).mean(1).tolist()) == {0.0, 1.0}
        Image.fromarray(images_u8(1, 300, 400, 3)[0]).save(root / "a" / "photo.jpg", quality=90)
        palette = Image.new("P", (10, 10))
        palette.putpalette([255, 0, 0, 0, 255, 0] * 128)
        palette.save(root / "b" / "palette.png", transparency=0)
        assert load_image_folder(root, image_size=4).input_shape == (3, 4, 4)

    def test_zip_with_wrapper_folder_and_system_files(self, tmp_path):
        src = make_class_folder(tmp_path / "src", {"circles": 5, "squares": 6}, mode="RGB")
        (src / ".DS_Store").write_bytes(b"\0junk")
        (src / "circles" / ".DS_Store").write_bytes(b"\0junk")
        zip_path = zip_tree(src, tmp_path / "wrapped.zip", prefix="my_shapes/")
        with zipfile.ZipFile(zip_path, "a") as zf:
            zf.writestr("__MACOSX/my_shapes/circles/._0.png", b"resource fork")
        split = load_data(zip_path, image_size=12)
        assert_valid_split(split)
        assert split.input_shape == (3, 12, 12) and split.label_names == ("circles", "squares")
        assert split.name == "wrapped.zip"

    def test_zip_upload(self, tmp_path):
        zip_path = zip_tree(make_class_folder(tmp_path / "src"), tmp_path / "up.zip")
        split = load_image_folder(Upload(zip_path.read_bytes(), "upload.zip"), image_size=8)
        assert split.name == "upload.zip" and split.spec["path"] is None
        assert split.spec["fingerprint"] == load_image_folder(zip_path, image_size=8).spec["fingerprint"]

    def test_directory_and_zip_give_the_same_data(self, tmp_path):
        src = make_class_folder(tmp_path / "src")
        a = load_image_folder(src, image_size=8, seed=5)
        b = load_image_folder(zip_tree(src, tmp_path / "same.zip"), image_size=8, seed=5)
        assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)

    def test_one_class_is_refused(self, tmp_path):
        root = make_class_folder(tmp_path / "only", {"cats": 12})
        with pytest.raises(DataError, match="one class.*own sub-folder"):
            load_image_folder(root)
        with pytest.raises(DataError, match="one class"):
            load_image_folder(root / "cats")  # images straight in the folder: stray files
        with pytest.raises(DataError, match="one class"):
            load_image_folder(zip_tree(root, tmp_path / "one.zip", prefix="wrap/"))

    def test_images_outside_class_folders(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        write_png(root / "loose.png")
        with pytest.raises(DataError, match="'loose.png'.*not inside a class folder"):
            load_image_folder(root)

    def test_non_image_file_is_named(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        (root / "cats" / "notes.txt").write_text("hello")
        with pytest.raises(DataError, match="cats/notes.txt.*not an image"):
            load_image_folder(root)

    def test_corrupt_image_is_named(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        with pytest.raises(DataError, match="dogs/broken.png"):
            load_image_folder(root)

    def test_empty_class_folder(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        (root / "birds").mkdir()
        with pytest.raises(DataError, match="'birds'.*no images"):
            load_image_folder(root)

    def test_huge_image_is_refused(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        Image.new("1", (7000, 7000)).save(root / "cats" / "huge.png")  # 49 megapixels, tiny file
        with pytest.raises(DataError, match="7000x7000.*megapixel"):
            load_image_folder(root)

    def test_too_many_classes(self, tmp_path):
        root = tmp_path / "many"
        for i in range(101):
            (root / f"c{i:03d}").mkdir(parents=True)
        with pytest.raises(DataError, match="101 class folders"):
            load_image_folder(root)

    def test_bad_image_size(self, tmp_path):
        with pytest.raises(DataError, match="image_size"):
            load_image_folder(make_class_folder(tmp_path / "r"), image_size=1000)

    def test_not_a_zip(self, tmp_path):
        path = tmp_path / "fake.zip"
        path.write_text("not a zip")
        with pytest.raises(DataError, match="not a valid .zip"):
            load_data(path)

    @pytest.mark.parametrize("evil", ["../{tag}.png", "a/../../{tag}.png", "/tmp/{tag}.png", "..\\{tag}.png"])
    def test_zip_path_traversal_is_refused(self, tmp_path, evil):
        tag = f"evil_{uuid.uuid4().hex}"
        (tmp_path / "sub").mkdir()
        zip_path = zip_tree(make_class_folder(tmp_path / "src"), tmp_path / "sub" / "evil.zip")
        png = io.BytesIO()
        Image.new("L", (4, 4)).save(png, format="PNG")
        with zipfile.ZipFile(zip_path, "a") as zf:
            zf.writestr(evil.format(tag=tag), png.getvalue())
        with pytest.raises(DataError, match="absolute path|'\\.\\.'"):
            load_image_folder(zip_path)
        # Nothing landed where the name points (next to the temp dir, /tmp) or anywhere under tmp_path.
        for where in {Path(tempfile.gettempdir()), Path("/tmp"), Path.cwd()}:
            assert not (where / f"{tag}.png").exists()
        assert not list(tmp_path.rglob(f"{tag}*"))

    def test_zip_bomb_is_refused_fast(self, tmp_path, monkeypatch):
        zip_path = tmp_path / "bomb.zip"
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("a/0.png", b"x")
            with zf.open("b/zeros.png", "w", force_zip64=True) as f:
                zeros = bytes(1 << 20)
                for _ in range(600):  # 600 MiB declared, ~3 MB on disk
                    f.write(zeros)
        assert zip_path.stat().st_size < 10 << 20
        # "Refused fast" as behaviour: refused from the archive's directory, before a single member is inflated.
        with count_zip_members_opened(monkeypatch) as opened:
            with pytest.raises(DataError, match="zip bomb"):
                load_image_folder(zip_path)
        assert opened == [], f"members were unpacked before the refusal: {opened}"

    def test_zip_total_size_is_bounded(self, tmp_path, monkeypatch):
        # 600 members of 1 MiB each: none is suspicious alone, together they pass the 512 MiB limit.
        zip_path = tmp_path / "many.zip"
        zeros = bytes(1 << 20)
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for i in range(600):
                zf.writestr(f"c{i % 2}/{i}.bmp", zeros)
        with count_zip_members_opened(monkeypatch) as opened:
            with pytest.raises(DataError, match="would unpack to 600 MiB"):
                load_image_folder(zip_path)
        assert opened == [], f"members were unpacked before the total was checked: {opened}"

    def test_highly_compressed_member_is_refused(self, tmp_path):
        zip_path = tmp_path / "ratio.zip"
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("a/flat.bmp", bytes(20 << 20))
        with pytest.raises(DataError, match="expands .*x"):
            load_image_folder(zip_path)

    def test_zip_too_many_files(self, tmp_path):
        zip_path = tmp_path / "count.zip"
        with zipfile.ZipFile(zip_path, "w") as zf:
            for i in range(20_001):
                zf.writestr(f"c{i % 2}/{i}.png", b"")
        with pytest.raises(DataError, match="20,001 files"):
            load_image_folder(zip_path)


# ---------------------------------------------------------------------------------------------
# load_from_spec round trips
# ---------------------------------------------------------------------------------------------


def assert_same_split(a: DataSplit, b: DataSplit) -> None:
    """Same tensors, names and spec in both parts."""
    for pa, pb in ((a.train, b.train), (a.test, b.test)):
        assert torch.equal(pa.x, pb.x) and torch.equal(pa.y, pb.y)
        assert pa.label_names == pb.label_names
    assert a.spec == b.spec


class TestSpecRoundTrip:
    @pytest.mark.parametrize("source", ["digits", "shapes"])
    def test_builtin(self, source):
        split = load_data(source, seed=11, test_fraction=0.3)
        again = load_from_spec(json.loads(json.dumps(split.spec)))
        assert_same_split(split, again)
        if source == "shapes":
            assert torch.equal(split.test.factors, again.test.factors)

    def test_builtin_fingerprint_mismatch(self):
        spec = dict(load_data("digits").spec, fingerprint="0" * 64)
        with pytest.raises(DataError, match="differs from the one this model was trained on"):
            load_from_spec(spec)

    # A spec's path is opened only when the caller trusts the spec (allow_paths=True): see tests/test_budget.py.
    def test_npz_round_trip_change_and_removal(self, tmp_path):
        path = write_npz(tmp_path / "mine.npz", x=images_u8(30), y=np.arange(30) % 3)
        split = load_data(path, seed=2)
        spec = json.loads(json.dumps(split.spec))
        assert spec["path"] == str(path) and spec["name"] == "mine.npz" and len(spec["fingerprint"]) == 64
        assert_same_split(split, load_from_spec(spec, allow_paths=True))
        write_npz(path, x=images_u8(30, seed=9), y=np.arange(30) % 3)
        with pytest.raises(DataError, match="'mine.npz' changed since the model was trained"):
            load_from_spec(spec, allow_paths=True)
        path.unlink()
        with pytest.raises(DataError, match="missing"):
            load_from_spec(spec, allow_paths=True)

    def test_image_folder_round_trip_and_change(self, tmp_path):
        root = make_class_folder(tmp_path / "pets")
        split = load_image_folder(root, image_size=8, seed=4)
        assert_same_split(split, load_from_spec(split.spec, allow_paths=True))
        write_png(root / "cats" / "new.png", seed=999)
        with pytest.raises(DataError, match="changed"):
            load_from_spec(split.spec, allow_paths=True)

    def test_uploaded_data_needs_the_file(self, tmp_path):
        blob = write_npz(tmp_path / "u.npz", x=images_u8(12)).read_bytes()
        split = load_npz(Upload(blob, "u.npz"))
        with pytest.raises(DataError, match="upload 'u.npz' again"):
            load_from_spec(split.spec)
        assert_same_split(split, load_from_spec(split.spec, file=Upload(blob, "u.npz")))
        with pytest.raises(DataError, match="changed"):
            load_from_spec(
                split.spec, file=Upload(write_npz(tmp_path / "v.npz", x=images_u8(13)).read_bytes(), "u.npz")
            )

    @pytest.mark.parametrize("spec", [None, {}, {"source": "imagenet"}, {"source": "npz", "path": "/x.npz"}])
    def test_malformed_spec(self, spec):
        with pytest.raises(DataError, match="recipe"):
            load_from_spec(spec)
