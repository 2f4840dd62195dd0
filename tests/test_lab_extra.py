"""The small additions to vae_core for the Anomaly detection and Disentanglement lab pages: scoring unlabelled
images with a CVAE, the starting threshold, and which latent dimensions are inactive."""
import numpy as np
import pytest
import torch

from vae_core.anomaly import (anomaly_scores, anomaly_scores_best_class, rates_at_threshold,
                              threshold_at_false_positive_rate)
from vae_core.config import model_config_for
from vae_core.disentanglement import INACTIVE_KL_NATS, inactive_dimensions
from vae_core.models import build_model


def _model(kind: str):
    return build_model(model_config_for((1, 8, 8), 3, kind=kind, latent_dim=2, hidden=(16,)), seed=0)


class TestBestClass:
    def test_a_cvae_gets_the_lowest_score_over_its_classes(self, digits):
        model, x = _model("cvae"), digits.test.x[:20]
        per_class = np.stack([anomaly_scores(model, x, torch.full((20,), k), score="recon") for k in range(3)])
        best = anomaly_scores_best_class(model, x, score="recon")
        np.testing.assert_allclose(best, per_class.min(axis=0))
        assert (best <= per_class).all()

    @pytest.mark.parametrize("kind", ["ae", "vae"])
    def test_other_models_score_as_usual(self, digits, kind):
        model, x = _model(kind), digits.test.x[:20]
        np.testing.assert_array_equal(anomaly_scores_best_class(model, x, n_samples=2),
                                      anomaly_scores(model, x, n_samples=2))


class TestThreshold:
    @pytest.mark.parametrize("rate", [0.0, 0.05, 0.25, 0.5, 1.0])
    def test_false_positive_rate_at_most_the_rate_and_the_lowest_such(self, rate):
        s_in = np.random.default_rng(0).normal(size=101)
        t = threshold_at_false_positive_rate(s_in, rate)
        _, fpr = rates_at_threshold(s_in, np.array([0.0]), t)
        assert fpr <= rate + 1e-12
        lower = np.sort(s_in)[np.sort(s_in) < t]
        if len(lower):  # the next lower observed score would flag too many
            assert rates_at_threshold(s_in, np.array([0.0]), lower[-1])[1] > rate

    def test_exact_on_a_small_example(self):
        assert threshold_at_false_positive_rate([1, 2, 3, 4], 0.25) == 3.0  # flags only the 4
        assert threshold_at_false_positive_rate([1, 2, 2, 2], 0.25) == 2.0  # ties cannot be split

    def test_refuses_bad_input(self):
        with pytest.raises(ValueError):
            threshold_at_false_positive_rate([], 0.1)
        with pytest.raises(ValueError):
            threshold_at_false_positive_rate([1.0, np.nan], 0.1)
        with pytest.raises(ValueError):
            threshold_at_false_positive_rate([1.0], 1.5)


class TestInactive:
    def test_below_the_threshold_is_inactive(self):
        assert inactive_dimensions([0.0, 0.003, INACTIVE_KL_NATS, 2.5]) == [True, True, False, False]

    def test_the_bundled_shapes_models_agree_with_their_active_units(self):
        from vae_core.zoo import list_zoo

        for card in list_zoo():
            if card["name"].startswith("shapes"):
                assert inactive_dimensions(card["kl_per_dim"]).count(False) == card["active_units"]

    def test_refuses_nan(self):
        with pytest.raises(ValueError):
            inactive_dimensions([0.1, float("nan")])
