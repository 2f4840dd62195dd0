"""vae_core.compare: the sample-quality measures against brute-force references, the verdict rules, the
interpolation, the rate-distortion points; and the product check on the bundled digits AE and VAE."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core.checkpoint import load_checkpoint
from vae_core.compare import (SAME_RELATIVE, class_mix_gap, compare_quality, interpolation_images, iso_elbo_levels,
                              prior_samples, rate_distortion_points, sample_quality, shared_extent)
from vae_core.config import model_config_for
from vae_core.latent import decode, encode_dataset
from vae_core.models import build_model

ZOO = Path(__file__).resolve().parents[1] / "checkpoints"


def tiny(kind: str, latent_dim: int = 2):
    config = model_config_for((1, 8, 8), 10, kind=kind, latent_dim=latent_dim, hidden=(16,))
    return build_model(config, seed=0).eval()


def brute_nearest(query: torch.Tensor, reference: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    q = query.reshape(len(query), -1).double().numpy()
    r = reference.reshape(len(reference), -1).double().numpy()
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))  # (M, N)
    return d.argmin(1), d.min(1)


@pytest.fixture(scope="module")
def small_data():
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.rand(120, 1, 8, 8, generator=g), torch.rand(40, 1, 8, 8, generator=g)
    train_y = torch.arange(120) % 4
    return train_x, train_y, test_x


class TestSampleQuality:
    def test_distances_match_brute_force(self, small_data):
        train_x, train_y, test_x = small_data
        model = tiny("vae")
        q = sample_quality(model, train_x, 30, seed=3, train_y=train_y, test_x=test_x)
        _, images = prior_samples(model, 30, 3)
        idx, dist = brute_nearest(images, train_x)
        np.testing.assert_allclose(q["nearest_train_each"].numpy(), dist, rtol=1e-5, atol=1e-5)
        assert q["nearest_train"] == pytest.approx(dist.mean(), rel=1e-5)
        _, cover = brute_nearest(test_x, images)
        assert q["coverage"] == pytest.approx(cover.mean(), rel=1e-5)
        # The class mix: each sample takes its nearest training image's class.
        share = np.bincount(train_y.numpy()[idx], minlength=4) / 30
        np.testing.assert_allclose(q["class_share"].numpy(), share)
        assert q["top_share"] == pytest.approx(share.max()) and q["top_class"] == share.argmax()
        assert q["class_mix_gap"] == pytest.approx(0.5 * np.abs(share - 0.25).sum())

    def test_seeded_and_shared_between_models_of_one_latent_size(self, small_data):
        train_x, _, _ = small_data
        a, b = tiny("ae"), tiny("vae")
        za, _ = prior_samples(a, 16, 5)
        zb, _ = prior_samples(b, 16, 5)
        assert torch.equal(za, zb)  # the same N(0, I) draws for every model compared
        q1, q2 = sample_quality(b, train_x, 16, 5), sample_quality(b, train_x, 16, 5)
        assert q1["nearest_train"] == q2["nearest_train"]
        assert sample_quality(b, train_x, 16, 6)["nearest_train"] != q1["nearest_train"]

    def test_no_labels_or_one_class_gives_no_class_mix(self, small_data):
        train_x, _, _ = small_data
        model = tiny("vae")
        assert sample_quality(model, train_x, 8)["class_mix_gap"] is None
        assert sample_quality(model, train_x, 8, train_y=torch.zeros(120, dtype=torch.long))["class_mix_gap"] is None

    def test_a_cvae_draws_every_class_in_turn(self, small_data):
        train_x, train_y, test_x = small_data
        model = tiny("cvae")
        q = sample_quality(model, train_x, 20, train_y=train_y, test_x=test_x)
        assert q["coverage"] is not None

    def test_class_mix_gap_by_hand(self):
        # Samples: 3 of class 0, 1 of class 1; reference: half and half -> |0.75 - 0.5| = 0.25 must change class.
        assert class_mix_gap(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 0, 1]), 2) == pytest.approx(0.25)
        assert class_mix_gap(torch.tensor([2, 2]), torch.tensor([0, 1]), 3) == pytest.approx(1.0)
        assert class_mix_gap(torch.tensor([0, 1]), torch.tensor([1, 0]), 2) == 0

    def test_bad_n(self, small_data):
        with pytest.raises(ValueError):
            sample_quality(tiny("vae"), small_data[0], 0)


class TestCompareQuality:
    def q(self, near, cover, gap):
        return {"nearest_train": near, "coverage": cover, "class_mix_gap": gap}

    def test_worse_on_more_measures(self):
        v = compare_quality(self.q(1.0, 1.5, 0.4), self.q(1.0, 1.4, 0.1))
        assert v["worse"] == "a"
        assert v["measures"]["nearest_train"]["worse"] == "same"
        assert v["measures"]["coverage"]["worse"] == "a"
        assert v["measures"]["coverage"]["ratio"] == pytest.approx(1.5 / 1.4)
        assert v["measures"]["class_mix_gap"]["worse"] == "a"
        assert compare_quality(self.q(1.0, 1.4, 0.1), self.q(1.0, 1.5, 0.4))["worse"] == "b"

    def test_within_the_noise_is_the_same(self):
        near = 1.0 * (1 + SAME_RELATIVE / 2)
        v = compare_quality(self.q(near, 1.0, 0.12), self.q(1.0, 1.0, 0.10))
        assert {m["worse"] for m in v["measures"].values()} == {"same"}
        assert v["worse"] is None

    def test_a_tie_and_missing_numbers(self):
        v = compare_quality(self.q(2.0, 1.0, None), self.q(1.0, 2.0, 0.3))
        assert v["worse"] is None
        assert v["measures"]["class_mix_gap"]["worse"] is None


class TestInterpolation:
    def test_ends_are_the_decoded_means_and_steps_are_kept(self, small_data):
        train_x = small_data[0]
        model = tiny("vae")
        images = interpolation_images(model, train_x[0], train_x[1], steps=8)
        assert images.shape == (8, 1, 8, 8)
        mu = encode_dataset(model, train_x[:2]).mu
        ends = decode(model, mu)
        assert torch.allclose(images[0], ends[0]) and torch.allclose(images[-1], ends[1])

    def test_a_cvae_switches_label_half_way(self, small_data):
        train_x = small_data[0]
        model = tiny("cvae")
        images = interpolation_images(model, train_x[0], train_x[1], 2, 7, steps=8)
        mu = encode_dataset(model, train_x[:2], torch.tensor([2, 7])).mu
        assert torch.allclose(images[0], decode(model, mu[:1], 2)[0])
        assert torch.allclose(images[-1], decode(model, mu[1:], 7)[0])
        with pytest.raises(ValueError, match="labels"):
            interpolation_images(model, train_x[0], train_x[1])


class TestRateDistortion:
    CARDS = {
        "AE": {"test_recon": 19.7, "test_kl": 0.0, "config": {"kind": "ae", "beta": 1.0}},
        "VAE": {"test_recon": 21.5, "test_kl": 2.9, "config": {"kind": "vae", "beta": 1.0}},
        "β4": {"test_recon": 27.1, "test_kl": 0.0003, "config": {"kind": "vae", "beta": 4.0}},
        "no card": {},
        "trained": {"test_recon": 23.0, "test_kl": 1.5, "kind": "vae"},
    }

    def test_points(self):
        points = {p["name"]: p for p in rate_distortion_points(self.CARDS)}
        assert set(points) == {"AE", "VAE", "β4", "trained"}
        assert points["AE"]["rate"] is None and points["AE"]["elbo"] is None
        assert points["VAE"]["rate"] == 2.9 and points["VAE"]["distortion"] == 21.5
        assert points["VAE"]["elbo"] == pytest.approx(-24.4)
        assert points["β4"]["beta"] == 4.0 and points["β4"]["rate"] == pytest.approx(0.0003)

    def test_iso_elbo_levels_are_round_and_span_the_points(self):
        levels = iso_elbo_levels(rate_distortion_points(self.CARDS))
        values = [24.4, 27.1003, 24.5]
        assert levels[0] <= min(values) and levels[-1] >= max(values)
        steps = np.diff(levels)
        assert np.allclose(steps, steps[0]) and steps[0] in (0.5, 1.0)
        assert iso_elbo_levels([]) == []

    def test_shared_extent(self):
        assert shared_extent([(-1, 2, -3, 1), (-4, 1, 0, 5)]) == (-4, 2, -3, 5)
        assert shared_extent([(-1, 2, -3, 1), (-4, 1, 0, 5)], square=True) == (-5, 3, -3, 5)
        with pytest.raises(ValueError):
            shared_extent([])


@pytest.mark.parametrize("seed", [0, 1])
def test_product_the_bundled_aes_samples_are_worse_than_the_vaes(digits, seed):
    """The issue's check: the AE's prior samples are worse than the VAE's by the measured numbers (same network,
    same seed, same N(0, I) draws). The gap is in what they draw: the class mix."""
    ae, _ = load_checkpoint(ZOO / "digits-ae-2d.pt")
    vae, _ = load_checkpoint(ZOO / "digits-vae-2d.pt")
    kw = dict(n=512, seed=seed, train_y=digits.train.y, test_x=digits.test.x)
    q_ae, q_vae = sample_quality(ae, digits.train.x, **kw), sample_quality(vae, digits.train.x, **kw)
    verdict = compare_quality(q_ae, q_vae)
    assert verdict["worse"] == "a"
    assert q_ae["class_mix_gap"] > 2 * q_vae["class_mix_gap"]
    assert verdict["measures"]["coverage"]["worse"] in ("a", "same")  # never better
