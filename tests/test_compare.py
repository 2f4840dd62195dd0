"""vae_core.compare: the sample-quality measures against brute-force references, the verdict rules, the
interpolation, the rate-distortion points; the digit classifier's measures (judged_quality) against
vae_core.judge itself; and the product checks on the bundled AE and VAE twins (digits: pixel measures; MNIST: the
shipped classifier, whose numbers must also be the ones on the models' cards)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vae_core import judge
from vae_core.checkpoint import load_checkpoint
from vae_core.compare import (JUDGE_MEASURES, JUDGE_REAL, JUDGE_SAMPLES, MEASURES, SAME_FID_RELATIVE, SAME_RELATIVE,
                              SAME_SHARE, class_mix_gap, compare_quality, interpolation_images, iso_elbo_levels, rank_models,
                              judge_applies, judged_quality, prior_samples, rate_distortion_points, real_digits,
                              real_features, real_reference, sample_quality, shared_extent)
from vae_core.config import model_config_for
from vae_core.data import mnist_arrays
from vae_core.latent import decode, encode_dataset
from vae_core.models import build_model

ZOO = Path(__file__).resolve().parents[1] / "checkpoints"


def tiny(kind: str, latent_dim: int = 2, shape=(1, 8, 8)):
    config = model_config_for(shape, 10, kind=kind, latent_dim=latent_dim, hidden=(16,))
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
        assert v["worse"] == "a" and not v["judged"]
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


class TestCompareJudged:
    """The classifier's measures: recognised is higher-is-better, the FID lower-is-better."""

    def q(self, recognised, fid):
        return {"measures": JUDGE_MEASURES, "recognised": recognised, "fid": fid}

    def test_fewer_recognised_and_a_higher_fid_is_worse(self):
        v = compare_quality(self.q(0.55, 120.0), self.q(0.90, 40.0))
        assert v["judged"] and set(v["measures"]) == set(JUDGE_MEASURES)
        assert v["measures"]["recognised"]["worse"] == "a" and v["measures"]["fid"]["worse"] == "a"
        assert v["measures"]["fid"]["ratio"] == pytest.approx(3.0)
        assert v["worse"] == "a"
        assert compare_quality(self.q(0.90, 40.0), self.q(0.55, 120.0))["worse"] == "b"  # the order does not matter

    def test_the_verdict_follows_the_numbers_not_the_names(self):
        # Recognised more often but further from real digits: one measure each, no overall winner.
        v = compare_quality(self.q(0.95, 100.0), self.q(0.80, 50.0))
        assert v["measures"]["recognised"]["worse"] == "b" and v["measures"]["fid"]["worse"] == "a"
        assert v["worse"] is None

    def test_within_the_noise_is_the_same(self):
        v = compare_quality(self.q(0.80, 100.0), self.q(0.80 + SAME_SHARE / 2, 100.0 * (1 + SAME_FID_RELATIVE / 2)))
        assert {m["worse"] for m in v["measures"].values()} == {"same"} and v["worse"] is None
        v = compare_quality(self.q(0.80, 100.0), self.q(0.80 + 2 * SAME_SHARE, 100.0 * (1 + 2 * SAME_FID_RELATIVE)))
        assert v["measures"]["recognised"]["worse"] == "a" and v["measures"]["fid"]["worse"] == "b"

    def test_judged_against_unjudged_falls_back_to_pixel_measures(self):
        pixel = {"measures": MEASURES, "nearest_train": 1.0, "coverage": 1.0, "class_mix_gap": 0.1}
        v = compare_quality(self.q(0.5, 10.0), pixel)
        assert not v["judged"] and set(v["measures"]) == set(MEASURES)


class TestRanking:
    """rank_models: best first by each measure, in the numbers' order; ≈ where neighbours are within the noise."""

    def judged(self, recognised, fid):
        return {"measures": JUDGE_MEASURES, "recognised": recognised, "fid": fid}

    def test_both_measures_agree(self):
        qs = [self.judged(0.62, 380.0), self.judged(0.68, 289.0), self.judged(0.90, 150.0)]
        r = rank_models(qs)
        assert r["judged"] and r["agree"]
        assert r["measures"] == {"recognised": [2, 1, 0], "fid": [2, 1, 0]}
        assert r["ties"]["recognised"] == [False, False]  # 22 and 6 points apart: more than SAME_SHARE

    def test_measures_that_disagree_are_ranked_apart(self):
        qs = [self.judged(0.624, 380.5), self.judged(0.683, 288.9), self.judged(0.601, 306.0)]  # AE, VAE, β-VAE
        r = rank_models(qs)
        assert not r["agree"]
        assert r["measures"]["recognised"] == [1, 0, 2] and r["measures"]["fid"] == [1, 2, 0]
        assert r["ties"]["recognised"] == [False, True]  # 62.4% and 60.1%: within SAME_SHARE
        assert r["ties"]["fid"] == [True, False]  # 288.9 and 306.0 within SAME_FID_RELATIVE; 380.5 is not

    def test_pixel_measures_lower_first_and_missing_numbers_left_out(self):
        qs = [{"nearest_train": 2.0, "coverage": 1.0, "class_mix_gap": None},
              {"nearest_train": 1.0, "coverage": 2.0, "class_mix_gap": 0.3}]
        r = rank_models(qs)
        assert not r["judged"]
        assert r["measures"]["nearest_train"] == [1, 0] and r["measures"]["coverage"] == [0, 1]
        assert r["measures"]["class_mix_gap"] == [1]
        assert not r["agree"]


