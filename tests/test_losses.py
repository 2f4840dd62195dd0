"""Likelihoods and the KL against torch.distributions as the reference implementation, plus invariants."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_core.losses import kl_normal, kl_warmup_weight, reconstruction_nll

torch.manual_seed(0)


class TestKL:
    def test_kl_of_the_prior_against_itself_is_zero(self):
        mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
        assert torch.equal(kl_normal(mu, logvar), torch.zeros(4, 3))

    def test_matches_torch_distributions(self):
        mu, logvar = torch.randn(16, 5), torch.randn(16, 5)
        q = Normal(mu, torch.exp(0.5 * logvar))
        reference = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu)))
        torch.testing.assert_close(kl_normal(mu, logvar), reference)

    def test_matches_a_monte_carlo_estimate(self):
        mu, logvar = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[0.3, -0.7, 0.0]])
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = q.sample((200_000,))  # (S, 1, 3)
        log_ratio = q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)
        mc = log_ratio.mean(0)  # (1, 3)
        torch.testing.assert_close(kl_normal(mu, logvar), mc, atol=0.02, rtol=0.02)

    def test_is_never_negative(self):
        assert (kl_normal(torch.randn(100, 4) * 3, torch.randn(100, 4) * 3) >= 0).all()


class TestLikelihoods:
    def test_bernoulli_is_the_summed_log_prob(self):
        logits, x = torch.randn(8, 1, 4, 4), torch.rand(8, 1, 4, 4).round()
        reference = -Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(reconstruction_nll(logits, x, "bernoulli"), reference)

    @pytest.mark.parametrize("sigma", [0.1, 1.0])
    def test_gaussian_is_the_summed_log_prob(self, sigma):
        logits, x = torch.randn(8, 3, 4, 4), torch.rand(8, 3, 4, 4)
        reference = -Normal(torch.sigmoid(logits), sigma).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(reconstruction_nll(logits, x, "gaussian", math.log(sigma)), reference)

    def test_sum_not_mean_over_pixels(self):
        """Doubling the image (same pixels twice) doubles the reconstruction term: it is a sum."""
        logits, x = torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
        once = reconstruction_nll(logits, x, "bernoulli")
        twice = reconstruction_nll(torch.cat([logits, logits], 1), torch.cat([x, x], 1), "bernoulli")
        torch.testing.assert_close(twice, 2 * once)


class TestWarmUp:
    def test_rises_linearly_then_holds_beta(self):
        assert kl_warmup_weight(4.0, 0.0, 2.0) == 0.0
        assert kl_warmup_weight(4.0, 1.0, 2.0) == pytest.approx(2.0)
        assert kl_warmup_weight(4.0, 5.0, 2.0) == 4.0
        assert kl_warmup_weight(4.0, 0.0, 0.0) == 4.0
