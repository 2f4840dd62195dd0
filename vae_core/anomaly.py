"""Anomaly (out-of-distribution) scores from a trained model, and how well they separate two sets.

A VAE trained on one kind of image gives other kinds a poor bound on log p(x): the negative ELBO, in nats,
is a natural anomaly score (An & Cho 2015, "Variational Autoencoder based Anomaly Detection using
Reconstruction Probability"). How well a score separates in-distribution from out-of-distribution inputs is
summarised by the area under the ROC curve, with "out" as the positive class: 0.5 is chance, 1 is perfect.

    s_in = anomaly_scores(model, split.test.x)
    s_out = anomaly_scores(model, resize_images(other.test.x, model.config.input_shape))
    auroc(s_in, s_out)

Beware that likelihood-based scores can rank simpler images as *more* likely than the training data
(Nalisnick et al. 2019, "Do Deep Generative Models Know What They Don't Know?"): check the AUROC, not the idea.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics

from vae_core.losses import elbo_terms, reconstruction_nll

SCORES = ("neg_elbo", "recon")
TRANSFORMS = ("invert", "rotate90", "flip", "noise", "shuffle_pixels")
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B, as in PIL's convert("L")
NOISE_STD = 0.3  # std of the gaussian noise of the "noise" transform, in pixel units ([0, 1] images)


# -- scores ----------------------------------------------------------------------------------------------------


@torch.no_grad()
def anomaly_scores(model, x: torch.Tensor, y: torch.Tensor | None = None, *, score: str = "neg_elbo",
                   n_samples: int = 1, seed: int = 0, batch_size: int = 1024) -> np.ndarray:
    """(N,) anomaly score per image in nats, higher = more anomalous.

    "neg_elbo": -ELBO = recon NLL + analytic KL (K&W 2014, eq. 3), the recon averaged over n_samples posterior
                samples drawn with a generator seeded by `seed` (for the AE the KL is 0 and the code fixed).
    "recon":    -log p(x | z = posterior mean), deterministic.
    A CVAE needs the labels y; other models ignore them.
    """
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}: use one of {', '.join(SCORES)}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    _check_input(model, x)
    conditional = model.config.is_conditional
    if conditional and (y is None or len(y) != len(x)):
        raise ValueError("a CVAE scores an image given its class: pass one label y per image")
    was_training = model.training
    model.eval()
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    n_samples = n_samples if model.config.is_variational else 1  # the AE's code is deterministic
    out = []
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device) if conditional else None
            if score == "neg_elbo":
                out.append(_neg_elbo(model, xb, yb, n_samples, generator))
            else:
                out.append(_recon_at_mean(model, xb, yb))
    finally:
        model.train(was_training)
    return torch.cat(out).double().cpu().numpy()


def _neg_elbo(model, x: torch.Tensor, y: torch.Tensor | None, n_samples: int,
              generator: torch.Generator) -> torch.Tensor:
    """-ELBO per example (B,), nats: the n_samples one-sample estimates of losses.elbo_terms, averaged."""
    # The same code path as training and evaluate_elbo, so the score is exactly the reported bound.
    total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for _ in range(n_samples):
        terms = elbo_terms(model, x, y, generator=generator)
        total += (terms.recon + terms.kl).double()
    return total / n_samples


def _recon_at_mean(model, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """-log p(x | z = mu(x)) per example (B,), nats: the reconstruction error of the posterior mean."""
    mu, _ = model.encode(x, y)
    log_sigma = model.log_sigma if model.log_sigma is not None else math.log(model.config.gaussian_sigma)
    return reconstruction_nll(model.decode(mu, y), x, model.config.likelihood, log_sigma)


def _check_input(model, x: torch.Tensor) -> None:
    """Refuse images the model cannot take, with the fix in the message."""
    expected = tuple(model.config.input_shape)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"images of shape {tuple(x.shape)} do not fit a model for {expected} inputs: "
            "bring them to the model's shape with resize_images(x, model.config.input_shape)"
        )
    if len(x) == 0:
        raise ValueError("no images to score")


# -- separating two sets ---------------------------------------------------------------------------------------


def _labelled(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) with out-of-distribution as the positive class 1."""
    s_in = np.asarray(scores_in, dtype=np.float64).ravel()
    s_out = np.asarray(scores_out, dtype=np.float64).ravel()
    if len(s_in) == 0 or len(s_out) == 0:
        raise ValueError("need at least one in-distribution and one out-of-distribution score")
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise ValueError("scores contain NaN or inf (a diverged model?): cannot rank them")
    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    return labels, np.r_[s_in, s_out]


def auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Area under the ROC curve, out-of-distribution positive: P(score_out > score_in) + ½ P(tie)."""
    return float(metrics.roc_auc_score(*_labelled(scores_in, scores_out)))


def roc_curve(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates, thresholds) of flagging score >= threshold (sklearn's rule)."""
    fpr, tpr, thresholds = metrics.roc_curve(*_labelled(scores_in, scores_out))
    return fpr, tpr, thresholds


def rates_at_threshold(scores_in: np.ndarray, scores_out: np.ndarray, threshold: float) -> tuple[float, float]:
    """(true positive rate on out, false positive rate on in) when flagging score > threshold."""
    labels, scores = _labelled(scores_in, scores_out)
    flagged = scores > threshold
    return float(flagged[labels == 1].mean()), float(flagged[labels == 0].mean())


