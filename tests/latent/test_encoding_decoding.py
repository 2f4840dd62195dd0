"""Encoding and decoding (vae_core.latent.encoding, .decoding): shapes for every kind x arch x input, the
CVAE's labels, identities against one big encode and model.decode_mean, prior samples."""
import pytest
import torch

from vae_core.config import KINDS
from vae_core.latent import (
    decode, encode_dataset, fit_view, grid_extent, manifold_grid, nearest_training_images, reconstruct,
    sample_prior, samples_per_class, traverse,
)

from ._helpers import ARCH_INPUTS, CLASSES, _label, _model, _rand, _randn


class TestShapes:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("arch, shape", ARCH_INPUTS)
    def test_encode_decode_reconstruct(self, kind, arch, shape):
        model = _model(kind, arch, shape)
        x, y = _rand(6, *shape), _label(model, 6)
        enc = encode_dataset(model, x, y, batch_size=4)
        assert enc.mu.shape == (6, 3) and enc.mu.dtype == torch.float32 and enc.y.shape == (6,)
        deterministic = not model.config.is_variational  # the AE and the WAE have no posterior σ
        assert (enc.logvar is None) == deterministic and (enc.sigma is None) == deterministic
        if not deterministic:
            assert enc.logvar.shape == enc.sigma.shape == (6, 3)
        for images in (decode(model, _randn(5, 3), _label(model, 5)), reconstruct(model, x, y)):
            assert images.shape[1:] == shape and images.dtype == torch.float32 and images.device.type == "cpu"
            assert 0 <= images.min() and images.max() <= 1
        assert reconstruct(model, x, y).shape == (6, *shape)

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("arch, shape", ARCH_INPUTS)
    def test_grid_traverse_sample_neighbours(self, kind, arch, shape):
        model = _model(kind, arch, shape)
        y = _label(model)
        images, z, plane = manifold_grid(model, 3, y=y)
        assert images.shape == (9, *shape) and z.shape == (9, 3) and plane.shape == (9, 2)
        images, values = traverse(model, torch.zeros(3), dims=[0, 2], n=4, y=y)
        assert images.shape == (2, 4, *shape) and values.shape == (4,)
        z, images = sample_prior(model, 5, y=y)
        assert z.shape == (5, 3) and images.shape == (5, *shape)
        x = _rand(7, *shape)
        idx, dist = nearest_training_images(model, images, x, k=2)
        assert idx.shape == dist.shape == (5, 2) and idx.dtype == torch.int64
        idx, dist = nearest_training_images(model, images, x, k=2, space="latent", y=y, train_y=_label(model, 7))
        assert idx.shape == dist.shape == (5, 2)
        if kind == "cvae":
            images, z = samples_per_class(model, 3)
            assert images.shape == (CLASSES, 3, *shape) and z.shape == (3, 3)

    @pytest.mark.parametrize("d", [1, 2, 5])
    def test_every_latent_dim(self, d):
        model = _model(latent_dim=d)
        enc = encode_dataset(model, _rand(20, 1, 8, 8))
        view = fit_view(enc.mu)
        assert view.method == ("identity" if d <= 2 else "pca") and view.transform(enc.mu).shape == (20, 2)
        for kwargs in ({"view": view}, {}):
            images, z, plane = manifold_grid(model, 4, **kwargs)
            assert images.shape == (16, 1, 8, 8) and z.shape == (16, d)
        assert len(grid_extent(view, enc.mu, mode="data")) == 4
        assert traverse(model, enc.mu[0], n=5)[0].shape == (d, 5, 1, 8, 8)

    def test_encoding_keeps_the_labels(self):
        model = _model("vae")
        x = _rand(4, 1, 8, 8)
        assert torch.equal(encode_dataset(model, x, torch.tensor([3, 1, 0, 2])).y, torch.tensor([3, 1, 0, 2]))
        assert torch.equal(encode_dataset(model, x).y, torch.full((4,), -1))  # none given

    def test_training_flag_restored_and_no_graph(self):
        model = _model("vae").train()
        mu = encode_dataset(model, _rand(3, 1, 8, 8)).mu
        assert model.training and not mu.requires_grad


