"""`python -m vae_core` end to end on real data, as a user runs it: JSON out, exit codes, one-line errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, check_code: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "vae_core", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if check_code is not None:
        assert proc.returncode == check_code, proc.stderr
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits_vae.pt"
    proc = cli("train", "--dataset", "digits", "--model", "vae", "--arch", "mlp", "--latent-dim", 2,
               "--hidden", 64, "--epochs", 3, "--batch-size", 64, "--lr", 3e-3, "--seed", 0, "--out", out, "--json")
    return out, json.loads(proc.stdout)


class TestTrain:
    def test_json_has_the_documented_keys(self, trained):
        out, result = trained
        assert set(result) == {"checkpoint", "epochs", "train_elbo", "test_elbo", "test_recon", "test_kl",
                               "samples_per_s", "seconds"}
        assert result["epochs"] == 3 and Path(result["checkpoint"]) == out and out.is_file()
        assert result["test_elbo"] == pytest.approx(-(result["test_recon"] + result["test_kl"]))

    def test_stdout_is_one_json_object(self, trained, tmp_path):
        proc = cli("train", "--dataset", "digits", "--epochs", 1, "--out", tmp_path / "m.pt", "--json")
        assert len(proc.stdout.strip().splitlines()) == 1

    def test_cvae_conv_on_an_npz_file(self, tmp_path):
        rng = np.random.default_rng(0)
        x = (rng.random((120, 16, 16)) > 0.7).astype(np.uint8) * 255
        np.savez(tmp_path / "d.npz", x=x, y=rng.integers(0, 3, 120))
        proc = cli("train", "--data", tmp_path / "d.npz", "--model", "cvae", "--arch", "conv", "--latent-dim", 3,
                   "--epochs", 1, "--out", tmp_path / "c.pt", "--json")
        assert json.loads(proc.stdout)["epochs"] == 1


class TestEvaluateAndInfo:
    def test_evaluate_matches_training_and_reloads_the_same_split(self, trained):
        out, result = trained
        metrics = json.loads(cli("evaluate", "--checkpoint", out, "--iwae-samples", 50, "--json").stdout)
        assert {"elbo", "recon", "kl", "nll", "active_units"} <= set(metrics)
        assert metrics["elbo"] == pytest.approx(result["test_elbo"], abs=1e-4)  # same split, same noise seed
        assert metrics["nll"] < -metrics["elbo"]  # the importance-weighted bound is tighter than the ELBO
        from vae_core.data import load_data
        assert metrics["n_test"] == len(load_data("digits", seed=0).test)

    def test_info_shows_the_model_card(self, trained):
        out, _ = trained
        info = json.loads(cli("info", "--checkpoint", out, "--json").stdout)
        assert info["model_config"]["latent_dim"] == 2 and info["dataset"] == "digits"
        assert len(info["history"]) == 3 and info["label_names"][:2] == ["0", "1"]


class TestBadInput:
    @pytest.mark.parametrize("args, words", [
        (["train", "--dataset", "digits", "--epochs", 0, "--out", "x.pt"], "epochs"),
        (["train", "--dataset", "digits", "--lr", -1, "--out", "x.pt"], "learning rate"),
        (["train", "--data", "/nonexistent.npz", "--out", "x.pt"], "no file"),
        (["train", "--dataset", "cifar", "--out", "x.pt"], "invalid choice"),
        (["train", "--out", "x.pt"], "required"),
        (["evaluate", "--checkpoint", "/nonexistent.pt"], "no checkpoint file"),
    ])
    def test_exit_code_2_and_one_clear_line(self, args, words, tmp_path):
        proc = cli(*args, check_code=2)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], proc.stderr
        assert proc.stdout == ""

    def test_a_hostile_checkpoint_is_refused_and_its_code_does_not_run(self, tmp_path):
        marker = tmp_path / "pwned"

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        torch.save({"format": "latent-lab", "meta": Evil()}, tmp_path / "evil.pt")
        proc = cli("info", "--checkpoint", tmp_path / "evil.pt", check_code=2)
        assert "refused" in proc.stderr and not marker.exists()

    def test_malformed_npz(self, tmp_path):
        np.savez(tmp_path / "bad.npz", x=np.full((20, 8, 8), np.nan, dtype=np.float32))
        proc = cli("train", "--data", tmp_path / "bad.npz", "--out", tmp_path / "m.pt", check_code=2)
        assert "NaN" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
