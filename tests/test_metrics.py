"""ELBO, importance-weighted likelihood and active units, against their definitions."""

import pytest
import torch

from vae_core.metrics import active_units, evaluate_elbo, iwae_log_likelihood


class TestELBO:
    def test_parts_add_up(self, trained_digits_vae, digits):
        m = evaluate_elbo(trained_digits_vae, digits.test.x, digits.test.y)
        assert m["elbo"] == pytest.approx(-(m["recon"] + m["kl"]))
        assert m["kl"] == pytest.approx(sum(m["kl_per_dim"]))

    def test_batching_does_not_change_the_answer(self, trained_digits_vae, digits):
        a = evaluate_elbo(trained_digits_vae, digits.test.x, batch_size=17)
        b = evaluate_elbo(trained_digits_vae, digits.test.x, batch_size=1000)
        assert a["kl"] == pytest.approx(b["kl"], rel=1e-5)  # the KL is analytic: no noise


class TestImportanceWeighted:
    def test_k1_matches_the_elbo_on_average(self, trained_digits_vae, digits):
        x = digits.test.x[:100]
        elbo = evaluate_elbo(trained_digits_vae, x)["elbo"]
        # Average many independent K=1 estimates: each is an unbiased one-sample ELBO.
        estimates = torch.stack([iwae_log_likelihood(trained_digits_vae, x, k=1, seed=s) for s in range(30)])
        assert estimates.mean().item() == pytest.approx(elbo, abs=0.5)

    def test_bound_grows_with_k(self, trained_digits_vae, digits):
        x = digits.test.x[:200]

        def bound(k):  # averaged over seeds so the comparison is not at the mercy of Monte-Carlo noise
            return sum(iwae_log_likelihood(trained_digits_vae, x, k=k, seed=s).mean().item() for s in range(3)) / 3

        values = [bound(k) for k in (1, 10, 1000)]
        assert values[0] < values[1] < values[2]

    def test_memory_bounded_chunks_give_the_same_estimate(self, trained_digits_vae, digits):
        x = digits.test.x[:20]
        small = iwae_log_likelihood(trained_digits_vae, x, k=50, max_batch_pixels=64 * 7)
        large = iwae_log_likelihood(trained_digits_vae, x, k=50)
        assert torch.isfinite(small).all() and small.mean().item() == pytest.approx(large.mean().item(), abs=1.0)

    def test_an_ae_has_no_likelihood(self, digits):
        from vae_core.config import model_config_for
        from vae_core.models import build_model
        ae = build_model(model_config_for((1, 8, 8), 10, kind="ae"))
        with pytest.raises(ValueError, match="AE"):
            iwae_log_likelihood(ae, digits.test.x[:2], k=2)


class TestActiveUnits:
    def test_counts_dimensions_whose_mean_varies(self):
        mu = torch.cat([torch.randn(500, 3), torch.full((500, 2), 0.7), 0.05 * torch.randn(500, 1)], dim=1)
        assert active_units(mu) == 3  # the constant dims and the one with variance 0.0025 < 0.01 are inactive

    def test_a_trained_2d_vae_uses_both_dimensions(self, trained_digits_vae, digits):
        assert evaluate_elbo(trained_digits_vae, digits.test.x)["active_units"] == 2