class TestCvaeLabels:
    CALLS = {
        "encode_dataset": lambda m: encode_dataset(m, _rand(2, 1, 8, 8)),
        "decode": lambda m: decode(m, torch.zeros(2, 3)),
        "reconstruct": lambda m: reconstruct(m, _rand(2, 1, 8, 8)),
        "manifold_grid": lambda m: manifold_grid(m, 2),
        "traverse": lambda m: traverse(m, torch.zeros(3)),
        "sample_prior": lambda m: sample_prior(m, 2),
        "nearest_training_images": lambda m: nearest_training_images(m, _rand(2, 1, 8, 8), _rand(5, 1, 8, 8),
                                                                     space="latent"),
    }

    @pytest.mark.parametrize("name", CALLS)
    def test_missing_label_is_a_clear_error(self, name):
        with pytest.raises(ValueError, match="label"):
            self.CALLS[name](_model("cvae"))

    def test_bad_labels(self):
        model = _model("cvae")
        with pytest.raises(ValueError, match="0..3"):
            decode(model, torch.zeros(2, 3), 4)
        with pytest.raises(ValueError, match=r"\(2,\)"):
            decode(model, torch.zeros(2, 3), torch.tensor([0, 1, 2]))

    def test_int_label_means_every_row(self):
        model = _model("cvae")
        z = _randn(3, 3)
        assert torch.equal(decode(model, z, 2), decode(model, z, torch.full((3,), 2)))

    def test_samples_per_class_needs_a_cvae(self):
        with pytest.raises(ValueError, match="CVAE"):
            samples_per_class(_model("vae"), 2)


class TestEncodeDecode:
    def test_batched_encode_equals_one_big_encode(self, trained_digits_vae, digits):
        x = digits.train.x
        enc = encode_dataset(trained_digits_vae, x, batch_size=100)
        with torch.no_grad():
            mu, logvar = trained_digits_vae.encode(x)
        torch.testing.assert_close(enc.mu, mu, rtol=0, atol=1e-6)
        torch.testing.assert_close(enc.logvar, logvar, rtol=0, atol=1e-6)
        torch.testing.assert_close(enc.sigma, torch.exp(0.5 * logvar), rtol=0, atol=1e-6)

    def test_batched_decode_equals_decode_mean(self, trained_digits_vae):
        z = _randn(300, 2)
        with torch.no_grad():
            reference = trained_digits_vae.decode_mean(z)
        torch.testing.assert_close(decode(trained_digits_vae, z, batch_size=64), reference, rtol=0, atol=1e-6)

    def test_reconstruct_decodes_the_posterior_mean(self, trained_digits_vae, digits):
        x = digits.test.x[:50]
        mu = encode_dataset(trained_digits_vae, x).mu
        assert torch.equal(reconstruct(trained_digits_vae, x), decode(trained_digits_vae, mu))

    def test_cvae_encodes_with_its_labels(self):
        model = _model("cvae")
        x, y = _rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
        with torch.no_grad():
            mu, _ = model.encode(x, y)
        torch.testing.assert_close(encode_dataset(model, x, y, batch_size=4).mu, mu, rtol=0, atol=1e-6)

    def test_wrong_shapes_are_errors(self, trained_digits_vae):
        with pytest.raises(ValueError, match=r"\(N, 2\)"):
            decode(trained_digits_vae, torch.zeros(4, 3))
        with pytest.raises(ValueError, match="1, 8, 8"):
            encode_dataset(trained_digits_vae, torch.zeros(4, 1, 28, 28))


class TestSampling:
    def test_seeded_and_independent_of_the_global_rng(self, trained_digits_vae):
        state = torch.get_rng_state()
        z_a, images_a = sample_prior(trained_digits_vae, 16, seed=3)
        assert torch.equal(torch.get_rng_state(), state)
        z_b, images_b = sample_prior(trained_digits_vae, 16, seed=3)
        assert torch.equal(z_a, z_b) and torch.equal(images_a, images_b)
        assert not torch.equal(z_a, sample_prior(trained_digits_vae, 16, seed=4)[0])

    def test_zero_temperature_decodes_the_origin(self, trained_digits_vae):
        z, images = sample_prior(trained_digits_vae, 5, temperature=0.0)
        assert torch.equal(z, torch.zeros(5, 2))
        origin = decode(trained_digits_vae, torch.zeros(1, 2))
        torch.testing.assert_close(images, origin.expand(5, -1, -1, -1), rtol=0, atol=1e-6)

    def test_empirical_std_is_the_temperature(self, trained_digits_vae):
        z, _ = sample_prior(trained_digits_vae, 10_000, temperature=0.5)
        # 4 standard errors: sd(std estimate) = 0.5 / sqrt(2n) = 0.0035, sd(mean) = 0.5 / sqrt(n) = 0.005
        torch.testing.assert_close(z.std(0), torch.full((2,), 0.5), rtol=0, atol=0.015)
        torch.testing.assert_close(z.mean(0), torch.zeros(2), rtol=0, atol=0.02)

    def test_samples_per_class_share_z_across_classes(self):
        model = _model("cvae")
        images, z = samples_per_class(model, 3, seed=5)
        assert torch.equal(z, sample_prior(model, 3, seed=5, y=0)[0])
        for k in range(CLASSES):
            torch.testing.assert_close(images[k], decode(model, z, k), rtol=0, atol=1e-6)
        assert not torch.allclose(images[0], images[1])  # the label does change the picture
