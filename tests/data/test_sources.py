"""The entry points (vae_core.data.sources): load_from_spec round trips."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vae_core.data import DataSplit, load_data, load_from_spec, load_image_folder, load_npz
from vae_core.errors import DataError

from ._helpers import write_npz, images_u8, write_png, make_class_folder, Upload


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
