"""Disentanglement of a learnt code against the ground-truth factors of a data set (shapes).

Two standard scores, both in [0, 1], higher = more disentangled:

* MIG, the Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", eq. 6):
  for each factor, how much more the most informative code dimension knows about it than the runner-up.
* DCI (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
  Representations"): Disentanglement, Completeness and Informativeness read off the feature importances of
  one tree ensemble per factor.

Mutual information is estimated as in disentanglement_lib (Locatello et al. 2019): each code dimension is cut
into equal-width histogram bins and the plug-in MI of the resulting contingency table is taken, in nats.
Plug-in MI is biased upwards by about (bins - 1)(values - 1) / (2N) nats, so use thousands of samples; and a
factor with more values than bins (shapes' orientation has 40, its positions 32, against 20 bins) cannot be
fully captured by any one dimension, which caps its MIG below 1 even for a perfect code.

    codes, factors = ..., dataset.factors.numpy()   # (N, D) floats, (N, K) ints
    mig(codes, factors)["mig"], dci(codes, factors)["disentanglement"]
    evaluate_disentanglement(model, split.test)     # encodes the images first
    mutual_information(model, split.test)           # the (D, K) MI alone, on the same sample: no DCI
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import mutual_info_score

from vae_core.latent import encode_dataset


NO_FACTORS_MESSAGE = "disentanglement needs ground-truth factors: use the shapes data set"


# -- mutual information ----------------------------------------------------------------------------------------


def discretize(codes: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """(N, D) real codes -> (N, D) int bin indices in 0..n_bins-1, equal-width bins per dimension."""
    codes = _as_2d(codes, "codes").astype(np.float64)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        # disentanglement_lib's _histogram_discretize: digitize against the histogram's left edges, so the
        # maximum lands in the last bin rather than one past it. A constant dimension falls into one bin.
        edges = np.histogram_bin_edges(codes[:, d], bins=n_bins)
        out[:, d] = np.digitize(codes[:, d], edges[:-1]) - 1
    return out


def mutual_information_matrix(codes: np.ndarray, factors: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """(D, K) mutual information in nats between each discretised code dimension and each factor."""
    codes, factors = _check_pair(codes, factors)
    binned = discretize(codes, n_bins)
    mi = np.empty((codes.shape[1], factors.shape[1]))
    for d in range(codes.shape[1]):
        for k in range(factors.shape[1]):
            mi[d, k] = mutual_info_score(factors[:, k], binned[:, d])  # natural log: nats
    return np.maximum(mi, 0.0)  # clip the -1e-16 round-off of independent pairs


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    """(K,) entropy of each discrete factor's empirical distribution, in nats."""
    factors = _as_2d(factors, "factors")
    out = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        _, counts = np.unique(factors[:, k], return_counts=True)
        p = counts / counts.sum()
        out[k] = float(-(p * np.log(p)).sum())
    return out


# -- MIG -------------------------------------------------------------------------------------------------------


def mig(codes: np.ndarray, factors: np.ndarray, n_bins: int = 20) -> dict:
    """Mutual Information Gap (Chen et al. 2018, eq. 6) in [0, 1], with its per-factor parts.

        MIG = 1/K Σ_k (I(z_j*; v_k) - I(z_j°; v_k)) / H(v_k),   j* and j° the two dims most informative about v_k

    Factors that take a single value in the sample (zero entropy) are left out of the mean: their entry in
    "per_factor" is NaN and in "top_dim_per_factor" -1. With a 1-D code the gap is I(z; v_k) / H(v_k).
    Returns {"mig", "per_factor", "top_dim_per_factor", "mi" (D, K) nats, "entropies" (K,) nats}.
    """
    mi = mutual_information_matrix(codes, factors, n_bins)  # (D, K)
    entropy = factor_entropies(factors)  # (K,)
    varying = entropy > 0
    if not varying.any():
        raise ValueError("every factor takes a single value in this sample: MIG is undefined")
    top2 = -np.sort(-mi, axis=0)[:2]  # (2, K) largest and second largest MI per factor
    runner_up = top2[1] if len(top2) > 1 else np.zeros(mi.shape[1])
    gap = np.full(mi.shape[1], np.nan)
    gap[varying] = (top2[0, varying] - runner_up[varying]) / entropy[varying]
    top_dim = np.where(varying, np.argmax(mi, axis=0), -1)
    return {
        "mig": float(np.mean(gap[varying])),
        "per_factor": [float(g) for g in gap],
        "top_dim_per_factor": [int(d) for d in top_dim],
        "mi": mi.tolist(),
        "entropies": entropy.tolist(),
    }


