"""The model family: shapes for every kind x arch x input, and the behaviour of each kind."""
import pytest
import torch

from vae_core.config import KINDS, model_config_for
from vae_core.models import build_model, count_parameters

INPUTS = [(1, 8, 8), (1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64)]
# 8x8 conv models need a one-layer stack (test_conv_on_digits); every other pair uses the default depth.
ARCH_INPUTS = [("mlp", s) for s in INPUTS] + [("conv", s) for s in INPUTS if s[1] >= 28]


def _model(kind, arch, shape, latent=3, classes=4, **kw):
    return build_model(model_config_for(shape, classes, kind=kind, arch=arch, latent_dim=latent, **kw), seed=0)


class TestBuilding:
    def test_same_seed_same_weights(self):
        a, b = _model("vae", "mlp", (1, 8, 8)), _model("vae", "mlp", (1, 8, 8))
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))

    def test_classic_784_400_20_layout(self):
        model = _model("vae", "mlp", (1, 28, 28), latent=20, hidden=(400,))
        # fc1 784x400, two heads 400x20, fc3 20x400, fc4 400x784 as in pytorch/examples vae/main.py
        expected = (784 * 400 + 400) + 2 * (400 * 20 + 20) + (20 * 400 + 400) + (400 * 784 + 784)
        assert count_parameters(model) == expected

    def test_ae_has_no_variance_head(self):
        assert _model("ae", "mlp", (1, 8, 8)).encoder.logvar is None


class TestForward:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("arch, shape", ARCH_INPUTS)
    def test_shapes(self, kind, arch, shape):
        model = _model(kind, arch, shape)
        x, y = torch.rand(5, *shape), torch.randint(0, 4, (5,))
        out = model(x, y)
        assert out.logits.shape == (5, *shape)
        assert out.mu.shape == out.z.shape == (5, 3)
        assert (out.logvar is None) == (not model.config.is_variational)  # deterministic kinds (AE, WAE)
        image = model.decode_mean(torch.randn(7, 3), torch.randint(0, 4, (7,)))
        assert image.shape == (7, *shape) and image.min() >= 0 and image.max() <= 1

    def test_conv_on_digits(self):
        model = build_model(model_config_for((1, 8, 8), 10, arch="conv", conv_channels=(16,)))
        assert model(torch.rand(2, 1, 8, 8)).logits.shape == (2, 1, 8, 8)

    def test_ae_code_is_deterministic(self):
        model = _model("ae", "mlp", (1, 8, 8))
        x = torch.rand(4, 1, 8, 8)
        assert torch.equal(model(x).z, model(x).z)

    def test_vae_samples_around_the_mean(self):
        model = _model("vae", "mlp", (1, 8, 8))
        mu, logvar = torch.zeros(20000, 2), torch.full((20000, 2), 2 * torch.log(torch.tensor(0.5)))
        z = model.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
        torch.testing.assert_close(z.std(0), torch.full((2,), 0.5), atol=0.01, rtol=0.02)

    def test_gradient_flows_through_the_sample(self):
        model = _model("vae", "mlp", (1, 8, 8))
        mu = torch.zeros(3, 3, requires_grad=True)
        logvar = torch.zeros(3, 3, requires_grad=True)
        model.reparameterize(mu, logvar).sum().backward()
        assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0

    def test_cvae_output_depends_on_the_label(self):
        model = _model("cvae", "mlp", (1, 8, 8))
        z = torch.randn(1, 3)
        assert not torch.equal(model.decode(z, torch.tensor([0])), model.decode(z, torch.tensor([1])))

    def test_cvae_without_label_says_so(self):
        with pytest.raises(ValueError, match="label"):
            _model("cvae", "mlp", (1, 8, 8)).decode(torch.randn(1, 3))
