"""The bundled zoo: every checkpoint loads offline, decodes, and its card matches a fresh evaluation."""
import pytest
import torch

from vae_core.checkpoint import load_checkpoint
from vae_core.data import load_from_spec
from vae_core.metrics import PENALTY_KEYS, evaluate_model
from vae_core.data import MNIST_COPY
from vae_core.judge import JUDGE_PATH, load_judge
from vae_core.zoo import ZOO, ZOO_DIR, disentanglement_card, judge_card, sample_card

ZOO_NAMES = [spec.name for spec in ZOO]
IWAE_CHECKED = ("mnist-vae-2d", "digits-vae-2d", "shapes-vae")  # whose card NLL a test recomputes


def _load(name):
    return load_checkpoint(ZOO_DIR / f"{name}.pt")


@pytest.fixture(scope="module")
def cards():
    return {name: _load(name)[1]["card"] for name in ZOO_NAMES}


class TestBundled:
    def test_every_declared_model_is_bundled_and_small(self):
        files = {p.stem: p.stat().st_size for p in ZOO_DIR.glob("*.pt")}
        assert set(ZOO_NAMES) <= set(files)
        assert JUDGE_PATH.is_file()  # the sample-quality classifier ships with the zoo
        # Six 28x28 MNIST models (about 4 MB each), the 8x8 and shapes sets and the classifier: a clone stays small.
        assert sum(files.values()) + JUDGE_PATH.stat().st_size < 40 * 2**20

    @pytest.mark.parametrize("name", ZOO_NAMES)
    def test_card_matches_a_fresh_evaluation(self, name):
        model, meta = _load(name)
        card = meta["card"]
        data = load_from_spec(meta["data_spec"])
        # The importance-weighted NLL (up to a million decodes a model) is recomputed for one model of each data
        # set: the code path and its seeding are the same for all, and the suite must stay within its time.
        k, n = next(s for s in ZOO if s.name == name).iwae if name in IWAE_CHECKED else (0, None)
        fresh = evaluate_model(model, data.test, iwae_samples=k, iwae_examples=n)
        for key in ("elbo", "recon", "kl", *(k for k in PENALTY_KEYS if f"test_{k}" in card)):  # the WAE: mmd
            assert fresh[key] == pytest.approx(card[f"test_{key}"], abs=1e-3), key
        assert fresh["active_units"] == card["active_units"]
        if name in IWAE_CHECKED:
            assert fresh["nll"] == pytest.approx(card["nll"], abs=1e-2)
        images = model.decode_mean(torch.zeros(3, model.config.latent_dim),
                                   torch.arange(3) if model.config.is_conditional else None)
        assert images.shape == (3, *model.config.input_shape) and torch.isfinite(images).all()

    def test_shapes_cards_carry_disentanglement(self, cards):
        # Compared with a tolerance, not exactly. The scoring itself is already deterministic: DCI's forests have
        # a fixed random_state and n_jobs=1, and MIG is a histogram count (tests/test_disentanglement.py checks
        # that the same codes give the same scores). What differs between machines is the codes: the encoder runs
        # in float32, and another CPU (SIMD width, oneDNN kernel, BLAS summation order) or another torch build
        # moves them by a few ulps (measured: up to 4.8e-7 between oneDNN's SSE4.1 and AVX2 paths). A split
        # threshold of a tree, or a histogram edge, that falls between two nearly tied codes then flips, and the
        # trees below that node regrow: perturbing the two models' codes by ±4 float32 ulps moved DCI
        # disentanglement by up to 1.4e-4 and MIG by up to 3.8e-6 (12 perturbations; issue 12 saw 1.2e-6 for
        # DCI between two machines, and this card's MIG is 3.8e-6 off on a third). abs=1e-3 is 7x the largest
        # shift seen, and 50x smaller than the gap between the two models (MIG 0.034 vs 0.088, DCI 0.016 vs
        # 0.068) that the lessons read and the README prints to three decimals: a real change of the metric, the
        # data or the checkpoints still fails here.
        tolerance = 1e-3
        for name in ("shapes-vae", "shapes-betavae", "shapes-tcvae"):
            model, meta = _load(name)
            data = load_from_spec(meta["data_spec"])
            fresh = disentanglement_card(model, data.test)
            for key in ("mig", "dci_disentanglement"):
                assert fresh[key] == pytest.approx(meta["card"][key], abs=tolerance), (name, key)


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


