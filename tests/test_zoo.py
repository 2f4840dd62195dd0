"""The bundled zoo: every checkpoint loads offline, decodes, and its card matches a fresh evaluation."""
import pytest
import torch

from vae_core.checkpoint import load_checkpoint
from vae_core.data import load_from_spec
from vae_core.metrics import evaluate_model
from vae_core.zoo import ZOO, ZOO_DIR, disentanglement_card

ZOO_NAMES = [spec.name for spec in ZOO]


def _load(name):
    return load_checkpoint(ZOO_DIR / f"{name}.pt")


@pytest.fixture(scope="module")
def cards():
    return {name: _load(name)[1]["card"] for name in ZOO_NAMES}


class TestBundled:
    def test_every_declared_model_is_bundled_and_small(self):
        files = {p.stem: p.stat().st_size for p in ZOO_DIR.glob("*.pt")}
        assert set(ZOO_NAMES) <= set(files)
        assert sum(files.values()) < 20 * 2**20

    @pytest.mark.parametrize("name", ZOO_NAMES)
    def test_card_matches_a_fresh_evaluation(self, name):
        model, meta = _load(name)
        card = meta["card"]
        data = load_from_spec(meta["data_spec"])
        k, n = next(s for s in ZOO if s.name == name).iwae
        fresh = evaluate_model(model, data.test, iwae_samples=k, iwae_examples=n)
        for key in ("elbo", "recon", "kl"):
            assert fresh[key] == pytest.approx(card[f"test_{key}"], abs=1e-3), key
        assert fresh["active_units"] == card["active_units"]
        if card["nll"] is not None:
            assert fresh["nll"] == pytest.approx(card["nll"], abs=1e-2)
        images = model.decode_mean(torch.zeros(3, model.config.latent_dim),
                                   torch.arange(3) if model.config.is_conditional else None)
        assert images.shape == (3, *model.config.input_shape) and torch.isfinite(images).all()

    def test_shapes_cards_carry_disentanglement(self, cards):
        for name in ("shapes-vae", "shapes-betavae"):
            model, meta = _load(name)
            data = load_from_spec(meta["data_spec"])
            fresh = disentanglement_card(model, data.test)
            assert fresh["mig"] == pytest.approx(meta["card"]["mig"], abs=1e-6)
            assert fresh["dci_disentanglement"] == pytest.approx(meta["card"]["dci_disentanglement"], abs=1e-6)


class TestLessons:
    """What the teaching pages rely on."""

    def test_ae_and_vae_share_architecture_and_seed(self, cards):
        ae, vae = _load("digits-ae-2d")[0].config, _load("digits-vae-2d")[0].config
        assert (ae.arch, ae.hidden, ae.latent_dim, ae.input_shape) == (vae.arch, vae.hidden, vae.latent_dim, vae.input_shape)
        assert cards["digits-ae-2d"]["seed"] == cards["digits-vae-2d"]["seed"]
        assert cards["digits-ae-2d"]["train_config"] == cards["digits-vae-2d"]["train_config"]

    def test_beta_vaes_carry_less_information(self, cards):
        assert cards["digits-betavae-2d"]["test_kl"] < cards["digits-vae-2d"]["test_kl"]
        assert cards["digits-betavae4-2d"]["test_kl"] < cards["digits-betavae-2d"]["test_kl"]

    def test_beta4_on_digits_is_the_collapsed_exhibit(self, cards):
        assert cards["digits-betavae4-2d"]["active_units"] == 0

    def test_shapes_beta_vae_is_more_disentangled(self, cards):
        assert cards["shapes-betavae"]["mig"] > cards["shapes-vae"]["mig"]
