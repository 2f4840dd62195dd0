"""`python -m vae_core` end to end on real data, as a user runs it: JSON out, exit codes, one-line errors."""
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, check_code: int | None = 0, subprocess_run: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI: in-process through vae_core.cli.main (same parsing, exit codes and output), or as a real
    `python -m vae_core` process where the process boundary itself is under test."""
    argv = [str(a) for a in args]
    if subprocess_run:
        proc = subprocess.run([sys.executable, "-m", "vae_core", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    else:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code
        proc = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
    if check_code is not None:
        assert proc.returncode == check_code, proc.stderr
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits_vae.pt"
    proc = cli("train", "--dataset", "digits", "--model", "vae", "--arch", "mlp", "--latent-dim", 2,
               "--hidden", 64, "--epochs", 3, "--batch-size", 64, "--lr", 3e-3, "--seed", 0, "--out", out, "--json",
               subprocess_run=True)
    return out, json.loads(proc.stdout)


class TestTrain:
    def test_json_has_the_documented_keys(self, trained):
        out, result = trained
        assert set(result) == {"checkpoint", "epochs", "train_elbo", "test_elbo", "test_recon", "test_kl",
                               "samples_per_s", "seconds", "data_copy"}
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
    def test_data_named_by_a_checkpoints_path_is_given_with_data_not_opened(self, tmp_path):
        """A checkpoint's data path is never followed (issue 15): evaluate asks for --data, and takes it."""
        rng = np.random.default_rng(0)
        np.savez(tmp_path / "d.npz", x=(rng.random((60, 8, 8)) > 0.5).astype(np.uint8) * 255)
        cli("train", "--data", tmp_path / "d.npz", "--epochs", 1, "--out", tmp_path / "m.pt", "--json")
        refused = cli("evaluate", "--checkpoint", tmp_path / "m.pt", check_code=2)
        assert "never followed" in refused.stderr and "--data" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        metrics = json.loads(cli("evaluate", "--checkpoint", tmp_path / "m.pt", "--data", tmp_path / "d.npz",
                                 "--json").stdout)
        assert metrics["n_test"] == 60  # evaluate --data scores every image of a file that has no test split

    def test_evaluate_reads_only_the_test_part_of_a_keras_file(self, trained, tmp_path):
        """A Keras-style file whose training part is over the budget: evaluate neither reads nor counts it, and
        scores the whole test part; train is refused with the flag that would admit it."""
        rng = np.random.default_rng(0)
        digits = lambda n: (rng.random((n, 8, 8)) > 0.5).astype(np.uint8) * 255  # noqa: E731
        np.savez(tmp_path / "k.npz", x_train=digits(40_000), y_train=rng.integers(0, 10, 40_000),
                 x_test=digits(50), y_test=rng.integers(0, 10, 50))
        out, _ = trained
        metrics = json.loads(cli("evaluate", "--checkpoint", out, "--data", tmp_path / "k.npz", "--max-data-mb", 4,
                                 "--json").stdout)
        assert metrics["n_test"] == 50
        refused = cli("train", "--data", tmp_path / "k.npz", "--max-data-mb", 4, "--out", tmp_path / "m.pt",
                      check_code=2)
        assert "too large to load here" in refused.stderr and "--max-data-mb" in refused.stderr

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
        proc = cli("info", "--checkpoint", tmp_path / "evil.pt", check_code=2, subprocess_run=True)
        assert "refused" in proc.stderr and not marker.exists()

    def test_malformed_npz(self, tmp_path):
        np.savez(tmp_path / "bad.npz", x=np.full((20, 8, 8), np.nan, dtype=np.float32))
        proc = cli("train", "--data", tmp_path / "bad.npz", "--out", tmp_path / "m.pt", check_code=2,
                   subprocess_run=True)
        assert "NaN" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


class TestPictures:
    """sample, grid, traverse and interpolate write PNGs of the documented size and report the numbers."""

    ZOO = ROOT / "checkpoints"

    def _png(self, path):
        from PIL import Image

        return Image.open(path)

    def test_sample_grid_size_and_seed(self, tmp_path):
        out = json.loads(cli("sample", "--checkpoint", self.ZOO / "digits-vae-2d.pt", "--n", 6, "--nrow", 3,
                             "--scale", 2, "--out", tmp_path / "s.png", "--json").stdout)
        assert len(out["z"]) == 6 and len(out["z"][0]) == 2
        # 3 columns and 2 rows of 16-pixel tiles with 2-pixel padding around each
        assert self._png(tmp_path / "s.png").size == (3 * 18 + 2, 2 * 18 + 2)
        again = json.loads(cli("sample", "--checkpoint", self.ZOO / "digits-vae-2d.pt", "--n", 6,
                               "--out", tmp_path / "t.png", "--json").stdout)
        assert again["z"] == out["z"]

    def test_grid_covers_the_requested_plane(self, tmp_path):
        out = json.loads(cli("grid", "--checkpoint", self.ZOO / "digits-vae-10d.pt", "--n", 5, "--dims", 2, 7,
                             "--span", 2, "--out", tmp_path / "g.png", "--json").stdout)
        z = np.array(out["z"])
        assert z.shape == (25, 10)
        assert z[:, 2].min() == -2 and z[:, 2].max() == 2 and z[:, 7].max() == 2
        assert np.all(np.delete(z, [2, 7], axis=1) == 0)

    def test_traverse_rows_are_dimensions(self, tmp_path):
        out = json.loads(cli("traverse", "--checkpoint", self.ZOO / "digits-vae-10d.pt", "--dims", 0, 3,
                             "--steps", 5, "--scale", 1, "--out", tmp_path / "r.png", "--json").stdout)
        assert out["dims"] == [0, 3] and len(out["values"]) == 5
        assert self._png(tmp_path / "r.png").size == (5 * 9 + 1, 2 * 9 + 1)

    def test_interpolate_starts_and_ends_at_the_encoded_images(self, tmp_path):
        from vae_core.checkpoint import load_checkpoint
        from vae_core.data import load_from_spec

        out = json.loads(cli("interpolate", "--checkpoint", self.ZOO / "digits-vae-2d.pt", "--indices", 4, 9,
                             "--steps", 6, "--method", "slerp", "--out", tmp_path / "i.png", "--json").stdout)
        model, meta = load_checkpoint(self.ZOO / "digits-vae-2d.pt")
        test = load_from_spec(meta["data_spec"]).test
        mu = model.encode(test.x[[4, 9]])[0].detach()
        path = torch.tensor(out["path"])
        assert path.shape == (6, 2)
        torch.testing.assert_close(path[0], mu[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(path[-1], mu[1], atol=1e-5, rtol=0)

    @pytest.mark.parametrize("args, words", [
        (["grid", "--dims", 0, 5], "out of range"),
        (["sample", "--class", 3], "only for a CVAE"),
        (["sample", "--n", 0], "--n must be"),
        (["interpolate", "--codes", 1, 2, 3], "2 x 2 numbers"),
        (["sample", "--out", "x.jpg"], "must end in .png"),
    ])
    def test_bad_picture_flags(self, args, words, tmp_path):
        extra = [] if "--out" in args else ["--out", tmp_path / "x.png"]
        proc = cli(args[0], "--checkpoint", self.ZOO / "digits-vae-2d.pt", *args[1:], *extra, check_code=2)
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
