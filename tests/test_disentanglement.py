"""MIG and DCI on codes with a known answer, MI against a contingency table, and the model-level entry point."""
import math

import numpy as np
import pytest

from vae_core.config import model_config_for
from vae_core.disentanglement import (
    INACTIVE_KL_NATS,
    _completeness,
    _disentanglement,
    dci,
    discretize,
    evaluate_disentanglement,
    factor_entropies,
    factor_rows,
    inactive_dimensions,
    most_informative_factor,
    mutual_information,
    mutual_information_matrix,
    mig,
)
from vae_core.models import build_model

N = 3000  # large enough that the plug-in MI's positive bias (~(bins-1)(values-1)/2N nats) stays small
SIZES = (3, 6, 10, 8)  # all <= 20 bins, so a perfect code can reach MIG 1


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, s, N) for s in SIZES], axis=1)  # (N, 4) independent uniform factors


@pytest.fixture(scope="module")
def codes(factors):
    """Codes with a known degree of disentanglement, all (N, D) floats."""
    rng = np.random.default_rng(1)
    copy = factors.astype(float) + 1e-3 * rng.standard_normal(factors.shape)  # one dim per factor
    scaled = factors / np.array(SIZES, dtype=float)
    theta = math.pi / 4
    rotation = np.eye(len(SIZES))
    rotation[:2, :2] = [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
    return {
        "copy": copy,
        "random": rng.standard_normal((N, len(SIZES))),  # independent of the factors
        "rotated": scaled @ rotation.T,  # dims 0 and 1 each mix factors 0 and 1
        "duplicated": np.c_[copy, copy[:, 0] + 1e-3 * rng.standard_normal(N)],  # factor 0 in dims 0 and 4
    }


@pytest.fixture(scope="module")
def dci_scores(codes, factors):
    return {name: dci(c, factors, n_estimators=20) for name, c in codes.items()}


class TestDiscretize:
    def test_bins_are_in_range_and_all_used_for_uniform_data(self):
        x = np.random.default_rng(0).uniform(-3, 5, size=(2000, 3))
        bins = discretize(x, n_bins=10)
        assert bins.shape == x.shape and bins.min() == 0 and bins.max() == 9
        assert all(len(np.unique(bins[:, d])) == 10 for d in range(3))

    def test_equal_width_bins_keep_order(self):
        x = np.linspace(0, 1, 101)[:, None]
        bins = discretize(x, n_bins=4)[:, 0]
        assert (np.diff(bins) >= 0).all()
        np.testing.assert_array_equal(np.bincount(bins), [25, 25, 25, 26])  # the maximum joins the last bin

    def test_a_constant_dimension_falls_into_one_bin(self):
        bins = discretize(np.full((50, 1), 3.7))
        assert len(np.unique(bins)) == 1 and 0 <= bins[0, 0] < 20


class TestMutualInformation:
    def test_matches_a_contingency_table_computation(self, codes, factors):
        # Reference: I(a; b) = Σ p(a, b) log p(a, b) / (p(a) p(b)) from the joint counts, in nats.
        code, factor, n_bins = codes["rotated"][:, 0], factors[:, 1], 20
        edges = np.linspace(code.min(), code.max(), n_bins + 1)
        a = np.clip(np.searchsorted(edges, code, side="right") - 1, 0, n_bins - 1)
        joint = np.zeros((n_bins, SIZES[1]))
        np.add.at(joint, (a, factor), 1.0)
        p = joint / joint.sum()
        pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
        nz = p > 0
        reference = float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum())
        mi = mutual_information_matrix(codes["rotated"], factors, n_bins)
        assert mi.shape == (len(SIZES), len(SIZES))
        assert mi[0, 1] == pytest.approx(reference, rel=1e-9)

    def test_entropies_of_uniform_factors_are_about_log_of_their_size(self, factors):
        h = factor_entropies(factors)
        np.testing.assert_allclose(h, np.log(SIZES), atol=0.01)
        assert factor_entropies(np.zeros((10, 1), dtype=int))[0] == 0.0

    def test_a_copied_factor_carries_all_its_entropy(self, codes, factors):
        mi = mutual_information_matrix(codes["copy"], factors)
        np.testing.assert_allclose(np.diag(mi), factor_entropies(factors), rtol=1e-9)


