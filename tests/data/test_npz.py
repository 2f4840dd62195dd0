"""User .npz files (vae_core.data.npz): the accepted layouts."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from vae_core.data import load_data, load_npz
from vae_core.errors import DataError

from ._helpers import write_npz, images_u8, Upload, assert_valid_split


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
