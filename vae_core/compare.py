"""Side-by-side numbers for the "AE, VAE, β-VAE and WAE" page: how good each model's random samples are, the same
interpolation through each model, and where each model sits on the rate-distortion plane.

    q = sample_quality(model, data.train.x, n=512, seed=0, train_y=data.train.y, test_x=data.test.x)
    v = compare_quality(q_ae, q_vae)              # which one's samples are worse, measure by measure
    r = rank_models([q_ae, q_vae, q_beta, q_wae])  # every model's place by each measure, best first
    pts = rate_distortion_points({name: entry.card for ...})

How "worse samples" is measured, and why. A plain autoencoder is not trained to put its codes where the prior
N(0, I) puts its draws, so random codes land only in part of its map. The images it decodes there are not
necessarily blurry one by one; what goes wrong is *which* images come out. So three numbers, all in pixel space
(no model scores its own samples: an AE's "ELBO" is its reconstruction error alone, and any decoder reconstructs
its own outputs well, so a self-score flatters the AE):

    nearest_train    mean distance from a sample to its nearest training image: is each sample a plausible image?
    coverage         mean distance from a test image to its nearest sample: do the samples cover the real images?
    class_mix_gap    the samples' class mix (each sample takes its nearest training image's class) against the
                     training set's: the share of samples that would have to change class for the mixes to match
                     (total variation distance); None when the data has fewer than two classes.

For each of them lower is better. Distances are Euclidean over pixel values in [0, 1].

On MNIST digits a better judge exists: the sample-quality classifier shipped with the zoo (vae_core.judge), a
digit classifier trained on real MNIST that no model being compared has seen. `judged_quality` asks it two things,
the MNIST convention for generative models, and the page's verdict then rests on them alone:

    recognised       the share of samples the classifier calls one digit with probability >= 0.9 (higher is better)
    fid              the Fréchet distance between the classifier's features of the samples and of real test digits
                     (lower is better): it grows when samples look unlike real digits and when they lack variety.

Both are measured on JUDGE_SAMPLES prior draws (seed 0) against JUDGE_REAL test images (real_digits: a seeded random
subset, as the zoo's cards use, since MNIST's test set is ordered by writer group): 2,000 of each, so that another
seed moves the share recognised by under 3 points (at 1,000 it moved by up to 7, as much as the gap between the
bundled MNIST AE and VAE). real_reference scores as many real training digits the same way: the floor a perfect
generator would reach.
"""
from __future__ import annotations

import math

import torch

from vae_core import judge as judge_module
from vae_core.latent import decode, encode_dataset, interpolate, nearest_neighbours, sample_prior

MEASURES = ("nearest_train", "coverage", "class_mix_gap")  # pixel measures: lower is better
JUDGE_MEASURES = ("recognised", "fid")  # the digit classifier's: recognised higher is better, fid lower
HIGHER_IS_BETTER = {"recognised"}
SHARES = {"class_mix_gap", "recognised"}  # shares in [0, 1]: "about the same" within SAME_SHARE points
JUDGE_SAMPLES = 2000  # prior draws the classifier judges
JUDGE_REAL = 2000  # real test digits the samples are measured against (real_digits)
# Differences smaller than these are called "about the same": they are within what another seed of the prior
# draws changes. Measured on the bundled digits AE and VAE, 512 samples, seeds 0-4: the mean distances move by up to
# 3.8% between seeds, the class mix gap by up to 5 points.
SAME_RELATIVE = 0.04
SAME_SHARE = 0.05
# The classifier's measures, on the bundled MNIST AE, VAE and β-VAE, 2,000 samples, seeds 0-4: the share recognised
# moves by up to 2.9 points (SAME_SHARE holds for it too), the FID by up to 5.6%; the AE-VAE gaps were 6.5-11 points
# and FID x1.26-1.34 on every seed.
SAME_FID_RELATIVE = 0.10
MAX_COVERAGE_QUERIES = 1000  # test images used for the coverage: plenty for a mean, bounded for big data sets


def _nearest_distance(query: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index (M,), distance (M,)) of each query image's nearest reference image."""
    index, dist = nearest_neighbours(query, reference, k=1)
    return index[:, 0], dist[:, 0]