# -- DCI -------------------------------------------------------------------------------------------------------


def dci(codes: np.ndarray, factors: np.ndarray, *, train_fraction: float = 0.8, seed: int = 0,
        n_estimators: int = 50, max_samples: int = 5000) -> dict:
    """DCI scores (Eastwood & Williams 2018), each in [0, 1], and the (D, K) importance matrix R.

    A random forest predicts each factor from the code; its feature importances give column k of R.
        disentanglement = Σ_d ρ_d (1 - H_K(P_d.)),  P_dk = R_dk / Σ_k R_dk,  ρ_d = Σ_k R_dk / Σ_dk R_dk
        completeness    = 1/K Σ_k (1 - H_D(P̃_.k)),  P̃_dk = R_dk / Σ_d R_dk
        informativeness = mean held-out accuracy of the K predictors            (E&W sec. 3; accuracy, not error)
    H_K and H_D are entropies with log base K and D. Factors constant in the training part are left out.
    The first max_samples examples of a seeded permutation are used, so a seed gives the same answer.
    Also per factor: "accuracy" (each predictor's held-out accuracy, None for a constant factor) and "chance"
    (always guessing the training part's commonest value): a factor near chance is not in the code at all.
    """
    codes, factors = _check_pair(codes, factors)
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(codes))[:max_samples]
    n_train = min(max(1, int(round(train_fraction * len(keep)))), len(keep) - 1)
    if n_train < 2:
        raise ValueError(f"DCI needs at least 3 examples, got {len(keep)}")
    train, test = keep[:n_train], keep[n_train:]

    importance = np.zeros((codes.shape[1], factors.shape[1]))  # R (D, K)
    varying = []
    accuracy: list[float | None] = [None] * factors.shape[1]
    chance: list[float] = []
    for k in range(factors.shape[1]):
        values, counts = np.unique(factors[train, k], return_counts=True)
        chance.append(float(np.mean(factors[test, k] == values[np.argmax(counts)])))
        if len(values) < 2:
            continue  # nothing to predict: no importances, and a trivially perfect accuracy
        forest = _forest(n_estimators, seed).fit(codes[train], factors[train, k])
        importance[:, k] = forest.feature_importances_  # (D,), sums to 1 (sklearn normalises per forest)
        accuracy[k] = float(forest.score(codes[test], factors[test, k]))
        varying.append(k)
    if not varying:
        raise ValueError("every factor takes a single value in this sample: DCI is undefined")
    r = importance[:, varying]
    return {
        "disentanglement": _disentanglement(r),
        "completeness": _completeness(r),
        "informativeness": float(np.mean([accuracy[k] for k in varying])),
        "importance": importance.tolist(),  # constant factors keep a zero column
        "accuracy": accuracy,
        "chance": chance,
    }


def _forest(n_estimators: int, seed: int) -> RandomForestClassifier:
    """The per-factor predictor whose impurity-based importances fill R."""
    # A random forest rather than disentanglement_lib's gradient-boosted trees: boosting grows one tree per
    # class per stage, so shapes' 40-valued orientation alone costs 40 x n_estimators trees (minutes on two
    # CPU cores), while a forest grows n_estimators multi-class trees and gives the same kind of importance
    # (mean impurity decrease). Eastwood & Williams's own experiments used the lasso and random forests.
    # Every dimension is a split candidate at every node (max_features=None, i.e. bagged trees): with sklearn's
    # default of sqrt(D) candidates, a node that happens not to be offered the informative dimension splits on
    # an irrelevant one, leaking ~10% of the importance to it and capping a perfect code's D and C near 0.88.
    # min_samples_leaf limits splits on irrelevant dimensions made only to memorise the last few noisy
    # examples, for the same reason; n_jobs=1 because the cores are shared.
    return RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=5, max_features=None,
                                  random_state=seed, n_jobs=1)


def _entropy(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    """Entropy of distributions along `axis` with log base `base` (0 log 0 = 0); base 1 gives 0."""
    if base < 2:
        return np.zeros(np.delete(p.shape, axis))  # one outcome: no uncertainty
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=axis) / np.log(base)