@pytest.fixture(scope="module")
def random_judge():
    torch.manual_seed(0)
    return judge.DigitClassifier().eval()  # untrained: these tests check the plumbing, not the judgement


class TestJudgedQuality:
    def test_it_is_the_judge_on_the_models_prior_samples(self, random_judge):
        model = tiny("vae", shape=(1, 28, 28))
        real = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        q = judged_quality(model, random_judge, real, n=40, seed=3)
        _, images = prior_samples(model, 40, 3)
        want = judge.judge_samples(random_judge, images, real)
        assert q["measures"] == JUDGE_MEASURES and q["n"] == 40 and q["seed"] == 3
        assert q["recognised"] == want["recognised"] and q["fid"] == pytest.approx(want["fid"], rel=1e-12)
        np.testing.assert_allclose(q["class_share"].numpy(), want["class_share"])
        assert q["top_share"] == pytest.approx(max(want["class_share"]))
        assert q["top_class"] == int(np.argmax(want["class_share"]))
        # Already-drawn images, or the real images' features computed once, give the same numbers; draws are seeded.
        again = judged_quality(None, random_judge, real, images=images)
        assert again["fid"] == q["fid"] and again["recognised"] == q["recognised"]
        feats = real_features(random_judge, real)
        assert judged_quality(model, random_judge, n=40, seed=3, real_feats=feats)["fid"] == q["fid"]
        with pytest.raises(ValueError, match="real images"):
            judged_quality(model, random_judge, n=40)
        assert judged_quality(model, random_judge, real, n=40, seed=4)["fid"] != q["fid"]

    def test_a_cvae_draws_every_class_and_bad_inputs_are_refused(self, random_judge):
        real = torch.rand(10, 1, 28, 28)
        assert judged_quality(tiny("cvae", shape=(1, 28, 28)), random_judge, real, n=20)["n"] == 20
        with pytest.raises(ValueError, match="1x28x28"):
            judged_quality(tiny("vae"), random_judge, real, n=20)  # 8x8 images
        with pytest.raises(ValueError, match="n must be"):
            judged_quality(tiny("vae", shape=(1, 28, 28)), random_judge, real, n=1)

    def test_real_digits_and_the_real_reference_are_the_judges_seeded_subsets(self, random_judge):
        g = torch.Generator().manual_seed(2)
        train_x, test_x = torch.rand(60, 1, 28, 28, generator=g), torch.rand(50, 1, 28, 28, generator=g)
        real = real_digits(test_x, 20)
        assert torch.equal(real, judge.real_subset(test_x, 20, seed=0)) and len(real) == 20
        ref = real_reference(random_judge, train_x, real, n=25)
        want = judge.judge_samples(random_judge, judge.real_subset(train_x, 25, seed=1), real)
        assert ref["n"] == 25
        assert ref["fid"] == pytest.approx(want["fid"], rel=1e-12) and ref["recognised"] == want["recognised"]
        feats = real_features(random_judge, real)
        assert real_reference(random_judge, train_x, n=25, real_feats=feats)["fid"] == ref["fid"]

    def test_which_data_the_judge_applies_to(self):
        def split(name, shape):
            return SimpleNamespace(name=name, input_shape=shape)

        assert judge_applies(split("mnist", (1, 28, 28)))
        assert not judge_applies(split("fashion-mnist", (1, 28, 28)))  # 28x28 grey, but not digits
        assert not judge_applies(split("mnist", (1, 14, 14)))  # resized
        assert not judge_applies(split("digits", (1, 8, 8)))


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


def test_product_the_mnist_aes_samples_are_worse_by_the_shipped_classifier():
    """The issue's check on the app's default trio, as the page measures it (seed 0; seeds 1-4 agree, see
    vae_core.compare): by the shipped digit classifier, the MNIST AE's prior samples are recognised less often and
    lie further from real digits than its VAE twin's (same network, seed, budget, same N(0, I) draws), by more than
    another seed moves either number; real digits score better than both."""
    x_train, _, x_test, _, _ = mnist_arrays()  # load_data("mnist")'s splits are the bundled ones, in this order
    classifier = judge.load_judge()
    feats = real_features(classifier, real_digits(torch.tensor(x_test).unsqueeze(1)).float() / 255)
    ae, _ = load_checkpoint(ZOO / "mnist-ae-2d.pt")
    vae, _ = load_checkpoint(ZOO / "mnist-vae-2d.pt")
    q_ae, q_vae = (judged_quality(m, classifier, real_feats=feats) for m in (ae, vae))
    assert q_ae["n"] == q_vae["n"] == JUDGE_SAMPLES and len(feats) == JUDGE_REAL
    verdict = compare_quality(q_ae, q_vae)
    assert verdict["judged"] and verdict["worse"] == "a"
    assert verdict["measures"]["recognised"]["worse"] == "a" and verdict["measures"]["fid"]["worse"] == "a"
    assert q_ae["recognised"] < q_vae["recognised"] - SAME_SHARE
    assert q_ae["fid"] > (1 + SAME_FID_RELATIVE) * q_vae["fid"]
    real = real_reference(classifier, torch.tensor(x_train).unsqueeze(1).float().div_(255), real_feats=feats)
    assert real["recognised"] > q_vae["recognised"] and real["fid"] < q_vae["fid"] / 10