def class_mix_gap(sample_classes: torch.Tensor, reference_classes: torch.Tensor, num_classes: int) -> float:
    """Total variation distance between two class mixes: half the summed absolute difference of the class shares,
    i.e. the share of the first set that would have to change class for the mixes to be the same."""
    a = torch.bincount(sample_classes.long(), minlength=num_classes).double()
    b = torch.bincount(reference_classes.long(), minlength=num_classes).double()
    return float(0.5 * (a / a.sum() - b / b.sum()).abs().sum())


def _sample_labels(model, n: int) -> torch.Tensor | None:
    """A CVAE must be told a class: every class in turn, so its draws cover the classes evenly."""
    if not model.config.is_conditional:
        return None
    return torch.arange(n) % model.config.num_classes


def prior_samples(model, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(z (n, D), images (n, C, H, W)): n draws from N(0, I), seeded (models with the same latent size get the
    same draws), decoded; a CVAE's draws cycle through its classes."""
    return sample_prior(model, n, seed=seed, y=_sample_labels(model, n))


def sample_quality(model, train_x: torch.Tensor, n: int = 512, seed: int = 0, *, train_y: torch.Tensor | None = None,
                   test_x: torch.Tensor | None = None) -> dict:
    """How good n prior samples of the model are, by the measures of the module docstring (lower is better).

    Returns: measures (MEASURES), n, seed; nearest_train (mean), nearest_train_each (n,); coverage (mean; None
    without test_x); class_mix_gap, class_share (K,) of the samples, top_class and top_share (None without
    train_y, or with fewer than two classes)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _, images = prior_samples(model, n, seed)
    index, dist = _nearest_distance(images, train_x)
    out = {"measures": MEASURES, "n": n, "seed": seed, "nearest_train": float(dist.double().mean()),
           "nearest_train_each": dist, "coverage": None, "class_mix_gap": None, "class_share": None,
           "top_class": None, "top_share": None}
    if test_x is not None and len(test_x):
        queries = test_x
        if len(test_x) > MAX_COVERAGE_QUERIES:  # a fixed, seeded subset: the same for every model compared
            rows = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(0))[:MAX_COVERAGE_QUERIES]
            queries = test_x[rows]
        out["coverage"] = float(_nearest_distance(queries, images)[1].double().mean())
    if train_y is not None:
        k = int(train_y.max()) + 1 if len(train_y) else 0
        if k >= 2:
            classes = train_y[index]
            share = torch.bincount(classes.long(), minlength=k).double() / n
            out.update(class_mix_gap=class_mix_gap(classes, train_y, k), class_share=share,
                       top_class=int(share.argmax()), top_share=float(share.max()))
    return out


def judge_applies(data) -> bool:
    """Whether the shipped digit classifier can judge samples of models trained on `data` (a DataSplit): MNIST's
    28x28 grey digits. Other data (even 28x28 grey, such as Fashion-MNIST) keeps the pixel measures."""
    return str(getattr(data, "name", "")) == "mnist" and judge_module.fits(data.input_shape)


def _top(share: torch.Tensor) -> dict:
    return {"class_share": share, "top_class": int(share.argmax()), "top_share": float(share.max())}


def real_digits(test_x: torch.Tensor, n: int = JUDGE_REAL) -> torch.Tensor:
    """The real images samples are judged against: a seeded random subset of n test images (vae_core.judge's
    real_subset, seed 0, as the zoo's cards use)."""
    return judge_module.real_subset(test_x, n, seed=0)


def real_features(classifier, real_x: torch.Tensor) -> torch.Tensor:
    """The classifier's features (M, 128) of real images: compute them once, judge many models against them."""
    return judge_module.classify(classifier, real_x)[1]


def judged_quality(model, classifier, real_x: torch.Tensor | None = None, n: int = JUDGE_SAMPLES, seed: int = 0, *,
                   images: torch.Tensor | None = None, real_feats: torch.Tensor | None = None) -> dict:
    """The digit classifier's verdict (see the module docstring) on n prior samples of the model (seeded; pass
    `images` to judge ones already drawn) against the real images real_x (M, 1, 28, 28), or their features
    real_feats (real_features). The numbers are vae_core.judge.judge_samples's.

    Returns: measures (JUDGE_MEASURES), n, seed, recognised (share), fid, class_share (10,) of the classifier's
    calls, top_class, top_share. Raises ValueError for images the classifier cannot read (not 1x28x28)."""
    if images is None:
        if n < 2:
            raise ValueError(f"n must be >= 2 (a Fréchet distance needs two samples), got {n}")
        _, images = prior_samples(model, n, seed)
    if real_feats is None:
        if real_x is None:
            raise ValueError("give the real images or their features")
        real_feats = real_features(classifier, real_x)
    if len(images) < 2 or len(real_feats) < 2:
        raise ValueError("the Fréchet distance needs at least two samples and two real images")
    probs, feats = judge_module.classify(classifier, images)
    top = probs.max(1)
    share = torch.bincount(top.indices, minlength=probs.shape[1]).double() / len(images)
    return {"measures": JUDGE_MEASURES, "n": len(images), "seed": seed,
            "recognised": float((top.values >= judge_module.CONFIDENT).double().mean()),
            "fid": judge_module.frechet_distance(feats.numpy(), real_feats.numpy()), **_top(share)}


def real_reference(classifier, train_x: torch.Tensor, real_x: torch.Tensor | None = None, n: int = JUDGE_REAL, *,
                   real_feats: torch.Tensor | None = None) -> dict:
    """Real digits judged like samples: n real training digits (a seeded subset, seed 1, as the classifier's card
    draws them) against the real test digits real_x (or their features real_feats). The scale to read samples'
    numbers on: what a perfect generator would score at this n."""
    return judged_quality(None, classifier, real_x, images=judge_module.real_subset(train_x, n, seed=1),
                          real_feats=real_feats)


def _which_worse(measure: str, a: float | None, b: float | None) -> str | None:
    """"a", "b", "same" (within the noise of another seed), or None when a number is missing."""
    if a is None or b is None:
        return None
    if measure in SHARES:
        close = abs(a - b) < SAME_SHARE
    else:
        limit = SAME_FID_RELATIVE if measure == "fid" else SAME_RELATIVE
        close = abs(a - b) <= limit * max(abs(a), abs(b))
    if close:
        return "same"
    if measure in HIGHER_IS_BETTER:
        return "a" if a < b else "b"
    return "a" if a > b else "b"


def compare_quality(a: dict, b: dict) -> dict:
    """Measure by measure, whose samples are worse: {"measures": {name: {"a", "b", "worse", "ratio"}}, "worse":
    "a" | "b" | None}. The measures are the classifier's (JUDGE_MEASURES) when both were judged by it
    (judged_quality), else the pixel ones (MEASURES, sample_quality). Overall worse = worse on more measures than
    the other is (None on a tie, e.g. when every difference is within the noise)."""
    judged = a.get("measures") == JUDGE_MEASURES and b.get("measures") == JUDGE_MEASURES
    measures, votes = {}, {"a": 0, "b": 0}
    for m in (JUDGE_MEASURES if judged else MEASURES):
        va, vb = a.get(m), b.get(m)
        worse = _which_worse(m, va, vb)
        ratio = (va / vb) if worse and worse != "same" and vb else None
        measures[m] = {"a": va, "b": vb, "worse": worse, "ratio": ratio}
        if worse in votes:
            votes[worse] += 1
    overall = None if votes["a"] == votes["b"] else ("a" if votes["a"] > votes["b"] else "b")
    return {"measures": measures, "worse": overall, "judged": judged}


def rank_models(qualities: list[dict]) -> dict:
    """Every model's place by each measure, best first: {"measures": {measure: [model index, ...]}, "ties":
    {measure: [bool, ...]}, "agree": bool}. The measures are the classifier's when every model was judged by it,
    else the pixel ones (as compare_quality). ties[m][i] is True when the models at places i and i + 1 are within
    the noise of another seed on m ("about the same"); agree says whether every measure gives the same order.
    Models missing a measure's number are left out of that measure's order."""
    judged = bool(qualities) and all(q.get("measures") == JUDGE_MEASURES for q in qualities)
    orders, ties = {}, {}
    for m in (JUDGE_MEASURES if judged else MEASURES):
        have = [i for i, q in enumerate(qualities) if q.get(m) is not None]
        sign = -1.0 if m in HIGHER_IS_BETTER else 1.0
        order = sorted(have, key=lambda i: (sign * qualities[i][m], i))  # a stable order: equal numbers keep theirs
        orders[m] = order
        ties[m] = [_which_worse(m, qualities[a][m], qualities[b][m]) == "same" for a, b in zip(order, order[1:])]
    complete = [o for o in orders.values() if len(o) == len(qualities)]
    return {"measures": orders, "ties": ties, "agree": len({tuple(o) for o in complete}) <= 1,
            "judged": judged}


# -- interpolation ---------------------------------------------------------------------------------------------------
def interpolation_images(model, x0: torch.Tensor, x1: torch.Tensor, y0: int | None = None, y1: int | None = None,
                         steps: int = 8) -> torch.Tensor:
    """Images (steps, C, H, W) decoded along the straight line between the posterior means of images x0 and x1
    (C, H, W), both ends included. A CVAE is told y0 on the first half of the path and y1 on the second."""
    labels = None
    if model.config.is_conditional:
        if y0 is None or y1 is None:
            raise ValueError("a CVAE needs the labels y0 and y1 of both images")
        labels = torch.tensor([y0, y1])
    mu = encode_dataset(model, torch.stack([x0, x1]), labels).mu  # (2, D)
    path = interpolate(mu[0], mu[1], steps, "linear")  # (steps, D)
    y = None
    if labels is not None:
        y = torch.where(torch.arange(steps) < steps / 2, labels[0], labels[1])  # (steps,)
    return decode(model, path, y)


# -- the rate-distortion plane ---------------------------------------------------------------------------------------
def rate_distortion_points(cards: dict[str, dict]) -> list[dict]:
    """One point per model from its card's test numbers (nats per example): rate = test KL, distortion = test
    reconstruction, and the ELBO = -(rate + distortion). Cards without those numbers are skipped; the AE's and the
    WAE's points have rate None (no KL: the code is an exact point, so its rate is not a finite number)."""
    points = []
    for name, card in cards.items():
        recon, kl = (card or {}).get("test_recon"), (card or {}).get("test_kl")
        kind = ((card or {}).get("config") or {}).get("kind") or (card or {}).get("kind")
        deterministic = kind in ("ae", "wae")  # no posterior: no KL (the WAE's card has none at all)
        if recon is None or not math.isfinite(recon) or (not deterministic and (kl is None or not math.isfinite(kl))):
            continue
        rate = None if deterministic else float(kl)
        points.append({"name": name, "kind": kind, "rate": rate, "distortion": float(recon),
                       "elbo": None if rate is None else -(rate + float(recon)),
                       "beta": (card.get("config") or {}).get("beta")})
    return points


def iso_elbo_levels(points: list[dict], count: int = 5) -> list[float]:
    """About `count` round values c of -ELBO (nats) for the dashed lines rate + distortion = c, spanning the
    points' own -ELBO values with a step of 1, 2 or 5 times a power of ten."""
    values = [p["rate"] + p["distortion"] for p in points if p.get("rate") is not None]
    if not values:
        return []
    lo, hi = min(values), max(values)
    span = max(hi - lo, 1e-9)
    raw = span / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 5, 10) if s * power >= raw)
    start = math.floor(lo / step) * step
    levels = []
    value = start
    while value <= hi + step + 1e-9:
        levels.append(round(value, 10))
        value += step
    return levels


def shared_extent(extents: list[tuple[float, float, float, float]], *, square: bool = False
                  ) -> tuple[float, float, float, float]:
    """The smallest (x0, x1, y0, y1) that holds every extent: shared axes for side-by-side maps. With square, the
    shorter side is widened about its centre to the longer one, so a map drawn at equal scale fills a square plot."""
    if not extents:
        raise ValueError("no extents to share")
    x0, x1 = min(e[0] for e in extents), max(e[1] for e in extents)
    y0, y1 = min(e[2] for e in extents), max(e[3] for e in extents)
    if square:
        half = max(x1 - x0, y1 - y0) / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        x0, x1, y0, y1 = cx - half, cx + half, cy - half, cy + half
    return x0, x1, y0, y1


__all__ = ["MEASURES", "JUDGE_MEASURES", "JUDGE_SAMPLES", "JUDGE_REAL", "SAME_RELATIVE", "SAME_SHARE",
           "SAME_FID_RELATIVE", "class_mix_gap", "prior_samples", "sample_quality", "judge_applies", "judged_quality",
           "real_digits", "real_features", "real_reference", "compare_quality", "rank_models", "interpolation_images",
           "rate_distortion_points", "iso_elbo_levels", "shared_extent"]
