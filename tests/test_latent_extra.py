"""The latent toolkit's helpers for the explore pages: map extents, posterior ellipses (against sampling), the
ELBO along a path (against losses.elbo_terms), image files in, PNG and animated GIF out."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.config import model_config_for
from vae_core.errors import UserInputError
from vae_core.latent import (
    animated_gif, fit_view, image_from_bytes, path_elbo, png_bytes, posterior_ellipses, to_uint8, view_extent,
)
from vae_core.losses import elbo_terms
from vae_core.models import build_model


def _model(kind="vae", latent_dim=3, shape=(1, 8, 8)):
    config = model_config_for(shape, 4, kind=kind, arch="mlp", latent_dim=latent_dim, hidden=(32,))
    return build_model(config, seed=0)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


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


class TestPathElbo:
    @pytest.mark.parametrize("kind", ["vae", "ae", "cvae"])
    def test_matches_elbo_terms_with_the_same_seed(self, kind):
        model = _model(kind).train()
        x = torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        y = 2 if kind == "cvae" else None
        got = path_elbo(model, x, y, seed=5)
        assert model.training  # the flag is restored
        labels = torch.full((7,), 2) if kind == "cvae" else None
        with torch.no_grad():
            want = elbo_terms(model.eval(), x, labels, generator=torch.Generator().manual_seed(5)).elbo
        assert got.shape == (7,)
        torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-4)
        assert torch.equal(got, path_elbo(model, x, y, seed=5))  # seeded: the same numbers again

    def test_cvae_needs_a_class(self):
        with pytest.raises(ValueError, match="class label"):
            path_elbo(_model("cvae"), torch.rand(2, 1, 8, 8))

    def test_batches_do_not_change_the_numbers_of_a_deterministic_ae(self):
        model = _model("ae")
        x = torch.rand(9, 1, 8, 8)
        torch.testing.assert_close(path_elbo(model, x, batch_size=2), path_elbo(model, x, batch_size=100))


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


class TestImageFromBytes:
    def test_rgb_file_to_a_grey_model_shape(self):
        picture = np.zeros((40, 40, 3), dtype=np.uint8)
        picture[:, 20:] = 255  # right half white
        x = image_from_bytes(_png(picture, "RGB"), (1, 8, 8))
        assert x.shape == (1, 1, 8, 8)
        assert x[0, 0, :, :4].max() == 0 and x[0, 0, :, 4:].min() == pytest.approx(1.0)
        inverted = image_from_bytes(_png(picture, "RGB"), (1, 8, 8), invert=True)
        torch.testing.assert_close(inverted, 1 - x)

    def test_grey_file_to_a_colour_model(self):
        x = image_from_bytes(_png(np.full((5, 7), 128, dtype=np.uint8), "L"), (3, 16, 16))
        assert x.shape == (1, 3, 16, 16)
        assert x.sub(128 / 255).abs().max() < 1e-5

    def test_garbage_is_a_user_error(self):
        with pytest.raises(UserInputError, match="PNG or JPEG"):
            image_from_bytes(b"not an image at all", (1, 8, 8))


class TestPngAndGif:
    def test_png_round_trip(self):
        picture = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
        back = np.asarray(Image.open(io.BytesIO(png_bytes(picture))))
        assert np.array_equal(back, picture)

    @pytest.mark.parametrize("n", [2, 7, 24])
    def test_gif_has_exactly_n_frames_even_when_they_are_equal(self, n):
        images = torch.full((n, 1, 8, 8), 0.5)  # a collapsed model: every step the same image
        gif = animated_gif(images, scale=4)
        with Image.open(io.BytesIO(gif)) as im:
            assert im.n_frames == n
            assert im.info.get("loop") == 0  # loops forever
            assert im.size == (32, 32 + 4)  # upscaled 4x, plus the progress bar

    def test_gif_frames_are_the_images_upscaled_without_blur(self):
        images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        with Image.open(io.BytesIO(animated_gif(images, scale=3, progress_bar=False))) as im:
            for i in range(3):
                im.seek(i)
                frame = np.asarray(im.convert("L"))
                want = to_uint8(images[i:i + 1])[0, :, :, 0].repeat(3, 0).repeat(3, 1)
                assert np.abs(frame.astype(int) - want.astype(int)).max() <= 2  # GIF palette rounding only

    def test_gif_refusals(self):
        with pytest.raises(ValueError, match="non-empty"):
            animated_gif(torch.empty(0, 1, 8, 8))
        with pytest.raises(ValueError, match="pixels wide"):
            animated_gif(torch.rand(20, 1, 8, 8), scale=1)


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
