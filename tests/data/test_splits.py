"""Splits (vae_core.data.splits): seeded, disjoint, the given split kept, the spec JSON-able."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from vae_core.data import MIN_IMAGES, load_data, load_image_folder, load_npz
from vae_core.errors import DataError

from ._helpers import write_npz, images_u8, sorted_rows


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
