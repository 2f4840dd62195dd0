"""vae_core.judge, the sample-quality classifier: the Fréchet distance against a scipy.linalg.sqrtm reference and
its invariants, the safe file format, the refusal of images it cannot read, and the shipped classifier
(checkpoints/judge/mnist-classifier.pt) on real MNIST test digits against smudges.

Fast by design: the shipped classifier reads a seeded 1,000-image subset of the bundled test split once (its
features are shared by the tests), and its full-split accuracy is read from the file's card.
"""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import torch

from vae_core import judge as J
from vae_core.data import mnist_arrays
from vae_core.errors import CheckpointError

N_REAL = 1000  # real test digits the shipped classifier is checked on


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with a general matrix square root (as pytorch-fid computes it)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # singular covariances (fewer rows than features) are expected here
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(s_a @ s_b)
    root = root.real  # round-off leaves a tiny imaginary part
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root))


def gaussian(rng: np.random.Generator, n: int, f: int, shift: float = 0.0) -> np.ndarray:
    """n rows from a random correlated Gaussian in f dimensions."""
    mix = rng.normal(size=(f, f)) / np.sqrt(f)
    return rng.normal(size=(n, f)) @ mix + shift + rng.normal(size=f)


# -- the Fréchet distance -------------------------------------------------------------------------------------------
class TestFrechetDistance:
    @pytest.mark.parametrize("f, n, m, seed", [(2, 300, 200, 0), (16, 500, 400, 1), (64, 800, 600, 2)])
    def test_matches_scipy_sqrtm(self, f, n, m, seed):
        rng = np.random.default_rng(seed)
        a, b = gaussian(rng, n, f), gaussian(rng, m, f, shift=0.5)
        want = scipy_frechet(a, b)
        assert J.frechet_distance(a, b) == pytest.approx(want, rel=1e-6, abs=1e-8)

    def test_uncorrelated_features_by_hand(self):
        # With diagonal covariances the formula is the sum over features of (mu_a - mu_b)^2 + (sd_a - sd_b)^2
        # (sample sd, ddof = 1, as np.cov). The four corners of a rectangle have exactly uncorrelated coordinates.
        a = np.array([[-1.0, -2.0], [-1.0, 2.0], [1.0, -2.0], [1.0, 2.0]]) + [0.5, 0.0]
        b = np.array([[-3.0, -1.0], [-3.0, 1.0], [3.0, -1.0], [3.0, 1.0]]) + [0.0, 4.0]
        want = sum((a[:, i].mean() - b[:, i].mean()) ** 2 + (a[:, i].std(ddof=1) - b[:, i].std(ddof=1)) ** 2
                   for i in range(2))
        assert J.frechet_distance(a, b) == pytest.approx(want, rel=1e-12)

    def test_a_set_against_itself_is_zero_and_the_distance_is_symmetric(self):
        rng = np.random.default_rng(3)
        a, b = gaussian(rng, 400, 32), gaussian(rng, 300, 32)
        assert abs(J.frechet_distance(a, a)) < 1e-8 * np.trace(np.cov(a, rowvar=False))
        assert J.frechet_distance(a, b) == pytest.approx(J.frechet_distance(b, a), rel=1e-9)
        assert J.frechet_distance(a, b) > 0

    def test_a_translation_by_v_adds_v_squared(self):
        rng = np.random.default_rng(4)
        a, b = gaussian(rng, 500, 8), gaussian(rng, 400, 8)
        v = rng.normal(size=8)
        # Shifting one set moves its mean only: d(a + v, a) = |v|^2, and d(a + v, b) gains |v|^2 + 2 v.(mu_a - mu_b).
        assert J.frechet_distance(a + v, a) == pytest.approx((v ** 2).sum(), rel=1e-9)
        gain = (v ** 2).sum() + 2 * v @ (a.mean(0) - b.mean(0))
        assert J.frechet_distance(a + v, b) - J.frechet_distance(a, b) == pytest.approx(gain, rel=1e-9, abs=1e-9)

    def test_fewer_rows_than_features_stays_finite(self):
        # Singular covariances (N < F, as with a few samples of the 128 features): no NaN from negative round-off.
        rng = np.random.default_rng(5)
        a, b = gaussian(rng, 20, 48), gaussian(rng, 30, 48)
        d = J.frechet_distance(a, b)
        assert np.isfinite(d) and d == pytest.approx(scipy_frechet(a, b), rel=1e-5)