class TestMIG:
    def test_a_copy_of_the_factors_scores_near_one(self, codes, factors):
        result = mig(codes["copy"], factors)
        assert result["mig"] > 0.9
        assert result["top_dim_per_factor"] == [0, 1, 2, 3]

    def test_a_code_independent_of_the_factors_scores_near_zero(self, codes, factors):
        assert mig(codes["random"], factors)["mig"] < 0.05

    def test_mixing_two_factors_scores_lower_than_the_copy(self, codes, factors):
        rotated, copy = mig(codes["rotated"], factors), mig(codes["copy"], factors)
        assert rotated["mig"] < copy["mig"] - 0.2
        assert max(rotated["per_factor"][:2]) < 0.3  # the two mixed factors have no dominant dimension

    def test_a_duplicated_dimension_closes_the_gap_of_its_factor(self, codes, factors):
        per_factor = mig(codes["duplicated"], factors)["per_factor"]
        assert per_factor[0] == pytest.approx(0.0, abs=0.02)
        assert min(per_factor[1:]) > 0.9

    def test_invariant_to_permuting_and_rescaling_dimensions(self, codes, factors):
        code = codes["rotated"]
        base = mig(code, factors)["mig"]
        permuted = code[:, [3, 1, 0, 2]]
        rescaled = code * np.array([1000.0, 1.0, 0.01, 7.0]) + 5.0
        assert mig(permuted, factors)["mig"] == pytest.approx(base, abs=1e-9)
        assert mig(rescaled, factors)["mig"] == pytest.approx(base, abs=1e-6)

    def test_a_constant_factor_is_left_out_of_the_mean(self, codes, factors):
        with_constant = np.c_[factors, np.zeros(N, dtype=int)]
        result = mig(codes["rotated"], with_constant)
        assert math.isnan(result["per_factor"][-1]) and result["top_dim_per_factor"][-1] == -1
        assert result["mig"] == pytest.approx(np.mean(result["per_factor"][:-1]))

    def test_a_one_dimensional_code_scores_its_information_over_the_entropy(self, codes, factors):
        result = mig(codes["copy"][:, 2], factors)
        h = factor_entropies(factors)
        np.testing.assert_allclose(result["per_factor"], np.array(result["mi"])[0] / h)
        assert result["per_factor"][2] == pytest.approx(1.0)

    def test_needs_matching_rows(self, codes, factors):
        with pytest.raises(ValueError, match="factor row"):
            mig(codes["copy"][:10], factors)


