"""Checkpoints: bit-exact round trip, atomic writes, and refusal of every unsafe or broken file."""
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from vae_core.checkpoint import (FORMAT_VERSION, checkpoint_bytes, checkpoint_payload, load_checkpoint,
                                 save_checkpoint)
from vae_core.config import model_config_for
from vae_core.errors import CheckpointError
from vae_core.models import build_model


@pytest.fixture
def model():
    return build_model(model_config_for((1, 8, 8), 10, kind="cvae", latent_dim=3), seed=1)


class _RunsCode:
    """An object whose unpickling runs a shell command: what a hostile checkpoint would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class TestRoundTrip:
    def test_weights_config_and_meta_come_back_exactly(self, model, tmp_path):
        meta = {"dataset": "digits", "label_names": [str(i) for i in range(10)], "metrics": {"test_elbo": -20.5}}
        path = save_checkpoint(tmp_path / "m.pt", model, meta)
        loaded, loaded_meta = load_checkpoint(path)
        assert loaded.config == model.config
        assert loaded_meta == meta
        for k, v in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[k], v), k
        z, y = torch.randn(4, 3), torch.arange(4)
        assert torch.equal(loaded.decode(z, y), model.eval().decode(z, y))

    def test_bytes_and_paths_load_the_same(self, model, tmp_path):
        data = checkpoint_bytes(model, {"a": 1})
        assert load_checkpoint(data)[1] == {"a": 1}

    def test_numpy_values_in_meta_become_plain_numbers(self, model, tmp_path):
        import numpy as np
        path = save_checkpoint(tmp_path / "m.pt", model, {"x": np.float32(1.5), "v": np.arange(3)})
        assert load_checkpoint(path)[1] == {"x": 1.5, "v": [0, 1, 2]}


class TestAtomicWrites:
    def test_no_temporary_files_are_left(self, model, tmp_path):
        save_checkpoint(tmp_path / "m.pt", model)
        save_checkpoint(tmp_path / "m.pt", model)
        assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]

    def test_a_process_killed_mid_save_leaves_a_loadable_file(self, tmp_path):
        """SIGKILL a process that saves a large model in a loop; the file on disk must always load."""
        path = tmp_path / "big.pt"
        script = (
            "import sys; from vae_core.config import model_config_for; from vae_core.models import build_model;"
            "from vae_core.checkpoint import save_checkpoint;"
            "m = build_model(model_config_for((1, 28, 28), 10, latent_dim=20, hidden=(1024, 1024)));"
            f"save_checkpoint({str(path)!r}, m, {{'n': 0}}); print('ready', flush=True)\n"
            "i = 0\n"
            f"while True:\n    i += 1; save_checkpoint({str(path)!r}, m, {{'n': i}})\n"
        )
        for delay in (0.05, 0.13, 0.31):
            proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[1])
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            _, meta = load_checkpoint(path)
            assert isinstance(meta["n"], int)


class TestRefusals:
    def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(self, model, tmp_path):
        marker = tmp_path / "pwned"
        payload = checkpoint_payload(model, {})
        payload["meta"] = {"evil": _RunsCode(marker)}
        path = tmp_path / "evil.pt"
        torch.save(payload, path)
        with pytest.raises(CheckpointError, match="refused"):
            load_checkpoint(path)
        assert not marker.exists()

    def test_a_plain_pickle_is_not_a_checkpoint(self, tmp_path):
        marker = tmp_path / "pwned"
        path = tmp_path / "evil.pkl"
        path.write_bytes(pickle.dumps(_RunsCode(marker)))
        with pytest.raises(CheckpointError, match="not a Latent Lab checkpoint"):
            load_checkpoint(path)
        assert not marker.exists()

    def test_truncated_file(self, model, tmp_path):
        data = checkpoint_bytes(model)
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(data[: len(data) // 2])

    def test_random_bytes(self):
        with pytest.raises(CheckpointError, match="not a Latent Lab checkpoint"):
            load_checkpoint(os.urandom(5000))

    def test_a_zip_that_is_not_a_checkpoint(self, tmp_path):
        path = tmp_path / "x.pt"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("hello.txt", "hi")
        with pytest.raises(CheckpointError):
            load_checkpoint(path)

    def test_another_format_version(self, model, tmp_path):
        payload = checkpoint_payload(model, {})
        payload["format_version"] = FORMAT_VERSION + 1
        torch.save(payload, tmp_path / "v.pt")
        with pytest.raises(CheckpointError, match="version"):
            load_checkpoint(tmp_path / "v.pt")

    def test_weights_that_do_not_fit_the_config(self, model, tmp_path):
        payload = checkpoint_payload(model, {})
        payload["model_config"]["latent_dim"] = 5
        torch.save(payload, tmp_path / "w.pt")
        with pytest.raises(CheckpointError, match="do not fit"):
            load_checkpoint(tmp_path / "w.pt")

    def test_invalid_config(self, model, tmp_path):
        payload = checkpoint_payload(model, {})
        payload["model_config"]["kind"] = "gan"
        torch.save(payload, tmp_path / "c.pt")
        with pytest.raises(CheckpointError, match="model kind"):
            load_checkpoint(tmp_path / "c.pt")

    def test_non_finite_weights(self, model, tmp_path):
        payload = checkpoint_payload(model, {})
        next(iter(payload["state_dict"].values()))[0] = float("nan")
        torch.save(payload, tmp_path / "n.pt")
        with pytest.raises(CheckpointError, match="NaN"):
            load_checkpoint(tmp_path / "n.pt")

    def test_missing_file(self, tmp_path):
        with pytest.raises(CheckpointError, match="no checkpoint file"):
            load_checkpoint(tmp_path / "nope.pt")
