"""The bundled shapes models, checked against the ground-truth factors by an implementation of MIG written here
from scratch (numpy contingency tables, not vae_core.disentanglement), so a bug in the shipped metric cannot
vouch for itself: the showcase model must really disentangle, and every shapes card must tell the truth."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from vae_core.checkpoint import load_checkpoint
from vae_core.data import SHAPE_FACTOR_NAMES, load_from_spec
from vae_core.disentanglement import mig as shipped_mig
from vae_core.zoo import ZOO, ZOO_DIR

SHAPES_MODELS = [spec.name for spec in ZOO if spec.dataset == "shapes"]
SHOWCASE = "shapes-tcvae"  # the Disentanglement lab's default model
CARD_SAMPLES, N_BINS = 4000, 20  # the cards' protocol (vae_core.zoo.disentanglement_card)
# Both implementations bin with equal-width bins, but compute the edges differently (a division here, numpy's
# linspace there): a code within an ulp of an edge may land one bin apart. One of 4,000 points moving bin shifts
# an MI by at most ~log(4000)/4000 = 2e-3 nats, i.e. under 2e-3 of MIG after dividing by H >= ln 3. Measured on
# the bundled shapes-vae and shapes-betavae: the two implementations agree to 1e-15 on the same codes, and the
# card to 3.8e-6 (the card's codes came from another CPU: see tests/test_zoo.py). abs=2e-3 allows a point or two
# and still sits far below the MIG gaps between the models (0.034, 0.088 and the showcase's >= 0.25).
TOLERANCE = 2e-3


# -- MIG from scratch ---------------------------------------------------------------------------------------------
def equal_width_bins(codes: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """(N, D) codes -> bin indices 0..n_bins-1 per column, n_bins equal-width bins from its min to its max."""
    low, high = codes.min(axis=0), codes.max(axis=0)
    width = np.where(high > low, (high - low) / n_bins, 1.0)
    return np.clip(np.floor((codes - low) / width).astype(np.int64), 0, n_bins - 1)


def plug_in_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two integer label arrays from their joint histogram."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())


def entropy(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def independent_mig(codes: np.ndarray, factors: np.ndarray) -> tuple[float, np.ndarray]:
    """MIG (Chen et al. 2018, eq. 6) and the (D, K) normalised MI matrix I(z_d; v_k) / H(v_k)."""
    bins = equal_width_bins(codes)
    mi = np.array([[plug_in_mutual_information(bins[:, d], factors[:, k]) for k in range(factors.shape[1])]
                   for d in range(codes.shape[1])])
    normalised = mi / np.array([entropy(factors[:, k]) for k in range(factors.shape[1])])
    top_two = -np.sort(-normalised, axis=0)[:2]
    return float(np.mean(top_two[0] - top_two[1])), normalised


def card_codes(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Posterior means and factors of the cards' seeded subsample of the test split, and the card."""
    model, meta = load_checkpoint(ZOO_DIR / f"{name}.pt")
    test = load_from_spec(meta["data_spec"]).test
    keep = np.sort(np.random.default_rng(0).permutation(len(test))[:CARD_SAMPLES])
    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(test.x[torch.from_numpy(keep)].float())
    return mu.double().numpy(), test.factors[torch.from_numpy(keep)].numpy().astype(np.int64), meta["card"]


@pytest.fixture(scope="module")
def measured():
    return {name: card_codes(name) for name in SHAPES_MODELS}


# -- the tests ----------------------------------------------------------------------------------------------------
class TestIndependentMig:
    def test_the_from_scratch_parts_agree_with_references(self):
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, 5, 3000), rng.integers(0, 7, 3000)
        assert plug_in_mutual_information(a, b) == pytest.approx(mutual_info_score(a, b), abs=1e-12)
        assert plug_in_mutual_information(a, a) == pytest.approx(entropy(a), abs=1e-12)  # I(a; a) = H(a)
        codes = rng.uniform(size=(5000, 3))
        factors = np.stack([np.floor(codes[:, 0] * 4), rng.integers(0, 4, 5000)], axis=1).astype(np.int64)
        gap, normalised = independent_mig(codes, factors)
        # Factor 0 is a function of dimension 0 (its quarters, 5 of the 20 bins each) and of nothing else; factor 1
        # is noise. The unrelated pairs read the plug-in bias, (20 - 1)(4 - 1) / (2 * 5000) = 0.006 nats = 0.004 of H.
        assert normalised[0, 0] > 0.97 and normalised[1:, 0].max() < 0.02 and normalised[:, 1].max() < 0.02
        assert gap == pytest.approx(shipped_mig(codes, factors)["mig"], abs=TOLERANCE)

    @pytest.mark.parametrize("name", SHAPES_MODELS)
    def test_every_shapes_card_reports_mig_and_dci_truthfully(self, measured, name):
        codes, factors, card = measured[name]
        for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
            assert 0.0 <= card[key] <= 1.0, (name, key)
        gap, _ = independent_mig(codes, factors)
        assert gap == pytest.approx(shipped_mig(codes, factors)["mig"], abs=TOLERANCE)
        assert gap == pytest.approx(card["mig"], abs=TOLERANCE)

    def test_the_showcase_disentangles(self, measured):
        codes, factors, card = measured[SHOWCASE]
        gap, normalised = independent_mig(codes, factors)
        assert gap >= 0.25, f"{SHOWCASE}: MIG {gap:.3f}"
        assert gap > max(independent_mig(*measured[n][:2])[0] for n in SHAPES_MODELS if n != SHOWCASE)


class TestShowcaseRows:
    def test_position_and_scale_each_have_their_own_dimension(self, measured):
        codes, factors, _ = measured[SHOWCASE]
        _, normalised = independent_mig(codes, factors)
        best = {SHAPE_FACTOR_NAMES[k]: int(np.argmax(normalised[:, k])) for k in range(len(SHAPE_FACTOR_NAMES))}
        rows = [best["pos_x"], best["pos_y"], best["scale"]]
        assert len(set(rows)) == 3, best
        for factor in ("pos_x", "pos_y", "scale"):
            k = SHAPE_FACTOR_NAMES.index(factor)
            # The dimension that holds a factor holds little of the others: a traversal row moves one thing.
            others = np.delete(normalised[best[factor]], k)
            assert normalised[best[factor], k] > 3 * others.max(), (factor, normalised[best[factor]].round(2))
