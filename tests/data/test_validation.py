"""Validation: every malformed input is a one-line DataError that names the problem (vae_core.data.checks and
the loaders)."""
from __future__ import annotations

import numpy as np
import pytest

from vae_core.data import load_data, load_npz
from vae_core.errors import DataError

from ._helpers import huge_header_npz, images_u8, write_npz


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