# -- the file and the inputs ------------------------------------------------------------------------------------------
class Boom:
    """Unpickling this would run code: the loader must refuse it before anything runs."""

    ran = False

    def __reduce__(self):
        return (_explode, ())


def _explode():
    Boom.ran = True
    return "exploded"


class TestFileAndInputs:
    def test_save_and_load_round_trip(self, tmp_path):
        torch.manual_seed(0)
        judge = J.DigitClassifier().eval()
        path = J.save_judge(tmp_path / "sub" / "judge.pt", judge, {"card": {"test_accuracy": 0.5}})
        again = J.load_judge(path)
        for (name, want), (_, got) in zip(judge.state_dict().items(), again.state_dict().items()):
            assert torch.equal(want, got), name
        x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        assert torch.equal(judge(x), again(x)) and not again.training
        assert J.judge_meta(path) == {"card": {"test_accuracy": 0.5}}
        # The file is a plain dict that weights_only=True reads.
        payload = torch.load(path, weights_only=True)
        assert payload["format"] == "latent-lab-judge" and payload["num_classes"] == 10

    def test_a_file_that_would_run_code_is_refused(self, tmp_path):
        torch.manual_seed(0)
        payload = {"format": "latent-lab-judge", "num_classes": 10, "state_dict": J.DigitClassifier().state_dict(),
                   "meta": {"x": Boom()}}
        torch.save(payload, tmp_path / "evil.pt")
        Boom.ran = False
        with pytest.raises(CheckpointError, match="unreadable"):
            J.load_judge(tmp_path / "evil.pt")
        assert not Boom.ran

    def test_other_files_are_refused_with_a_clear_message(self, tmp_path):
        torch.save({"format": "latent-lab-checkpoint", "state_dict": {}}, tmp_path / "model.pt")
        with pytest.raises(CheckpointError, match="not a Latent Lab sample-quality classifier"):
            J.load_judge(tmp_path / "model.pt")
        with pytest.raises(CheckpointError, match="missing.*zoo build"):
            J.load_judge(tmp_path / "nope.pt")
        (tmp_path / "junk.pt").write_bytes(b"not a torch file")
        with pytest.raises(CheckpointError, match="unreadable"):
            J.load_judge(tmp_path / "junk.pt")

    def test_only_grey_28x28_images_are_read(self):
        judge = J.DigitClassifier().eval()
        assert J.fits((1, 28, 28)) and J.fits([1, 28, 28])
        assert not J.fits((1, 8, 8)) and not J.fits((3, 28, 28)) and not J.fits((1, 32, 32))
        for shape in [(4, 1, 8, 8), (4, 3, 28, 28), (4, 1, 32, 32)]:
            with pytest.raises(ValueError, match="1x28x28"):
                J.classify(judge, torch.rand(shape))
            with pytest.raises(ValueError, match="1x28x28"):
                J.judge_samples(judge, torch.rand(shape), torch.rand(4, 1, 28, 28))
        with pytest.raises(ValueError, match="1x28x28"):
            J.judge_samples(judge, torch.rand(4, 1, 28, 28), torch.rand(4, 1, 8, 8))
        with pytest.raises(ValueError, match="at least two"):
            J.judge_samples(judge, torch.rand(1, 1, 28, 28), torch.rand(4, 1, 28, 28))

    def test_training_refuses_other_images(self):
        with pytest.raises(ValueError, match="1x28x28"):
            J.train_judge(SimpleNamespace(input_shape=(1, 8, 8)))  # refused before anything is read

    def test_judge_samples_is_classify_then_the_formula(self):
        # recognised, class_share and fid recomputed by hand from classify's outputs.
        torch.manual_seed(1)
        judge = J.DigitClassifier().eval()
        g = torch.Generator().manual_seed(2)
        samples, real = torch.rand(40, 1, 28, 28, generator=g), torch.rand(30, 1, 28, 28, generator=g) ** 2
        score = J.judge_samples(judge, samples, real)
        probs, feats = J.classify(judge, samples, batch_size=7)  # batching changes nothing
        _, real_feats = J.classify(judge, real)
        assert score["n"] == 40
        assert score["recognised"] == pytest.approx(float((probs.max(1).values >= J.CONFIDENT).double().mean()))
        share = np.bincount(probs.argmax(1).numpy(), minlength=10) / 40
        np.testing.assert_allclose(score["class_share"], share)
        assert score["fid"] == pytest.approx(scipy_frechet(feats.double().numpy(), real_feats.double().numpy()),
                                             rel=1e-5)