def _disentanglement(importance: np.ndarray) -> float:
    """Σ_d ρ_d (1 - H_K(P_d.)): does each code dimension capture at most one factor? (E&W sec. 3)"""
    d_total = importance.sum(axis=1)  # (D,)
    if d_total.sum() <= 0:
        return 0.0
    rho = d_total / d_total.sum()
    p = importance / np.where(d_total > 0, d_total, 1.0)[:, None]  # rows of unused dims stay 0 and get ρ = 0
    return float(np.sum(rho * (1.0 - _entropy(p, importance.shape[1], axis=1))))


def _completeness(importance: np.ndarray) -> float:
    """1/K Σ_k (1 - H_D(P̃_.k)): is each factor captured by a single code dimension? (E&W sec. 3)"""
    k_total = importance.sum(axis=0)  # (K,)
    p = importance / np.where(k_total > 0, k_total, 1.0)[None, :]
    per_factor = 1.0 - _entropy(p, importance.shape[0], axis=0)
    per_factor[k_total <= 0] = 0.0  # a forest that never split: no dimension captures the factor
    return float(np.mean(per_factor))


# -- labelling and the model-level entry point ----------------------------------------------------------------


def normalised_mi(mi, entropies) -> np.ndarray:
    """(D, K) normalised mutual information I(z_d; v_k) / H(v_k) in [0, 1] from the (D, K) MI matrix and the (K,)
    factor entropies, both in nats (mig's "mi" and "entropies"); a constant factor (H = 0) scores 0 rather than 0/0.
    Clipped to [0, 1]: the plug-in MI of a sample never exceeds its factor's entropy but for round-off."""
    mi, entropies = np.asarray(mi, dtype=np.float64), np.asarray(entropies, dtype=np.float64)
    if mi.ndim != 2 or entropies.shape != (mi.shape[1],):
        raise ValueError(f"mi has shape {mi.shape} and entropies {entropies.shape}: expected (D, K) and (K,)")
    safe = np.where(entropies > 0, entropies, 1.0)
    return np.clip(np.where(entropies[None, :] > 0, mi / safe[None, :], 0.0), 0.0, 1.0)


def most_informative_factor(mi: np.ndarray, factor_names: Sequence[str],
                            entropies: np.ndarray | None = None) -> list[tuple[str, float]]:
    """For each code dimension: (the factor it shares most information with, MI / H(factor) in [0, 1]).

    Pass the factors' entropies (nats; `mig(...)["entropies"]`) to get the normalised MI the labels are meant
    to show, and to rank factors by it. Without them the number is the raw MI in nats.
    """
    mi = np.asarray(mi, dtype=np.float64)
    if mi.ndim != 2 or mi.shape[1] != len(factor_names):
        raise ValueError(f"mi has shape {mi.shape}; expected (D, {len(factor_names)}), one column per factor name")
    if entropies is not None:
        mi = normalised_mi(mi, entropies)
    best = np.argmax(mi, axis=1)
    return [(str(factor_names[k]), float(mi[d, k])) for d, k in enumerate(best)]


OWN_ROW_NMI = 0.3  # a traversal row visibly follows a factor from about this share of its entropy up


def factor_rows(mi: np.ndarray, entropies: np.ndarray, factor_names: Sequence[str],
                threshold: float = OWN_ROW_NMI) -> list[dict]:
    """For each factor: the dimension that knows most about it and whether that dimension is its own row.

    A factor has its own row when its best dimension tells most about it of all factors (so the traversal row
    is labelled with it) and removes at least `threshold` of its entropy (mi (D, K) nats, entropies (K,) nats).
    Returns [{"factor", "dim", "nmi", "own_row"}] in the order of factor_names: what the lab reports as the
    factors a model has pulled apart and those still spread over its dimensions.
    """
    nmi = normalised_mi(mi, entropies)  # (D, K)
    if nmi.shape[1] != len(factor_names):
        raise ValueError(f"mi has {nmi.shape[1]} factor columns; expected one per factor name ({len(factor_names)})")
    row_factor = np.argmax(nmi, axis=1)  # (D,) the factor each row is labelled with
    rows = []
    for k, name in enumerate(factor_names):
        dim = int(np.argmax(nmi[:, k]))
        rows.append({"factor": str(name), "dim": dim, "nmi": float(nmi[dim, k]),
                     "own_row": bool(row_factor[dim] == k and nmi[dim, k] >= threshold)})
    return rows