class TestMnist:
    """The real-digit zoo the app opens on: quality in nats, and samples judged by the shipped classifier."""

    def test_trained_on_the_bundled_copy(self):
        for name in ("mnist-vae-2d", "mnist-conv-vae-16d"):
            assert _load(name)[1]["data_spec"]["copy"] == MNIST_COPY

    @pytest.mark.parametrize("name", ["mnist-ae-2d", "mnist-betavae-2d", "mnist-wae-2d"])
    def test_the_lesson_models_are_the_vaes_twins(self, cards, name):
        """Same network, latent size, seed and budget as the VAE: the Compare page's models differ by loss only."""
        twin, vae = _load(name)[0].config, _load("mnist-vae-2d")[0].config
        assert (twin.arch, twin.hidden, twin.latent_dim, twin.input_shape) == (vae.arch, vae.hidden, vae.latent_dim, vae.input_shape)
        assert cards[name]["train_config"] == cards["mnist-vae-2d"]["train_config"]

    def test_the_wae_has_no_elbo_and_an_mmd(self, cards):
        card = cards["mnist-wae-2d"]
        assert _load("mnist-wae-2d")[0].config.kind == "wae" and _load("mnist-wae-2d")[0].config.mmd_weight == 100
        assert card["test_elbo"] is None and card["test_kl"] is None and card["nll"] is None
        assert card["test_recon"] > 0 and card["test_mmd"] >= 0 and 0 < card["samples"]["recognised"] <= 1

    def test_likelihoods_reach_the_issues_marks(self, cards):
        # -ELBO <= 160 nats for the 2-D MLP VAE, <= 110 for the best model (issue 13), on MNIST's own test split.
        assert -cards["mnist-vae-2d"]["test_elbo"] <= 160
        best = max(c["test_elbo"] for name, c in cards.items()
                   if name.startswith("mnist-") and "-ae-" not in name and c["test_elbo"] is not None)  # WAE: none
        assert -best <= 110
        assert cards["mnist-conv-vae-16d"]["nll"] < -cards["mnist-conv-vae-16d"]["test_elbo"]  # IWAE is tighter

    def test_ae_samples_are_worse_than_the_vaes(self, cards):
        ae, vae = cards["mnist-ae-2d"]["samples"], cards["mnist-vae-2d"]["samples"]
        assert ae["recognised"] < vae["recognised"] and ae["fid"] > vae["fid"]

    def test_sample_cards_reproduce(self, cards):
        classifier = load_judge()
        data = load_from_spec(_load("mnist-vae-2d")[1]["data_spec"])
        for name in ("mnist-ae-2d", "mnist-vae-2d"):
            fresh = sample_card(_load(name)[0], data.test, classifier)
            # Float32 features on another CPU move the Fréchet distance by far less than 1e-3 of itself.
            assert fresh["recognised"] == pytest.approx(cards[name]["samples"]["recognised"], abs=2e-3)
            assert fresh["fid"] == pytest.approx(cards[name]["samples"]["fid"], rel=1e-3)

    def test_the_classifier_card_reproduces(self):
        meta = torch.load(JUDGE_PATH, weights_only=True)["meta"]["card"]
        fresh = judge_card(load_judge(), load_from_spec(_load("mnist-vae-2d")[1]["data_spec"]))
        assert fresh["test_accuracy"] == pytest.approx(meta["test_accuracy"], abs=1e-3) and fresh["test_accuracy"] > 0.97
        assert fresh["real_fid"] == pytest.approx(meta["real_fid"], rel=1e-3)
