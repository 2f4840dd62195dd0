"""Your own factors (issue 16): an .npz with a `factors` array (N, K) and optional `factor_names` loads into the
split's factors, so the disentanglement metrics work for any model trained on it; bad factors are refused clearly."""
import numpy as np
import pytest
import torch

from vae_core.data import load_npz
from vae_core.data.npz import FACTOR_BINS, MAX_FACTORS
from vae_core.disentanglement import evaluate_disentanglement
from vae_core.errors import DataError
from vae_core.config import model_config_for
from vae_core.models import build_model


def bars(n: int = 200, seed: int = 0):
    """8x8 images of a vertical bar at column c and a horizontal bar at row r: factors (c, r)."""
    rng = np.random.default_rng(seed)
    c, r = rng.integers(0, 8, n), rng.integers(0, 8, n)
    x = np.zeros((n, 8, 8), np.uint8)
    x[np.arange(n), :, c] = 255
    x[np.arange(n), r, :] = 255
    return x, np.stack([c, r], axis=1)


def save(tmp_path, **arrays):
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    return path


class TestLoading:
    def test_factors_and_names_follow_the_split(self, tmp_path):
        x, f = bars()
        split = load_npz(save(tmp_path, x=x, factors=f, factor_names=np.array(["column", "row"])), seed=3)
        for part in (split.train, split.test):
            assert part.factor_names == ("column", "row") and part.factor_sizes == (8, 8)
            assert part.factors.dtype == torch.int64 and part.factors.shape == (len(part), 2)
            # each image's factors are its own: the bar's column is where the image's column sums peak
            col = (part.x[:, 0].sum(1) == 8).float().argmax(1)  # (N,) the full column
            assert torch.equal(col, part.factors[:, 0])

    def test_default_names_and_remapped_values(self, tmp_path):
        x, f = bars()
        split = load_npz(save(tmp_path, x=x, factors=(f * 10 + 5).astype(np.float32)))
        assert split.test.factor_names == ("factor 0", "factor 1")
        assert int(split.test.factors.max()) == 7 and int(split.test.factors.min()) == 0

    def test_a_continuous_factor_is_binned(self, tmp_path):
        x, _ = bars(2000)
        values = np.random.default_rng(1).random((2000, 1))
        split = load_npz(save(tmp_path, x=x, factors=values))
        assert split.train.factor_sizes[0] <= FACTOR_BINS

    def test_a_single_factor_may_be_one_dimensional(self, tmp_path):
        x, f = bars()
        assert load_npz(save(tmp_path, x=x, factors=f[:, 0])).test.factors.shape[1] == 1

    def test_evaluate_only_keeps_the_factors(self, tmp_path):
        x, f = bars()
        split = load_npz(save(tmp_path, x=x, factors=f), test_only=True)
        assert split.test.factors.shape == (200, 2)

    def test_the_metrics_run_on_a_model_of_this_data(self, tmp_path):
        x, f = bars(400)
        split = load_npz(save(tmp_path, x=x, factors=f, factor_names=np.array(["column", "row"])))
        model = build_model(model_config_for(split.input_shape, split.num_classes, latent_dim=3, hidden=(32,)))
        scores = evaluate_disentanglement(model, split.test, max_samples=500)
        assert scores["factor_names"] == ["column", "row"] and 0 <= scores["mig"] <= 1

    def test_files_without_factors_have_none(self, tmp_path):
        x, _ = bars()
        assert load_npz(save(tmp_path, x=x)).test.factors is None


class TestRefusals:
    @pytest.mark.parametrize("arrays, match", [
        ({"factors": np.zeros((199, 2))}, "199 rows but there are 200 images"),
        ({"factors": np.zeros((200, 2, 2))}, r"expected \(N, K\)"),
        ({"factors": np.zeros((200, 0))}, r"expected \(N, K\)"),
        ({"factors": np.zeros((200, MAX_FACTORS + 1))}, "over the limit"),
        ({"factors": np.full((200, 1), np.nan)}, "NaN or inf"),
        ({"factors": np.array(["a"] * 200)}, "expected numbers"),
        ({"factors": np.zeros((200, 2)), "factor_names": np.array(["only one"])}, "one name per factor"),
        ({"factors": np.zeros((200, 2)), "factor_names": np.array([1, 2])}, "expected text"),
        ({"factor_names": np.array(["a", "b"])}, "no factors array"),
    ])
    def test_bad_factors_are_refused_with_a_clear_message(self, tmp_path, arrays, match):
        x, _ = bars()
        with pytest.raises(DataError, match=match):
            load_npz(save(tmp_path, x=x, **arrays))

    def test_pickled_factors_are_refused_unread(self, tmp_path):
        x, _ = bars()
        path = tmp_path / "objects.npz"
        np.savez(path, x=x, factors=np.array([{"a": 1}] * 200, dtype=object))
        with pytest.raises(DataError, match="Python objects"):
            load_npz(path)

    def test_factors_with_a_keras_layout_are_refused(self, tmp_path):
        x, f = bars()
        with pytest.raises(DataError, match="single-x layout"):
            load_npz(save(tmp_path, x_train=x[:150], x_test=x[150:], factors=f))

    def test_factors_count_against_the_memory_budget(self, tmp_path):
        x, _ = bars()
        path = tmp_path / "big.npz"
        np.savez_compressed(path, x=x, factors=np.zeros((100_000, 32), np.int64))  # 25 MB declared, checked unread
        with pytest.raises(DataError, match="too large to load.*factors 100000x32 int64"):
            load_npz(path, max_bytes=8 << 20)