def _encoded_sample(model, dataset, max_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, tuple, int]:
    """(codes (N, D) posterior means, factors (N, K) ints, factor names, N) of a seeded subsample of max_samples
    images (for a CVAE encoded with its labels dataset.y): the one sample every score of a model is measured on."""
    factors = getattr(dataset, "factors", None)
    if factors is None:
        raise ValueError(NO_FACTORS_MESSAGE)
    if max_samples < 3:
        raise ValueError(f"max_samples must be >= 3, got {max_samples}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:max_samples])
    idx = torch.from_numpy(keep)
    labels = dataset.y[idx] if dataset.y is not None else None
    codes = encode_dataset(model, dataset.x[idx], labels).mu.double().numpy()  # (N, D) posterior means
    factors = np.asarray(factors[idx].cpu().numpy(), dtype=np.int64)
    names = tuple(dataset.factor_names) or tuple(f"factor {k}" for k in range(factors.shape[1]))
    return codes, factors, names, int(len(keep))


def mutual_information(model, dataset, *, max_samples: int = 5000, seed: int = 0) -> dict:
    """The (D, K) mutual information between each code dimension and each factor, without the costlier DCI: the
    same sample and numbers as evaluate_disentanglement's "mi" and "entropies" for the same max_samples and seed.
    Returns {"mi" (D, K) nats, "entropies" (K,) nats, "factor_names", "n_samples"}."""
    codes, factors, names, n = _encoded_sample(model, dataset, max_samples, seed)
    return {"mi": mutual_information_matrix(codes, factors).tolist(), "entropies": factor_entropies(factors).tolist(),
            "factor_names": list(names), "n_samples": n}


def evaluate_disentanglement(model, dataset, *, max_samples: int = 5000, seed: int = 0) -> dict:
    """MIG and DCI of a model's posterior means on a data set with ground-truth factors (e.g. shapes).

    A seeded subsample of max_samples images is encoded (for a CVAE with its labels dataset.y).
    Returns {"mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factor_accuracy" and
    "factor_chance" (K,) (dci's per-factor "accuracy" and "chance"), "mi" (D, K) nats,
    "entropies" (K,) nats, "factor_per_dim" [(factor name, MI / H)] per dim, "factor_names", "n_samples"}.
    """
    codes, factors, names, n = _encoded_sample(model, dataset, max_samples, seed)
    gap = mig(codes, factors)
    scores = dci(codes, factors, seed=seed, max_samples=max_samples)
    return {
        "mig": gap["mig"],
        "dci_disentanglement": scores["disentanglement"],
        "dci_completeness": scores["completeness"],
        "dci_informativeness": scores["informativeness"],
        "factor_accuracy": scores["accuracy"],
        "factor_chance": scores["chance"],
        "mi": gap["mi"],
        "entropies": gap["entropies"],
        "factor_per_dim": most_informative_factor(np.array(gap["mi"]), names, np.array(gap["entropies"])),
        "factor_names": list(names),
        "n_samples": n,
    }


# -- checks ----------------------------------------------------------------------------------------------------


def _as_2d(a, what: str) -> np.ndarray:
    """An (N,) or (N, D) array-like (numpy or torch) as a 2-D numpy array."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} has shape {a.shape}; expected a non-empty (N, D) array")
    return a


def _check_pair(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    """Codes as (N, D) float64 and factors as (N, K) ints, with the same N and finite codes."""
    codes = _as_2d(codes, "codes").astype(np.float64)
    factors = _as_2d(factors, "factors")
    if len(codes) != len(factors):
        raise ValueError(f"{len(codes)} codes but {len(factors)} factor rows: give one factor row per code")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or inf (a diverged model?): cannot score them")
    return codes, factors


# -- for the app's disentanglement lab ------------------------------------------------------------------------------

INACTIVE_KL_NATS = 0.1  # a dimension whose average KL is below this carries (almost) nothing: its traversal is flat


def inactive_dimensions(kl_per_dim: Sequence[float], threshold: float = INACTIVE_KL_NATS) -> list[bool]:
    """For each latent dimension, whether it is inactive: its test KL (nats per example) is below `threshold`,
    so the posterior is the prior whatever the input and the decoder ignores it."""
    kl = np.asarray(kl_per_dim, dtype=np.float64).ravel()
    if not np.isfinite(kl).all():
        raise ValueError("KL per dimension contains NaN or inf")
    return [bool(v < threshold) for v in kl]
