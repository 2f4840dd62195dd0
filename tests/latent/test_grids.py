"""Planes of the latent space (vae_core.latent.grids): extents, grids, map extents, how far codes reach, and
where a decoded grid's picture goes."""
import numpy as np
import pytest
import torch

from vae_core.latent import code_radius, decode, fit_view, grid_extent, manifold_grid, plane_grid, view_extent

from ._helpers import _correlated_codes, _model, _randn


class TestGrid:
    EXTENT = (-2.0, 1.0, -0.5, 3.0)

    @pytest.mark.parametrize("d", [2, 4])
    def test_corners_and_orientation(self, d):
        model = _model("vae", latent_dim=d)
        view = fit_view(_correlated_codes(d=d))
        n = 6
        images, z, plane = manifold_grid(model, n, view=view, extent=self.EXTENT)
        x_min, x_max, y_min, y_max = self.EXTENT
        assert images.shape[0] == n * n
        corners = {0: (x_min, y_max), n - 1: (x_max, y_max), n * n - n: (x_min, y_min), n * n - 1: (x_max, y_min)}
        for i, point in corners.items():
            point = torch.tensor([point])
            torch.testing.assert_close(plane[i:i + 1], point)
            torch.testing.assert_close(images[i], decode(model, view.inverse_transform(point))[0], rtol=0, atol=1e-6)
        assert (plane[:n, 1] == y_max).all()  # the top row is the largest y

    def test_default_extent_is_the_prior(self, trained_digits_vae):
        _, _, plane = manifold_grid(trained_digits_vae, 5)
        assert plane[0].tolist() == [-3.0, 3.0] and plane[-1].tolist() == [3.0, -3.0]

    def test_without_a_view_only_dims_vary(self):
        model = _model("vae", latent_dim=4)
        base = _randn(4)
        _, z, plane = manifold_grid(model, 4, dims=(1, 3), base=base)
        assert torch.equal(z[:, [1, 3]], plane)
        assert torch.equal(z[:, [0, 2]], base[[0, 2]].expand(16, 2))

    def test_prior_extent_of_a_pca_view(self):
        view = fit_view(_correlated_codes(), "pca")
        x_min, x_max, y_min, y_max = grid_extent(view, mode="prior", k=2)
        center = view.transform(torch.zeros(1, 5))[0]  # the prior mean in the view
        torch.testing.assert_close(torch.tensor([x_min + x_max, y_min + y_max]) / 2, center)
        width = torch.tensor([x_max - x_min, y_max - y_min])
        torch.testing.assert_close(width, torch.tensor([4.0, 4.0]))  # ±2σ with σ = 1 along orthonormal components
        assert grid_extent(None) == (-3.0, 3.0, -3.0, 3.0)

    def test_data_extent_is_the_quantile_range(self, digits_encoding):
        view = fit_view(digits_encoding.mu)
        extent = grid_extent(view, digits_encoding.mu, mode="data", quantile=0.05)
        points = digits_encoding.mu.double().numpy()
        reference = np.quantile(points, [0.05, 0.95], axis=0).T.reshape(-1)  # x_min, x_max, y_min, y_max
        np.testing.assert_allclose(extent, reference, rtol=1e-6)

    def test_plane_grid_row_major(self):
        plane = plane_grid(3, (0, 2, 0, 2))
        assert plane.tolist() == [[0, 2], [1, 2], [2, 2], [0, 1], [1, 1], [2, 1], [0, 0], [1, 0], [2, 0]]


class TestViewExtent:
    def test_covers_the_data_and_the_prior_box(self):
        mu = _randn(200, 2) * 10  # spread far beyond the prior
        view = fit_view(mu, "identity")
        x0, x1, y0, y1 = view_extent(view, mu, quantile=0.0, pad=0.0)
        assert (x0, x1) == pytest.approx((mu[:, 0].min().item(), mu[:, 0].max().item()))
        collapsed = torch.zeros(50, 2) + 0.01 * _randn(50, 2)
        x0, x1, y0, y1 = view_extent(fit_view(collapsed, "identity"), collapsed, pad=0.0)
        assert (x0, x1, y0, y1) == pytest.approx((-3, 3, -3, 3))  # the prior's ±3σ box wins

    def test_pad_widens_each_side(self):
        mu = _randn(100, 2)
        view = fit_view(mu, "identity")
        a = view_extent(view, mu, pad=0.0)
        b = view_extent(view, mu, pad=0.1)
        assert b[0] == pytest.approx(a[0] - 0.1 * (a[1] - a[0]))
        assert b[3] == pytest.approx(a[3] + 0.1 * (a[3] - a[2]))

    def test_tsne_uses_its_embedding_only(self):
        mu = _randn(60, 5)
        view = fit_view(mu, "tsne", max_tsne_points=60)
        x0, x1, y0, y1 = view_extent(view, mu, quantile=0.0, pad=0.0)
        assert x0 == pytest.approx(view.embedding_[:, 0].min().item())


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


class TestGridPictureBox:
    @pytest.mark.parametrize("n,tile,padding", [(15, 8, 0), (15, 8, 1), (4, 32, 2), (2, 8, 1)])
    def test_every_tile_centre_lands_on_its_code(self, n, tile, padding):
        from vae_core.latent import grid_picture_box, plane_grid

        extent = (-3.3, 2.7, -1.0, 5.0)
        x0, x1, y0, y1 = grid_picture_box(extent, n, tile, padding)
        size = n * (tile + padding) + padding
        codes = plane_grid(n, extent).reshape(n, n, 2)  # row-major, top row (largest y) first
        for i in range(n):  # row
            for j in range(n):  # column
                cx = padding + j * (tile + padding) + tile / 2  # the tile's centre in picture pixels
                cy = padding + i * (tile + padding) + tile / 2  # from the top
                x = x0 + cx / size * (x1 - x0)
                y = y1 - cy / size * (y1 - y0)  # the picture's top is at y1
                assert (x, y) == pytest.approx(tuple(codes[i, j].tolist()), abs=1e-5)

    def test_refusals(self):
        from vae_core.latent import grid_picture_box

        with pytest.raises(ValueError):
            grid_picture_box((0, 1, 0, 1), 1, 8)

    def test_non_square_tiles(self):
        from vae_core.latent import grid_picture_box

        a = grid_picture_box((0, 1, 0, 1), 5, (8, 16), 1)
        assert a[:2] == pytest.approx(grid_picture_box((0, 1, 0, 1), 5, 8, 1)[:2])
        assert a[2:] == pytest.approx(grid_picture_box((0, 1, 0, 1), 5, 16, 1)[2:])
