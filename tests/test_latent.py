"""The latent-space toolkit: shapes for every kind x arch x input, and invariants checked against references
(one big encode, model.decode_mean, numpy's SVD, brute-force numpy neighbours, class means by hand)."""
import numpy as np
import pytest
import torch

from vae_core import latent
from vae_core.latent._plumbing import _subsample
from vae_core.config import KINDS, model_config_for
from vae_core.latent import (
    apply_attribute, attribute_vector, decode, encode_dataset, fit_view, grid_extent, image_grid,
    interpolate, manifold_grid, nearest_neighbours, nearest_training_images, plane_grid, reconstruct,
    sample_prior, samples_per_class, to_uint8, traversal_codes, traverse,
)
from vae_core.models import build_model

ARCH_INPUTS = [("mlp", (1, 28, 28)), ("conv", (1, 28, 28)), ("mlp", (3, 32, 32)), ("conv", (3, 32, 32))]
CLASSES = 4


def _model(kind="vae", arch="mlp", shape=(1, 8, 8), latent_dim=3):
    """A small freshly initialised model (untrained: shapes and exact identities only)."""
    config = model_config_for(shape, CLASSES, kind=kind, arch=arch, latent_dim=latent_dim, hidden=(32,),
                              conv_channels=(8, 16), conv_fc=32)
    return build_model(config, seed=0)


def _label(model, n=None):
    """A valid y for a CVAE (None otherwise): one class, or n classes."""
    if not model.config.is_conditional:
        return None
    return 1 if n is None else torch.arange(n) % CLASSES


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def digits_encoding(trained_digits_vae, digits):
    return encode_dataset(trained_digits_vae, digits.train.x, digits.train.y)


# -- shapes for every kind, arch and input ---------------------------------------------------------------------------
class TestShapes:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("arch, shape", ARCH_INPUTS)
    def test_encode_decode_reconstruct(self, kind, arch, shape):
        model = _model(kind, arch, shape)
        x, y = _rand(6, *shape), _label(model, 6)
        enc = encode_dataset(model, x, y, batch_size=4)
        assert enc.mu.shape == (6, 3) and enc.mu.dtype == torch.float32 and enc.y.shape == (6,)
        assert (enc.logvar is None) == (kind == "ae") and (enc.sigma is None) == (kind == "ae")
        if kind != "ae":
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


# -- encoding and decoding against the model's own methods ------------------------------------------------------------
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


# -- 2-D views ------------------------------------------------------------------------------------------------------
def _correlated_codes(n=200, d=5, seed=0):
    """Codes with a clear principal plane and a non-zero mean."""
    return _randn(n, d, seed=seed) @ (torch.diag(torch.linspace(3, 0.2, d)) + 0.3) + torch.linspace(-1, 1, d)


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


# -- grids over a plane ---------------------------------------------------------------------------------------------
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


# -- traversals -----------------------------------------------------------------------------------------------------
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


# -- interpolation --------------------------------------------------------------------------------------------------
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


# -- sampling -------------------------------------------------------------------------------------------------------
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


# -- nearest neighbours ---------------------------------------------------------------------------------------------
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


# -- attribute vectors ----------------------------------------------------------------------------------------------
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


# -- display --------------------------------------------------------------------------------------------------------
class TestDisplay:
    @pytest.mark.parametrize("c", [1, 3])
    def test_to_uint8(self, c):
        images = torch.tensor([0.0, 1.0, 0.5, 1.5]).reshape(1, 1, 2, 2).expand(2, c, 2, 2)
        out = to_uint8(images)
        assert out.dtype == np.uint8 and out.shape == (2, 2, 2, c)
        assert out[0, :, :, 0].tolist() == [[0, 255], [128, 255]]

    def test_scaled_digit_is_crisp(self, digits):
        digit = digits.train.x[:1]  # (1, 1, 8, 8)
        grid = image_grid(digit, nrow=1, padding=0, scale=4)
        assert grid.dtype == np.uint8 and grid.shape == (32, 32, 3)
        pixels = to_uint8(digit)[0, :, :, 0]  # (8, 8)
        expected = np.repeat(np.repeat(pixels, 4, axis=0), 4, axis=1)  # every pixel a 4x4 block, no blending
        for channel in range(3):
            np.testing.assert_array_equal(grid[:, :, channel], expected)

    @pytest.mark.parametrize("n, c, nrow, padding, pad_value", [
        (1, 1, 4, 2, 1.0), (5, 1, 3, 1, 1.0), (6, 3, 3, 0, 0.0), (7, 3, 10, 2, 0.5), (9, 1, 1, 1, 1.0)])
    def test_grid_equals_torchvisions_make_grid(self, n, c, nrow, padding, pad_value):
        from torchvision.utils import make_grid  # the reference: the app itself does not import torchvision

        images = _rand(n, c, 5, 7)
        expected = make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)  # (3, H', W')
        expected = (expected * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(image_grid(images, nrow=nrow, padding=padding, pad_value=pad_value), expected)

    def test_grid_layout(self):
        images = _rand(6, 3, 8, 8)
        grid = image_grid(images, nrow=3, padding=1, scale=2)
        assert grid.shape == (2 * (2 * 9 + 1), 2 * (3 * 9 + 1), 3)
        assert (grid[0] == 255).all()  # the white padding
        np.testing.assert_array_equal(grid[2:18:2, 2:18:2], to_uint8(images)[0])  # the first image, top-left