class TestDCI:
    def test_aggregation_against_a_hand_computed_importance_matrix(self):
        r = np.array([[0.5, 0.5], [1.0, 0.0]])  # dim 0 splits between both factors, dim 1 serves factor 0 only
        # ρ = (1/2, 1/2); H_2 of the rows: 1 and 0 -> D = 1/2 * (1 - 1) + 1/2 * (1 - 0)
        assert _disentanglement(r) == pytest.approx(0.5)
        # columns normalised: (1/3, 2/3) and (1, 0) -> C = mean(1 - H_2(1/3, 2/3), 1)
        h = -(1 / 3 * math.log2(1 / 3) + 2 / 3 * math.log2(2 / 3))
        assert _completeness(r) == pytest.approx(((1 - h) + 1) / 2)

    def test_a_copy_of_the_factors_scores_near_one(self, dci_scores):
        s = dci_scores["copy"]
        assert s["disentanglement"] > 0.9 and s["completeness"] > 0.9 and s["informativeness"] > 0.95
        assert np.argmax(np.array(s["importance"]), axis=0).tolist() == [0, 1, 2, 3]

    def test_a_code_independent_of_the_factors_scores_near_zero(self, dci_scores):
        s = dci_scores["random"]
        assert s["disentanglement"] < 0.2 and s["completeness"] < 0.2
        assert s["informativeness"] < 0.5  # chance level: 1/3, 1/6, 1/10, 1/8

    def test_mixing_two_factors_scores_lower_than_the_copy(self, dci_scores):
        assert dci_scores["rotated"]["disentanglement"] < dci_scores["copy"]["disentanglement"] - 0.1

    def test_a_duplicated_dimension_lowers_completeness_only(self, dci_scores):
        dup, copy = dci_scores["duplicated"], dci_scores["copy"]
        assert dup["completeness"] < copy["completeness"] - 0.05
        assert dup["disentanglement"] > 0.9  # each dimension still serves one factor
        r = np.array(dup["importance"])
        assert r[0, 0] > 0.2 and r[4, 0] > 0.2  # factor 0's importance is shared by its two copies

    def test_deterministic_for_a_seed_and_subsampled(self, codes, factors):
        a = dci(codes["rotated"], factors, n_estimators=5, max_samples=500, seed=3)
        b = dci(codes["rotated"], factors, n_estimators=5, max_samples=500, seed=3)
        assert a == b
        assert np.array(a["importance"]).shape == (len(SIZES), len(SIZES))

    def test_a_constant_factor_gets_a_zero_column(self, codes, factors):
        s = dci(codes["copy"], np.c_[factors, np.full(N, 2)], n_estimators=5, max_samples=1000)
        r = np.array(s["importance"])
        assert r.shape == (len(SIZES), len(SIZES) + 1) and (r[:, -1] == 0).all()
        assert s["completeness"] > 0.9
        assert s["accuracy"][-1] is None and s["chance"][-1] == 1.0

    def test_per_factor_accuracy_is_what_the_code_knows_against_chance(self, codes, factors):
        # A code that keeps factors 0 and 2 (copied) and drops 1 and 3 (noise in their place).
        rng = np.random.default_rng(7)
        partial = np.c_[codes["copy"][:, 0], rng.normal(size=N), codes["copy"][:, 2], rng.normal(size=N)]
        s = dci(partial, factors, n_estimators=10, max_samples=2000, seed=0)
        assert len(s["accuracy"]) == len(s["chance"]) == len(SIZES)
        assert s["informativeness"] == pytest.approx(np.mean(s["accuracy"]))
        for k in (0, 2):
            assert s["accuracy"][k] > 0.95
        for k in (1, 3):  # a forest on noise guesses: within a few points of always saying the commonest value
            assert abs(s["accuracy"][k] - s["chance"][k]) < 0.1
        # chance is the held-out share of the training part's commonest value: about 1/size for uniform factors
        for k, size in enumerate(SIZES):
            assert s["chance"][k] == pytest.approx(1 / size, abs=0.08)


class TestLabels:
    def test_each_dimension_is_labelled_with_its_most_informative_factor(self, codes, factors):
        result = mig(codes["copy"], factors)
        labels = most_informative_factor(np.array(result["mi"]), ["a", "b", "c", "d"], result["entropies"])
        assert [name for name, _ in labels] == ["a", "b", "c", "d"]
        assert all(v == pytest.approx(1.0) for _, v in labels)

    def test_normalisation_ranks_by_the_share_of_each_factor(self):
        mi = np.array([[0.5, 0.6]])  # raw: factor b wins; as a share of H = (0.5, 3.0): factor a wins
        assert most_informative_factor(mi, ["a", "b"])[0][0] == "b"
        assert most_informative_factor(mi, ["a", "b"], np.array([0.5, 3.0]))[0] == ("a", pytest.approx(1.0))


