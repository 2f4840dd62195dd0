"""WAE-MMD (Tolstikhin et al. 2018) and β-TCVAE (Chen et al. 2018): building, forward, the losses against
straightforward NumPy references, checkpoints, and training through the command line on digits and shapes."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.config import KINDS, ModelConfig, TrainConfig, estimate_parameters, model_config_for, state_shapes
from vae_core.errors import ConfigError
from vae_core.losses import MMD_SCALES, elbo_terms, kl_normal, mmd_imq, tc_decomposition
from vae_core.metrics import evaluate_model
from vae_core.models import build_model
from vae_core.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the authors' code's multiples of C, written out independently


def tiny(kind: str, **settings) -> ModelConfig:
    return model_config_for((1, 8, 8), 10, kind=kind, latent_dim=3, hidden=(32,), **settings)


# -- building ------------------------------------------------------------------------------------------------------
class TestBuilding:
    def test_both_kinds_are_known_with_their_family_names(self):
        assert {"wae", "tcvae"} <= set(KINDS)
        assert tiny("wae", mmd_weight=30.0).label.startswith("WAE (λ=30)")
        assert tiny("tcvae", beta=6.0).label.startswith("β-TCVAE (β=6)")

    def test_the_wae_is_deterministic_and_the_tcvae_variational(self):
        wae, tcvae = tiny("wae"), tiny("tcvae")
        assert not wae.is_variational and wae.is_generative
        assert tcvae.is_variational and tcvae.is_generative
        assert "encoder.logvar.weight" not in state_shapes(wae)
        assert "encoder.logvar.weight" in state_shapes(tcvae)

    @pytest.mark.parametrize("kind", ["wae", "tcvae"])
    @pytest.mark.parametrize("arch", ["mlp", "conv"])
    def test_the_built_model_has_the_announced_shapes(self, kind, arch):
        config = model_config_for((1, 16, 16), 10, kind=kind, arch=arch, latent_dim=4)
        model = build_model(config)
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == state_shapes(config)
        assert sum(p.numel() for p in model.parameters()) == estimate_parameters(config)

    @pytest.mark.parametrize("bad", [-1.0, float("nan"), True, "10"])
    def test_a_bad_mmd_weight_is_refused(self, bad):
        with pytest.raises(ConfigError, match="mmd_weight"):
            tiny("wae", mmd_weight=bad)

    def test_configs_round_trip_through_dicts(self):
        for config in (tiny("wae", mmd_weight=7.5), tiny("tcvae", beta=4.0)):
            assert ModelConfig.from_dict(config.to_dict()) == config

    def test_an_old_config_without_mmd_weight_still_loads(self):
        old = {k: v for k, v in tiny("vae").to_dict().items() if k != "mmd_weight"}
        assert ModelConfig.from_dict(old).kind == "vae"


# -- forward -------------------------------------------------------------------------------------------------------
class TestForward:
    def test_the_wae_code_is_its_mean(self):
        model = build_model(tiny("wae"))
        x = torch.rand(5, 1, 8, 8)
        logits, mu, logvar, z = model(x)
        assert logvar is None and torch.equal(z, mu) and logits.shape == x.shape

    def test_the_tcvae_samples_its_code(self):
        model = build_model(tiny("tcvae"))
        x = torch.rand(5, 1, 8, 8)
        _, mu, logvar, z = model(x, generator=torch.Generator().manual_seed(0))
        assert logvar.shape == mu.shape == z.shape == (5, 3) and not torch.equal(z, mu)


# -- the losses against references ------------------------------------------------------------------------------------
def mmd_reference(z: np.ndarray, p: np.ndarray) -> float:
    """Algorithm 2 of Tolstikhin et al. with explicit loops, float64: the IMQ kernel summed over the scales."""
    n, d = z.shape

    def k(a, b):
        sq = float(np.sum((a - b) ** 2))
        return sum(2 * d * s / (2 * d * s + sq) for s in SCALES)

    same = sum(k(p[l], p[j]) + k(z[l], z[j]) for l in range(n) for j in range(n) if l != j) / (n * (n - 1))
    cross = sum(k(z[l], p[j]) for l in range(n) for j in range(n)) * 2 / n**2
    return same - cross


def log_normal(x: float, mean: float, logvar: float) -> float:
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / math.exp(logvar))


def mws_reference(z, mu, logvar, n_data) -> dict:
    """Minibatch-weighted sampling (Chen et al. 2018, sec. 4.1) with explicit loops, float64."""
    b, d = z.shape
    norm = math.log(b * n_data)
    mi = tc = dwkl = 0.0
    for i in range(b):
        joint = [sum(log_normal(z[i, k], mu[j, k], logvar[j, k]) for k in range(d)) for j in range(b)]
        log_qz = np.logaddexp.reduce(joint) - norm
        log_qz_product = sum(
            np.logaddexp.reduce([log_normal(z[i, k], mu[j, k], logvar[j, k]) for j in range(b)]) - norm
            for k in range(d))
        log_qz_x = sum(log_normal(z[i, k], mu[i, k], logvar[i, k]) for k in range(d))
        log_pz = sum(log_normal(z[i, k], 0.0, 0.0) for k in range(d))
        mi += (log_qz_x - log_qz) / b
        tc += (log_qz - log_qz_product) / b
        dwkl += (log_qz_product - log_pz) / b
    return {"mi": mi, "tc": tc, "dwkl": dwkl}


class TestMMD:
    def test_scales_are_the_papers(self):
        assert MMD_SCALES == SCALES

    @pytest.mark.parametrize("n, d, shift", [(6, 2, 0.0), (9, 5, 1.5), (2, 1, 0.3)])
    def test_matches_the_double_loop_reference(self, n, d, shift):
        rng = np.random.default_rng(n * d)
        z, p = rng.normal(shift, 1.0, (n, d)), rng.normal(0.0, 1.0, (n, d))
        got = mmd_imq(torch.from_numpy(z), torch.from_numpy(p))
        assert float(got) == pytest.approx(mmd_reference(z, p), rel=1e-10, abs=1e-12)

    def test_is_unbiased_near_zero_for_the_prior_itself_and_grows_with_the_gap(self):
        g = torch.Generator().manual_seed(0)
        same = torch.stack([mmd_imq(torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g))
                            for _ in range(200)])
        # An unbiased U-statistic: its mean over 200 draws is within 4 standard errors of 0, and some draws are < 0.
        assert abs(float(same.mean())) < 4 * float(same.std()) / math.sqrt(200)
        assert (same < 0).any()
        gaps = [float(mmd_imq(torch.randn(64, 4, generator=g) + s, torch.randn(64, 4, generator=g)))
                for s in (0.5, 1.0, 2.0)]
        assert gaps == sorted(gaps) and gaps[0] > 5 * float(same.std())


class TestTCDecomposition:
    @pytest.mark.parametrize("b, d, n_data", [(5, 3, 100), (4, 1, 4), (7, 2, 60_000)])
    def test_matches_the_loop_reference(self, b, d, n_data):
        rng = np.random.default_rng(b + d)
        mu, logvar = rng.normal(0, 1, (b, d)), rng.normal(-1, 0.5, (b, d))
        z = mu + np.exp(0.5 * logvar) * rng.normal(0, 1, (b, d))
        got = tc_decomposition(*(torch.from_numpy(a) for a in (z, mu, logvar)), n_data)
        want = mws_reference(z, mu, logvar, n_data)
        for key in ("mi", "tc", "dwkl"):
            assert float(got[key]) == pytest.approx(want[key], rel=1e-9, abs=1e-9), key

    def test_large_batches_taken_in_row_chunks_give_the_same_terms(self, monkeypatch):
        import vae_core.losses as losses

        g = torch.Generator().manual_seed(1)
        mu, logvar = torch.randn(40, 3, generator=g, dtype=torch.float64), torch.randn(40, 3, generator=g, dtype=torch.float64)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(40, 3, generator=g, dtype=torch.float64)
        whole = tc_decomposition(z, mu, logvar, 1000)
        monkeypatch.setattr(losses, "_PAIR_VALUES", 7)  # rows of 1 at a time
        chunked = tc_decomposition(z, mu, logvar, 1000)
        for key in whole:
            torch.testing.assert_close(chunked[key], whole[key])

    def test_the_three_terms_sum_to_a_one_sample_kl_estimate(self):
        """MI + TC + DWKL = mean_i [log q(z_i|x_i) - log p(z_i)] exactly (the log(BN) offsets cancel), whose
        expectation is the analytic KL averaged over the batch. Tolerance: 5 standard errors of that Monte-Carlo
        mean (the per-example spread of log q - log p over the sqrt of the batch size), about 0.2 nats here."""
        g = torch.Generator().manual_seed(2)
        b, d = 2000, 3
        mu = torch.randn(b, d, generator=g, dtype=torch.float64)
        logvar = -1.0 + 0.5 * torch.randn(b, d, generator=g, dtype=torch.float64)
        eps = torch.randn(b, d, generator=g, dtype=torch.float64)
        z = mu + torch.exp(0.5 * logvar) * eps
        terms = tc_decomposition(z, mu, logvar, 50_000)
        total = float(terms["mi"] + terms["tc"] + terms["dwkl"])
        per_example = (-0.5 * (eps**2 + logvar) + 0.5 * z**2).sum(1)  # log q(z|x) - log p(z), (B,)
        assert total == pytest.approx(float(per_example.mean()), abs=1e-9)
        analytic = float(kl_normal(mu, logvar).sum(1).mean())
        tolerance = 5 * float(per_example.std()) / math.sqrt(b)
        assert abs(total - analytic) < tolerance, (total, analytic, tolerance)


class TestObjectives:
    def test_wae_loss_is_recon_plus_lambda_mmd_and_has_no_kl(self):
        model = build_model(tiny("wae", mmd_weight=25.0))
        x = torch.rand(16, 1, 8, 8)
        terms = elbo_terms(model, x, generator=torch.Generator().manual_seed(3))
        assert torch.equal(terms.kl_per_dim, torch.zeros(16, 3))
        torch.testing.assert_close(terms.loss, terms.recon.mean() + 25.0 * terms.penalties["mmd"])
        # the prior sample is the generator's next draw after the (absent) posterior noise
        prior = torch.randn((16, 3), generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(terms.penalties["mmd"], mmd_imq(model.encode(x)[0], prior))

    def test_tcvae_loss_weights_only_the_tc_by_beta_and_reports_the_analytic_kl(self):
        model = build_model(tiny("tcvae", beta=6.0))
        x = torch.rand(16, 1, 8, 8)
        terms = elbo_terms(model, x, generator=torch.Generator().manual_seed(4), dataset_size=500)
        p = terms.penalties
        torch.testing.assert_close(terms.loss, terms.recon.mean() + p["mi"] + 6.0 * p["tc"] + p["dwkl"])
        _, mu, logvar, _ = model(x, generator=torch.Generator().manual_seed(4))
        torch.testing.assert_close(terms.kl_per_dim, kl_normal(mu, logvar))
        torch.testing.assert_close(terms.elbo, -(terms.recon + kl_normal(mu, logvar).sum(1)))

    def test_warm_up_ramps_every_term_of_the_regulariser(self):
        model = build_model(tiny("tcvae", beta=4.0))
        x = torch.rand(16, 1, 8, 8)
        half = elbo_terms(model, x, kl_weight=2.0, generator=torch.Generator().manual_seed(5), dataset_size=500)
        p = half.penalties
        torch.testing.assert_close(half.loss, half.recon.mean() + 0.5 * (p["mi"] + 4.0 * p["tc"] + p["dwkl"]))


# -- what training and evaluation record ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    from vae_core.data import load_data

    return load_data("digits", seed=0)


class TestRecords:
    def test_tcvae_steps_and_epochs_carry_mi_tc_dwkl(self, digits):
        config = model_config_for(digits.input_shape, digits.num_classes, kind="tcvae", latent_dim=4, beta=4.0)
        events = []
        result = Trainer(build_model(config), digits, TrainConfig(epochs=1, steps_per_event=5)).run([events.append])
        step = next(e.metrics for e in events if e.kind == "step")
        record = result.history[-1]
        for key in ("mi", "tc", "dwkl"):
            assert math.isfinite(step[key]) and math.isfinite(record[f"train_{key}"])
            assert math.isfinite(record[f"test_{key}"])
        assert record["test_elbo"] == pytest.approx(-(record["test_recon"] + record["test_kl"]))

    def test_the_wae_records_reconstruction_and_mmd_and_no_elbo(self, digits):
        config = model_config_for(digits.input_shape, digits.num_classes, kind="wae", latent_dim=4)
        events = []
        model = build_model(config)
        result = Trainer(model, digits, TrainConfig(epochs=1, steps_per_event=5)).run([events.append])
        step = next(e.metrics for e in events if e.kind == "step")
        record = result.history[-1]
        assert step["elbo"] is None and step["kl"] is None and math.isfinite(step["mmd"])
        assert record["train_elbo"] is record["test_elbo"] is record["test_kl"] is None
        assert math.isfinite(record["test_mmd"]) and math.isfinite(record["test_recon"])
        metrics = evaluate_model(model, digits.test, iwae_samples=10)
        assert metrics["elbo"] is None and metrics["nll"] is None and math.isfinite(metrics["mmd"])


# -- saving --------------------------------------------------------------------------------------------------------
class TestSaving:
    @pytest.mark.parametrize("config", [tiny("wae", mmd_weight=12.0), tiny("tcvae", beta=5.0)], ids=["wae", "tcvae"])
    def test_round_trip_rebuilds_the_same_model(self, config, tmp_path):
        model = build_model(config, seed=3)
        path = save_checkpoint(tmp_path / "m.pt", model, {"dataset": "digits"})
        raw = torch.load(path, weights_only=True)  # a plain tensors-and-dicts file
        assert raw["model_config"]["kind"] == config.kind
        loaded, _ = load_checkpoint(path)
        assert loaded.config == config
        x = torch.rand(4, 1, 8, 8)
        torch.testing.assert_close(loaded.encode(x)[0], model.encode(x)[0])
        torch.testing.assert_close(loaded.decode(torch.ones(2, 3)), model.decode(torch.ones(2, 3)))


# -- the command line, in a real process -------------------------------------------------------------------------------
def run_cli(*args) -> dict:
    proc = subprocess.run([sys.executable, "-m", "vae_core", *map(str, args), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


class TestCommandLine:
    @pytest.mark.parametrize("dataset", ["digits", "shapes"])
    @pytest.mark.parametrize("kind", ["wae", "tcvae"])
    def test_train_one_epoch_then_evaluate(self, kind, dataset, tmp_path):
        out = tmp_path / f"{kind}.pt"
        extra = ["--mmd-weight", 50] if kind == "wae" else ["--beta", 6]
        trained = run_cli("train", "--dataset", dataset, "--model", kind, "--latent-dim", 4, "--hidden", 64,
                          "--epochs", 1, "--threads", 1, "--out", out, *extra)
        evaluated = run_cli("evaluate", "--checkpoint", out)
        model, meta = load_checkpoint(out)
        assert model.config.kind == kind and meta["dataset"] == dataset
        assert evaluated["recon"] == pytest.approx(trained["test_recon"], rel=1e-4)
        if kind == "wae":
            assert model.config.mmd_weight == 50
            assert trained["test_elbo"] is None and evaluated["elbo"] is None and evaluated["kl"] is None
            assert evaluated["mmd"] == pytest.approx(trained["test_mmd"], rel=1e-4, abs=1e-6)
        else:
            assert model.config.beta == 6
            for key in ("mi", "tc", "dwkl"):
                assert math.isfinite(trained[f"train_{key}"]) and math.isfinite(evaluated[key])
            assert evaluated["elbo"] == pytest.approx(trained["test_elbo"], rel=1e-4)
