"""The procedural shapes set (vae_core.data.shapes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_core.data import shapes as shapes_module
from vae_core.data import SHAPE_FACTOR_SIZES, factor_sweeps, load_data, make_shapes, render_shapes
from vae_core.errors import DataError


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


class TestFactorSweeps:
    """The lab's reference rows: each factor alone, swept over its range, drawn by the generator itself."""

    BASE = (1, 3, 5, 16, 16)  # an ellipse in the middle, mid scale, turned a little

    def test_row_k_changes_factor_k_only(self):
        images, factors = factor_sweeps(self.BASE, n_values=7, image_size=32)
        assert images.shape == (5, 7, 32, 32) and images.dtype == np.uint8
        assert factors.shape == (5, 7, 5)
        for k, size in enumerate(SHAPE_FACTOR_SIZES):
            others = np.delete(factors[k], k, axis=1)
            assert (others == np.delete(np.array(self.BASE), k)).all(), f"row {k} moved another factor"
            column = factors[k, :, k]
            assert column[0] == 0 and column[-1] == size - 1 and (np.diff(column) >= 0).all()

    def test_each_tile_is_the_sprite_of_its_factors(self):
        images, factors = factor_sweeps(self.BASE, n_values=5, image_size=64)
        assert np.array_equal(images.reshape(-1, 64, 64), render_shapes(factors.reshape(-1, 5), 64))

    def test_every_row_visibly_changes(self):
        images, _ = factor_sweeps(self.BASE, n_values=7)
        for k in range(5):
            distinct = {images[k, j].tobytes() for j in range(7)}
            assert len(distinct) >= min(3, SHAPE_FACTOR_SIZES[k]), f"row {k} shows {len(distinct)} different sprites"

    @pytest.mark.parametrize("base", [(3, 0, 0, 0, 0), (0, 0, 0, 0), (0, -1, 0, 0, 0), (0, 0, 40, 0, 0)])
    def test_bad_base(self, base):
        with pytest.raises(DataError, match="factor indices"):
            factor_sweeps(base)

    def test_bad_column_count(self):
        with pytest.raises(DataError):
            factor_sweeps(self.BASE, n_values=1)
