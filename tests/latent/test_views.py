"""2-D views (vae_core.latent.views): identity, PCA against numpy's SVD, t-SNE, and posterior ellipses against
sampling."""
import numpy as np
import pytest
import torch

from vae_core.latent import decode, encode_dataset, fit_view, grid_extent, manifold_grid, posterior_ellipses
from vae_core.latent._plumbing import _subsample

from ._helpers import _correlated_codes, _model, _rand, _randn


class TestViews:
    def test_identity_view_is_exact(self, digits_encoding):
        view = fit_view(digits_encoding.mu)
        assert view.method == "identity" and view.decodable and view.axis_labels == ("z[0]", "z[1]")
        assert torch.equal(view.transform(digits_encoding.mu), digits_encoding.mu)
        points = _randn(10, 2)
        assert torch.equal(view.inverse_transform(points), points)

    def test_one_dimensional_latent_pads_a_zero_axis(self):
        mu = _randn(10, 1)
        view = fit_view(mu)
        points = view.transform(mu)
        assert torch.equal(points[:, 0:1], mu) and torch.equal(points[:, 1], torch.zeros(10))
        assert torch.equal(view.inverse_transform(points), mu)

    def test_auto_method(self):
        assert [fit_view(_randn(10, d)).method for d in (1, 2, 3, 8)] == ["identity", "identity", "pca", "pca"]

    def test_pca_matches_numpy_svd(self):
        mu = _correlated_codes()
        view = fit_view(mu, "pca")
        m = mu.double().numpy()
        centred = m - m.mean(0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        signs = np.sign(np.sum(view.components_.numpy() * vt[:2], axis=1))  # components are unique up to sign
        np.testing.assert_allclose(view.components_.numpy(), vt[:2] * signs[:, None], atol=1e-10)
        np.testing.assert_allclose(view.transform(mu).numpy(), (centred @ vt[:2].T) * signs, atol=1e-5)
        ratio = s[:2] ** 2 / np.sum(s ** 2)
        np.testing.assert_allclose(view.explained_variance_ratio_.numpy(), ratio, atol=1e-10)
        assert view.axis_labels == (f"PC 1 ({100 * ratio[0]:.0f}% of variance)", f"PC 2 ({100 * ratio[1]:.0f}%)")

    def test_pca_round_trip_in_the_plane(self):
        view = fit_view(_correlated_codes(), "pca")
        points = _randn(50, 2, seed=1) * 3
        torch.testing.assert_close(view.transform(view.inverse_transform(points)), points, rtol=0, atol=1e-5)
        # And a code maps back to its projection: the residual is orthogonal to the plane.
        mu = _correlated_codes(seed=2)
        residual = (mu - view.inverse_transform(view.transform(mu))).double()
        assert (residual @ view.components_.T).abs().max() < 1e-5

    def test_pca_view_point_decodes_to_the_image_of_its_latent_vector(self):
        model = _model("vae", latent_dim=5)
        view = fit_view(encode_dataset(model, _rand(100, 1, 8, 8)).mu, "pca")
        images, z, plane = manifold_grid(model, 5, view=view, extent=grid_extent(view, mode="prior", k=2))
        assert torch.equal(z, view.inverse_transform(plane))
        assert torch.equal(images, decode(model, z))  # the same full latent vectors, the very same images
        for i in (0, 7, 24):
            one = decode(model, view.inverse_transform(plane[i:i + 1]))
            torch.testing.assert_close(one[0], images[i], rtol=0, atol=1e-6)

    def test_tsne_view_only(self):
        mu = _correlated_codes(n=60)
        view = fit_view(mu, "tsne", max_tsne_points=30)
        assert view.method == "tsne" and not view.decodable and "view only" in view.axis_labels[0]
        assert len(view.indices_) == 30 and torch.equal(view.indices_, view.indices_.sort().values)
        assert torch.equal(_subsample(60, 30, seed=0), view.indices_)  # deterministic
        assert torch.equal(view.transform(mu[view.indices_]), view.embedding_) and view.embedding_.shape == (30, 2)
        with pytest.raises(ValueError, match="no inverse"):
            view.inverse_transform(torch.zeros(1, 2))
        with pytest.raises(ValueError, match="fitted"):
            view.transform(mu)
        with pytest.raises(ValueError, match="t-SNE"):
            manifold_grid(_model(latent_dim=5), 3, view=view)
        with pytest.raises(ValueError, match="data"):
            grid_extent(view)
        x_min, x_max, y_min, y_max = grid_extent(view, mode="data", quantile=0)
        assert x_min == view.embedding_[:, 0].min() and y_max == view.embedding_[:, 1].max()

    def test_bad_requests(self):
        with pytest.raises(ValueError, match="pca"):
            fit_view(_randn(10, 3), "identity")
        with pytest.raises(ValueError, match="umap"):
            fit_view(_randn(10, 3), "umap")
        with pytest.raises(ValueError, match=r"\(N, 3\)"):
            fit_view(_randn(10, 3)).transform(_randn(4, 2))


class TestPosteriorEllipses:
    def test_identity_view_is_axis_aligned_sigma(self):
        mu = torch.tensor([[1.0, -2.0]])
        logvar = torch.log(torch.tensor([[0.25, 4.0]]))  # σ = 0.5, 2
        out = posterior_ellipses(fit_view(mu.repeat(3, 1), "identity"), mu, logvar, k=2.0, n_vertices=100)
        assert out.shape == (1, 100, 2)
        pts = out[0] - mu[0]
        assert pts[:, 0].abs().max() == pytest.approx(2 * 0.5, rel=1e-3)
        assert pts[:, 1].abs().max() == pytest.approx(2 * 2.0, rel=1e-3)
        assert torch.equal(out[0, 0], out[0, -1])  # closed

    def test_pca_view_matches_the_projected_samples(self):
        """The 1σ ellipse of the projected Gaussian: its covariance equals the sample covariance of projected
        draws from the posterior."""
        data = _randn(300, 4) * torch.tensor([3.0, 2.0, 0.5, 0.1])
        view = fit_view(data, "pca")
        mu = torch.tensor([[0.5, -1.0, 0.2, 0.0]])
        sigma = torch.tensor([[0.3, 1.2, 0.8, 2.0]])
        outline = posterior_ellipses(view, mu, 2 * sigma.log(), k=1.0, n_vertices=400)[0].double()  # (V, 2)
        center = view.transform(mu)[0].double()
        draws = view.transform(mu + sigma * _randn(200_000, 4, seed=1)).double()
        sample_cov = torch.cov((draws - center).T)
        # The points x of a 1σ ellipse satisfy (x - c)ᵀ Σ⁻¹ (x - c) = 1.
        d = outline - center
        m = torch.einsum("vi,ij,vj->v", d, torch.linalg.inv(sample_cov), d)
        assert m.min() > 0.97 and m.max() < 1.03

    def test_refusals(self):
        mu = _randn(20, 3)
        with pytest.raises(ValueError, match="autoencoder"):
            posterior_ellipses(fit_view(mu, "pca"), mu, None)
        with pytest.raises(ValueError, match="t-SNE"):
            posterior_ellipses(fit_view(mu, "tsne", max_tsne_points=20), mu, torch.zeros(20, 3))
        with pytest.raises(ValueError, match="same shape"):
            posterior_ellipses(fit_view(mu, "pca"), mu, torch.zeros(20, 2))
