"""Nearest neighbours (vae_core.latent.neighbours): against brute-force numpy, the tile nearest a point, the
copying yardstick."""
import numpy as np
import pytest
import torch

from vae_core import latent
from vae_core.latent import nearest_index, nearest_neighbours, nearest_training_images, typical_nearest_distance

from ._helpers import _rand


class TestNeighbours:
    def _reference(self, query, reference, k):
        q, r = query.reshape(len(query), -1).double().numpy(), reference.reshape(len(reference), -1).double().numpy()
        dist = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))
        idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return idx, np.take_along_axis(dist, idx, axis=1)

    def test_matches_brute_force_numpy(self):
        query, reference = _rand(9, 3, 4, 4, seed=1), _rand(60, 3, 4, 4, seed=2)
        idx, dist = nearest_neighbours(query, reference, k=5)
        ref_idx, ref_dist = self._reference(query, reference, 5)
        assert idx.dtype == torch.int64 and idx.shape == dist.shape == (9, 5)
        np.testing.assert_array_equal(idx.numpy(), ref_idx)
        np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-5)
        assert (dist[:, 1:] >= dist[:, :-1]).all()

    def test_chunked_equals_unchunked(self, monkeypatch):
        query, reference = _rand(9, 16, seed=1), _rand(60, 16, seed=2)
        whole = nearest_neighbours(query, reference, k=3)
        monkeypatch.setattr(latent.neighbours, "_NEIGHBOUR_CHUNK_VALUES", 120)  # two query rows per chunk
        chunked = nearest_neighbours(query, reference, k=3)
        assert torch.equal(whole[0], chunked[0]) and torch.equal(whole[1], chunked[1])

    def test_a_training_image_finds_itself(self, trained_digits_vae, digits, digits_encoding):
        rows = torch.tensor([5, 100, 1000])
        images = digits.train.x[rows]
        idx, dist = nearest_training_images(trained_digits_vae, images, digits.train.x, k=3)
        assert (dist[:, 0] == 0).all() and torch.equal(digits.train.x[idx[:, 0]], images)
        idx, dist = nearest_training_images(trained_digits_vae, images, digits.train.x, k=3, space="latent",
                                            train_mu=digits_encoding.mu)
        assert (dist[:, 0] < 1e-5).all()
        assert torch.equal(digits.train.x[idx[:, 0]], images) or torch.equal(idx[:, 0], rows)

    def test_k_larger_than_the_reference(self):
        with pytest.raises(ValueError, match="1..4"):
            nearest_neighbours(_rand(2, 3), _rand(4, 3), k=5)


class TestNearestIndex:
    def test_values_of_a_traversal_row(self):
        values = torch.linspace(-3, 3, 7)
        assert nearest_index(values, 0.0) == 3
        assert nearest_index(values, 2.6) == 6
        assert nearest_index(values, -99.0) == 0  # beyond the row: its end

    def test_points_of_a_plane(self):
        plane = torch.tensor([[-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
        assert nearest_index(plane, [0.9, -0.8]) == 3
        assert nearest_index(plane, torch.tensor([-0.2, 0.3])) == 0

    def test_ties_go_to_the_first(self):
        assert nearest_index(torch.tensor([-1.0, 1.0]), 0.0) == 0

    @pytest.mark.parametrize("points, target", [(torch.empty(0), 0.0), (torch.zeros(3, 2), 0.0),
                                                (torch.zeros(3, 2), [0.0, 0.0, 0.0])])
    def test_shapes_must_agree(self, points, target):
        with pytest.raises(ValueError):
            nearest_index(points, target)


class TestTypicalNearestDistance:
    def test_a_copy_is_at_distance_zero(self):
        reference = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(1))
        assert typical_nearest_distance(reference[:10], reference) == pytest.approx(0.0, abs=1e-6)

    def test_median_of_nearest_distances(self):
        reference = torch.zeros(3, 1, 1, 2)
        reference[1, 0, 0] = torch.tensor([10.0, 0.0])
        reference[2, 0, 0] = torch.tensor([0.0, 10.0])
        query = torch.zeros(3, 1, 1, 2)
        query[:, 0, 0, 0] = torch.tensor([1.0, 2.0, 9.0])  # nearest distances 1, 2, 1
        assert typical_nearest_distance(query, reference) == pytest.approx(1.0)

    def test_subsamples_the_query_reproducibly(self):
        g = torch.Generator().manual_seed(2)
        query, reference = torch.rand(300, 1, 3, 3, generator=g), torch.rand(100, 1, 3, 3, generator=g)
        a = typical_nearest_distance(query, reference, max_points=50, seed=3)
        assert a == typical_nearest_distance(query, reference, max_points=50, seed=3)
        assert a > 0

    def test_bad_input(self):
        with pytest.raises(ValueError):
            typical_nearest_distance(torch.empty(0, 1, 2, 2), torch.rand(3, 1, 2, 2))
        with pytest.raises(ValueError):
            typical_nearest_distance(torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2), max_points=0)