class TestFactorRows:
    def test_a_disentangled_code_gives_every_factor_its_own_row(self, codes, factors):
        result = mig(codes["copy"], factors)
        rows = factor_rows(result["mi"], result["entropies"], ["a", "b", "c", "d"])
        assert [(r["factor"], r["dim"], r["own_row"]) for r in rows] == [("a", 0, True), ("b", 1, True),
                                                                           ("c", 2, True), ("d", 3, True)]
        assert all(r["nmi"] == pytest.approx(1.0) for r in rows)

    def test_a_code_independent_of_the_factors_gives_none(self, codes, factors):
        result = mig(codes["random"], factors)
        assert not any(r["own_row"] for r in factor_rows(result["mi"], result["entropies"], "abcd"))

    def test_a_row_is_owned_by_its_top_factor_only(self):
        # Dimension 0 knows 0.9 of factor a and 0.5 of b: its row is a's, so b has none although 0.5 >= 0.3.
        mi, h = np.array([[0.9, 0.5], [0.0, 0.1]]), np.array([1.0, 1.0])
        rows = factor_rows(mi, h, ["a", "b"])
        assert [(r["dim"], r["own_row"]) for r in rows] == [(0, True), (0, False)]
        assert rows[1]["nmi"] == pytest.approx(0.5)

    def test_the_threshold_is_a_share_of_each_factors_entropy(self):
        mi, h = np.array([[0.6, 0.0], [0.0, 0.6]]), np.array([1.0, 3.0])  # shares 0.6 and 0.2
        assert [r["own_row"] for r in factor_rows(mi, h, ["a", "b"])] == [True, False]
        assert [r["own_row"] for r in factor_rows(mi, h, ["a", "b"], threshold=0.1)] == [True, True]

    def test_a_constant_factor_has_no_row(self):
        rows = factor_rows(np.zeros((2, 1)), np.zeros(1), ["constant"])
        assert rows == [{"factor": "constant", "dim": 0, "nmi": 0.0, "own_row": False}]

    def test_mismatched_shapes_are_refused(self):
        with pytest.raises(ValueError, match="expected"):
            factor_rows(np.zeros((2, 3)), np.zeros(3), ["a", "b"])


@pytest.fixture(scope="module")
def shapes():
    from vae_core.data import load_data

    return load_data("shapes", seed=0)


class TestEvaluateModel:
    @pytest.mark.parametrize("kind, arch", [("vae", "mlp"), ("cvae", "conv"), ("ae", "mlp")])
    def test_runs_on_shapes_and_scores_in_unit_range(self, shapes, kind, arch):
        config = model_config_for(shapes.input_shape, shapes.num_classes, kind=kind, arch=arch, latent_dim=4,
                                  hidden=(64,), conv_channels=(8, 16), conv_fc=32)
        model = build_model(config, seed=0).train()
        result = evaluate_disentanglement(model, shapes.test, max_samples=1000)
        for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
            assert 0.0 <= result[key] <= 1.0, key
        assert np.array(result["mi"]).shape == (4, 5) and result["n_samples"] == 1000
        assert result["factor_names"] == list(shapes.test.factor_names)
        assert len(result["factor_per_dim"]) == 4 and all(0 <= v <= 1 for _, v in result["factor_per_dim"])
        assert model.training  # the caller's mode is restored

    def test_a_data_set_without_factors_is_refused(self, digits):
        model = build_model(model_config_for(digits.input_shape, digits.num_classes, hidden=(16,)), seed=0)
        with pytest.raises(ValueError, match="shapes"):
            evaluate_disentanglement(model, digits.test)
        with pytest.raises(ValueError, match="shapes"):
            mutual_information(model, digits.test)

    def test_the_mutual_information_alone_is_evaluates_own(self, shapes):
        """The lab's heat map reads mutual_information: the same sample and numbers as evaluate_disentanglement."""
        config = model_config_for(shapes.input_shape, shapes.num_classes, latent_dim=3, hidden=(32,))
        model = build_model(config, seed=0)
        full = evaluate_disentanglement(model, shapes.test, max_samples=600, seed=2)
        alone = mutual_information(model, shapes.test, max_samples=600, seed=2)
        assert alone["mi"] == full["mi"] and alone["entropies"] == full["entropies"]
        assert alone["factor_names"] == full["factor_names"] and alone["n_samples"] == 600
        assert mutual_information(model, shapes.test, max_samples=600, seed=3)["mi"] != alone["mi"]  # the seed picks


# -- inactive dimensions, for the Disentanglement lab ---------------------------------------------------------------
class TestInactive:
    def test_below_the_threshold_is_inactive(self):
        assert inactive_dimensions([0.0, 0.003, INACTIVE_KL_NATS, 2.5]) == [True, True, False, False]

    def test_the_bundled_shapes_models_agree_with_their_active_units(self):
        from vae_core.zoo import list_zoo

        for card in list_zoo():
            if card["name"].startswith("shapes"):
                assert inactive_dimensions(card["kl_per_dim"]).count(False) == card["active_units"]

    def test_refuses_nan(self):
        with pytest.raises(ValueError):
            inactive_dimensions([0.1, float("nan")])