# -- the shipped classifier -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    assert J.JUDGE_PATH.is_file(), f"{J.JUDGE_PATH} is missing: `python -m vae_core zoo build --only mnist-classifier`"
    return J.load_judge()


@pytest.fixture(scope="module")
def real_digits(shipped):
    """A seeded subset of the bundled MNIST test split: images (N_REAL, 1, 28, 28) in [0, 1], labels, and the
    shipped classifier's (probabilities, features) of them, computed once for all the tests below."""
    _, _, x_test, y_test, _ = mnist_arrays()
    # Random rows in random order: MNIST's test set is ordered by writer group, so its halves differ (and so
    # would the halves of a sorted subset).
    rows = np.random.default_rng(0).choice(len(x_test), N_REAL, replace=False)
    x = torch.from_numpy(x_test[rows].astype(np.float32) / 255).unsqueeze(1)
    probs, feats = J.classify(shipped, x)
    return x, torch.from_numpy(y_test[rows]), probs, feats.double().numpy()


def recognised(probs: torch.Tensor) -> float:
    return float((probs.max(1).values >= J.CONFIDENT).double().mean())


class TestShippedClassifier:
    """Real digits against smudges. FIDs here are of the first half of the subset (or of smudges) against the
    second half, from features computed once (judge_samples is classify + frechet_distance: tested above)."""

    def test_accuracy_on_the_bundled_test_split(self, shipped, real_digits):
        x, y, probs, _ = real_digits
        acc = float((probs.argmax(1) == y).double().mean())
        assert acc >= 0.97, f"accuracy {acc:.4f} on {N_REAL} test digits"
        assert J.accuracy(shipped, x[:200], y[:200]) == pytest.approx(float((probs[:200].argmax(1) == y[:200])
                                                                            .double().mean()))
        card = J.judge_meta()["card"]  # measured on all 10,000 test digits when the zoo was built
        assert card["test_accuracy"] >= 0.97
        assert abs(card["test_accuracy"] - acc) < 0.015, (card["test_accuracy"], acc)  # the subset agrees
        assert card["real_recognised"] >= 0.9 and 0 <= card["real_fid"] < 20  # real digits: the floor

    def test_real_digits_are_recognised_and_their_mix_is_the_true_one(self, real_digits):
        _, y, probs, _ = real_digits
        assert recognised(probs) >= 0.9
        share = np.bincount(probs.argmax(1).numpy(), minlength=10) / N_REAL
        truth = np.bincount(y.numpy(), minlength=10) / N_REAL
        assert 0.5 * np.abs(share - truth).sum() < 0.03

    def test_smudges_are_not_recognised_and_lie_far_from_real_digits(self, shipped, real_digits):
        _, _, probs, feats = real_digits
        half = N_REAL // 2
        real_floor = J.frechet_distance(feats[:half], feats[half:])
        noise_probs, noise_feats = J.classify(shipped, torch.rand(half, 1, 28, 28,
                                                                  generator=torch.Generator().manual_seed(0)))
        grey_probs, grey_feats = J.classify(shipped, torch.full((2, 1, 28, 28), 0.5))
        assert torch.equal(grey_feats[0], grey_feats[1])  # identical images, identical features: one suffices
        noise_fid = J.frechet_distance(noise_feats.double().numpy(), feats[half:])
        grey_fid = J.frechet_distance(grey_feats.double().numpy()[[0] * half], feats[half:])
        assert recognised(noise_probs) <= 0.2 and recognised(noise_probs) < recognised(probs) - 0.7
        assert 0 <= real_floor < noise_fid / 10 and grey_fid > 10 * real_floor, (real_floor, noise_fid, grey_fid)

    def test_variety_counts(self, real_digits):
        """Good digits of one class are recognised but score a far worse FID than real digits of every class: the
        FID sees that a generator draws only one digit."""
        _, y, probs, feats = real_digits
        half = N_REAL // 2
        ones = np.flatnonzero(y[:half].numpy() == 1)
        assert recognised(probs[ones]) >= 0.9 and (probs[ones].argmax(1) == 1).double().mean() >= 0.95
        only_ones = J.frechet_distance(feats[ones], feats[half:])
        mixed = J.frechet_distance(feats[:len(ones)], feats[half:])  # as many real digits of every class
        assert only_ones > 5 * mixed, (only_ones, mixed)
