"""Moving through the latent space (vae_core.latent.paths): traversals, interpolation, attribute vectors and
the ELBO along a path (against losses.elbo_terms)."""
import numpy as np
import pytest
import torch

from vae_core.latent import (
    apply_attribute, attribute_vector, decode, interpolate, path_elbo, traversal_codes, traverse,
)
from vae_core.losses import elbo_terms

from ._helpers import _model, _randn


class TestTraverse:
    def test_each_row_changes_only_its_dim(self):
        base, values, dims = _randn(5), torch.linspace(-1, 1, 4), [0, 3, 4]
        z = traversal_codes(base, dims, values)
        assert z.shape == (3, 4, 5)
        for row, d in enumerate(dims):
            assert torch.equal(z[row, :, d], values)
            others = [i for i in range(5) if i != d]
            assert torch.equal(z[row][:, others], base[others].expand(4, 4))

    def test_images_are_the_decodes_of_those_codes(self, trained_digits_vae):
        base = torch.tensor([0.3, -0.7])
        images, values = traverse(trained_digits_vae, base)
        assert torch.equal(values, torch.linspace(-3, 3, 9)) and images.shape == (2, 9, 1, 8, 8)
        z = traversal_codes(base, [0, 1], values).reshape(-1, 2)
        assert torch.equal(images.reshape(-1, 1, 8, 8), decode(trained_digits_vae, z))

    def test_value_at_the_base_reproduces_the_base_image(self, trained_digits_vae):
        base = torch.tensor([0.3, -0.7])
        images, _ = traverse(trained_digits_vae, base, dims=[1], values=torch.tensor([-2.0, -0.7, 2.0]))
        torch.testing.assert_close(images[0, 1], decode(trained_digits_vae, base[None])[0], rtol=0, atol=1e-6)
        assert not torch.allclose(images[0, 0], images[0, 2])  # and the sweep does change the image

    def test_bad_dims(self):
        with pytest.raises(ValueError, match="0..2"):
            traverse(_model(), torch.zeros(3), dims=[3])


class TestInterpolate:
    @pytest.mark.parametrize("method", ["linear", "slerp"])
    def test_ends_exact_and_n_points(self, method):
        z0, z1 = _randn(6, seed=1), _randn(6, seed=2)
        path = interpolate(z0, z1, 7, method)
        assert path.shape == (7, 6) and torch.equal(path[0], z0) and torch.equal(path[-1], z1)

    def test_linear_midpoint_is_the_mean(self):
        z0, z1 = _randn(6, seed=1), _randn(6, seed=2)
        torch.testing.assert_close(interpolate(z0, z1, 11)[5], (z0 + z1) / 2)

    def test_slerp_keeps_the_norm(self):
        z0, z1 = _randn(6, seed=1), _randn(6, seed=2)
        z1 = z1 * z0.norm() / z1.norm()
        norms = interpolate(z0, z1, 9, "slerp").norm(dim=1)
        torch.testing.assert_close(norms, torch.full((9,), z0.norm().item()))
        # and steps through equal angles
        path = interpolate(z0, z1, 9, "slerp")
        cos = torch.nn.functional.cosine_similarity(path[:-1], path[1:])
        torch.testing.assert_close(cos, cos[:1].expand(8))

    @pytest.mark.parametrize("z1_of", [lambda z: 2 * z, lambda z: -z, lambda z: torch.zeros_like(z)])
    def test_slerp_falls_back_to_linear(self, z1_of):
        z0 = _randn(4)
        z1 = z1_of(z0)
        torch.testing.assert_close(interpolate(z0, z1, 5, "slerp"), interpolate(z0, z1, 5, "linear"))


class TestAttributes:
    def test_difference_of_class_means(self, digits_encoding):
        mu, y = digits_encoding.mu, digits_encoding.y
        m, labels = mu.numpy().astype(np.float64), y.numpy()
        reference = m[labels == 3].mean(0) - m[labels == 8].mean(0)
        np.testing.assert_allclose(attribute_vector(mu, y, 3, 8).numpy(), reference, rtol=1e-5, atol=1e-6)

    def test_missing_class(self):
        with pytest.raises(ValueError, match="class 7"):
            attribute_vector(_randn(4, 2), torch.tensor([0, 0, 1, 1]), 0, 7)

    def test_apply(self):
        z, v = _randn(3, 4), _randn(4, seed=1)
        torch.testing.assert_close(apply_attribute(z, v, 0.5), z + 0.5 * v)
        torch.testing.assert_close(apply_attribute(z[0], v, -1.0), z[0] - v)


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
