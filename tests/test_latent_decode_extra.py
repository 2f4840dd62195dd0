"""The latent helpers the Decode and Generate pages use: nearest_index, code_radius, typical_nearest_distance."""
import pytest
import torch

from vae_core.latent import code_radius, nearest_index, typical_nearest_distance


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


class TestCodeRadius:
    def test_is_the_quantile_of_absolute_codes(self):
        mu = torch.tensor([[1.0, -2.0], [-4.0, 3.0]])
        assert code_radius(mu, 1.0) == 4.0
        assert code_radius(mu, 0.5) == pytest.approx(2.5)

    def test_covers_almost_every_code(self):
        mu = torch.randn(2000, 3, generator=torch.Generator().manual_seed(0)) * 5
        r = code_radius(mu)
        assert (mu.abs() <= r).float().mean() == pytest.approx(0.99, abs=0.002)

    @pytest.mark.parametrize("mu, q", [(torch.empty(0, 2), 0.99), (torch.zeros(3), 0.99), (torch.zeros(3, 2), 0.0)])
    def test_bad_input(self, mu, q):
        with pytest.raises(ValueError):
            code_radius(mu, q)


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
