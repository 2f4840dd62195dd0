"""explain_example: the numbers of one input's pass through a model, checked against vae_core.losses (the
reference) and against the invariants the "How a VAE works" page teaches."""
from __future__ import annotations

import math

import pytest
import torch

from vae_core.config import model_config_for
from vae_core.explain import explain_example
from vae_core.losses import elbo_terms, kl_normal
from vae_core.models import build_model

SHAPE = (1, 8, 8)


def model_of(kind: str, **kw):
    config = model_config_for(SHAPE, 10, kind=kind, latent_dim=3, hidden=(32,), **kw)
    return build_model(config, seed=0).eval()


@pytest.fixture(scope="module")
def x():
    return torch.rand((1, *SHAPE), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind,beta,likelihood", [("vae", 1.0, "bernoulli"), ("vae", 4.0, "bernoulli"),
                                                   ("cvae", 1.0, "bernoulli"), ("vae", 1.0, "gaussian")])
def test_matches_the_reference_elbo_terms(x, kind, beta, likelihood):
    model = model_of(kind, beta=beta, likelihood=likelihood)
    y = torch.tensor([3]) if kind == "cvae" else None
    ex = explain_example(model, x, y, seed=7)
    with torch.no_grad():
        ref = elbo_terms(model, x, y, generator=torch.Generator().manual_seed(7))
    assert ex["recon"] == pytest.approx(float(ref.recon[0]), rel=1e-6)
    assert torch.allclose(ex["kl_per_dim"], ref.kl_per_dim[0], rtol=1e-6)
    assert ex["kl"] == pytest.approx(float(ref.kl[0]), rel=1e-6)
    assert ex["elbo"] == pytest.approx(float(ref.elbo[0]), rel=1e-6)
    assert ex["loss"] == pytest.approx(float(ref.loss), rel=1e-6)  # recon + β·KL for a batch of one


def test_invariants_of_the_reparameterisation(x):
    model = model_of("vae")
    ex = explain_example(model, x, seed=3)
    assert torch.equal(ex["z"], ex["mu"] + ex["sigma"] * ex["eps"])  # exactly, not approximately
    with torch.no_grad():
        mu, logvar = model.encode(x)
    assert torch.equal(ex["mu"], mu[0])
    assert torch.allclose(ex["sigma"], torch.exp(0.5 * logvar[0]))
    assert torch.allclose(ex["kl_per_dim"], kl_normal(mu, logvar)[0])
    # The image is the decoder's mean at z.
    with torch.no_grad():
        assert torch.allclose(ex["image"], model.decode_mean(ex["z"][None])[0])
    assert ex["image"].shape == SHAPE and 0 <= ex["image"].min() and ex["image"].max() <= 1


def test_same_seed_same_eps_other_seed_other_eps(x):
    model = model_of("vae")
    a, b, c = (explain_example(model, x, seed=s) for s in (5, 5, 6))
    assert torch.equal(a["eps"], b["eps"]) and a["recon"] == b["recon"]
    assert not torch.equal(a["eps"], c["eps"])
    assert not torch.equal(a["image"], c["image"])
    assert a["kl"] == c["kl"]  # the KL is the closed form: ε does not enter it
    # The global RNG is left alone.
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    explain_example(model, x, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_sum_and_mean_reductions(x):
    model = model_of("vae", beta=2.0)
    ex = explain_example(model, x, seed=0)
    n = 64
    assert ex["n_pixels"] == n
    s, m = ex["sum"], ex["mean"]
    assert s["recon"] == ex["recon"] and m["recon"] == pytest.approx(ex["recon"] / n)
    assert s["kl"] == m["kl"] == ex["kl"]
    assert s["loss"] == pytest.approx(ex["recon"] + 2.0 * ex["kl"])
    assert m["loss"] == pytest.approx(ex["recon"] / n + 2.0 * ex["kl"])
    # The KL weighs n times more under the mean: its ratio to the reconstruction grows by exactly n.
    assert m["kl_to_recon"] == pytest.approx(n * s["kl_to_recon"])
    assert m["kl_share"] > s["kl_share"]
    assert s["kl_share"] == pytest.approx(2.0 * ex["kl"] / s["loss"])


def test_the_autoencoder_has_no_sigma_no_eps_no_kl(x):
    model = model_of("ae")
    ex = explain_example(model, x, seed=0)
    assert ex["sigma"] is None and ex["eps"] is None
    assert ex["kl"] == 0 and torch.count_nonzero(ex["kl_per_dim"]) == 0
    assert ex["beta"] == 0
    assert ex["elbo"] == -ex["recon"] and ex["loss"] == ex["recon"]
    assert torch.equal(ex["z"], explain_example(model, x, seed=99)["z"])  # a point: no randomness
    with torch.no_grad():
        ref = elbo_terms(model, x)
    assert ex["recon"] == pytest.approx(float(ref.recon[0]), rel=1e-6)
    assert ex["mean"]["kl_share"] == 0


def test_accepts_an_unbatched_image_and_restores_training_mode(x):
    model = model_of("vae").train()
    ex = explain_example(model, x[0], seed=1)
    assert model.training
    assert ex["recon"] == explain_example(model, x, seed=1)["recon"]


def test_bad_inputs_are_refused_with_the_expected_shape(x):
    model = model_of("vae")
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        explain_example(model, torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="one image"):
        explain_example(model, torch.zeros(2, *SHAPE))
    cvae = model_of("cvae")
    with pytest.raises(ValueError, match="label"):
        explain_example(cvae, x)
    with pytest.raises(ValueError, match="0..9"):
        explain_example(cvae, x, 12)


def test_the_bundled_digits_vae_gives_the_numbers_of_its_card(digits):
    """Averaged over the test set, the per-image numbers are the model card's test reconstruction and KL."""
    from pathlib import Path

    from vae_core.checkpoint import load_checkpoint

    model, meta = load_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints" / "digits-vae-2d.pt")
    kl = [explain_example(model, x, seed=i)["kl"] for i, x in enumerate(digits.test.x[:100])]
    ex = explain_example(model, digits.test.x[0], seed=0)
    assert 0 < ex["recon"] < 100 and math.isfinite(ex["elbo"]) and ex["elbo"] < 0
    assert sum(kl) / len(kl) == pytest.approx(meta["card"]["test_kl"], rel=0.25)