def extremes(scores: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the k most anomalous (highest score first) and the k least anomalous (lowest first)."""
    scores = np.asarray(scores).ravel()
    k = max(0, min(k, len(scores)))
    # Stable sorts, so ties keep index order and the answer does not depend on the sort algorithm.
    most = np.argsort(-scores, kind="stable")[:k]
    least = np.argsort(scores, kind="stable")[:k]
    return most, least


# -- bringing other images to the model ------------------------------------------------------------------------


def resize_images(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] -> (N, C', H', W') in [0, 1], to score them with a model for other inputs.

    Channels: RGB -> grey by luminance (0.299, 0.587, 0.114), grey -> RGB by repeating.
    Size: area averaging when shrinking (each output pixel is the mean of the pixels it covers, no aliasing),
    bilinear when growing.
    """
    c_out, h_out, w_out = (int(v) for v in shape)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with 1 or 3 channels, got shape {tuple(x.shape)}")
    if c_out not in (1, 3) or h_out < 1 or w_out < 1:
        raise ValueError(f"target shape must be (1 or 3, H, W) with H, W >= 1, got {tuple(shape)}")
    x = x.float()
    if x.shape[1] == 3 and c_out == 1:  # convert before resizing: a third of the work, same result (both linear)
        weights = torch.tensor(LUMINANCE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * weights).sum(1, keepdim=True)
    x = _resize_spatial(x, h_out, w_out)
    if x.shape[1] == 1 and c_out == 3:
        x = x.repeat(1, 3, 1, 1)
    return x.clamp(0.0, 1.0)


def _resize_spatial(x: torch.Tensor, h_out: int, w_out: int) -> torch.Tensor:
    """Area down, bilinear up; a side shrinking while the other grows takes one step of each."""
    h, w = x.shape[2:]
    if (h_out, w_out) == (h, w):
        return x
    if h_out < h or w_out < w:
        x = F.interpolate(x, size=(min(h, h_out), min(w, w_out)), mode="area")
    if h_out > x.shape[2] or w_out > x.shape[3]:
        x = F.interpolate(x, size=(h_out, w_out), mode="bilinear", align_corners=False)
    return x


def transform_images(x: torch.Tensor, kind: str, *, seed: int = 0) -> torch.Tensor:
    """An out-of-distribution variant of images (N, C, H, W) in [0, 1], same shape and range.

    "invert": 1 - x;  "rotate90": a quarter turn (square images);  "flip": upside down;
    "noise": x + N(0, 0.3²) per pixel, clamped;  "shuffle_pixels": one fixed random permutation of the pixel
    positions, the same for every image and channel (pixel statistics kept, spatial structure destroyed).
    The random ones are seeded by `seed`.
    """
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
    if kind == "invert":
        return 1.0 - x
    if kind == "rotate90":
        if x.shape[2] != x.shape[3]:
            raise ValueError(f"rotate90 needs square images to keep their shape, got {x.shape[2]}x{x.shape[3]}")
        return torch.rot90(x, k=1, dims=(2, 3))
    if kind == "flip":
        return torch.flip(x, dims=(2,))
    generator = torch.Generator().manual_seed(seed)
    if kind == "noise":
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return (x + NOISE_STD * noise).clamp(0.0, 1.0)
    if kind == "shuffle_pixels":
        n, c, h, w = x.shape
        perm = torch.randperm(h * w, generator=generator).to(x.device)
        return x.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)
    raise ValueError(f"unknown transform {kind!r}: use one of {', '.join(TRANSFORMS)}")


# -- for the app's anomaly page: unlabelled sets on a CVAE, a starting threshold -------------------------------------


def anomaly_scores_best_class(model, x: torch.Tensor, *, score: str = "neg_elbo", n_samples: int = 1, seed: int = 0,
                              batch_size: int = 1024) -> np.ndarray:
    """(N,) anomaly scores of images without labels, nats: for a CVAE the lowest score over every class (the
    class that explains the image best, i.e. the most likely one), for other models plain `anomaly_scores`."""
    if not model.config.is_conditional:
        return anomaly_scores(model, x, score=score, n_samples=n_samples, seed=seed, batch_size=batch_size)
    per_class = [anomaly_scores(model, x, torch.full((len(x),), k, dtype=torch.int64), score=score,
                                n_samples=n_samples, seed=seed, batch_size=batch_size)
                 for k in range(model.config.num_classes)]
    return np.min(np.stack(per_class), axis=0)


def threshold_at_false_positive_rate(scores_in: np.ndarray, rate: float) -> float:
    """The lowest observed in-distribution score t such that flagging score > t flags at most `rate` of the
    in-distribution scores (the false positive rate of rates_at_threshold stays <= rate)."""
    s_in = np.sort(np.asarray(scores_in, dtype=np.float64).ravel())
    if len(s_in) == 0 or not np.isfinite(s_in).all():
        raise ValueError("need finite in-distribution scores")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    allowed = math.floor(rate * len(s_in) + 1e-9)  # how many may lie above t (1e-9: 0.05 * 100 is 5, not 4.999)
    return float(s_in[max(0, len(s_in) - 1 - allowed)])
