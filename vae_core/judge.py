"""A sample-quality number a teacher can trust: a small MNIST classifier that judges generated digits.

    judge = train_judge(load_data("mnist", seed=0))            # at zoo-build time; about a minute on two cores
    save_judge(JUDGE_PATH, judge); judge = load_judge(JUDGE_PATH)
    score = judge_samples(judge, samples, real_test_images)   # {"recognised": 0.93, "fid": 4.1, ...}

Two numbers, both the MNIST convention for generative models:

    recognised   the share of samples the classifier calls one digit with probability >= CONFIDENT (0.9):
                 a sample no digit class claims is a smudge, not a digit. Higher is better.
    fid          the Fréchet distance between Gaussians fitted to the classifier's penultimate features of the
                 samples and of real test images (Heusel et al. 2017, eq. 6, with an MNIST classifier in place of
                 Inception). It sees both quality and variety: samples that are all one good "1" score badly.
                 Lower is better. The distance has a bias that shrinks with the number of images, so scores are
                 compared at one n: the classifier's card holds what n real training digits score against the
                 same n test digits, the floor a perfect generator would reach.

The classifier is a plain two-block CNN (about 99% test accuracy after two epochs). Its file is a plain-dict
checkpoint like the models' (weights only, loaded with weights_only=True).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vae_core.errors import CheckpointError

JUDGE_FORMAT = "latent-lab-judge"
JUDGE_PATH = Path(__file__).resolve().parents[1] / "checkpoints" / "judge" / "mnist-classifier.pt"
JUDGE_INPUT = (1, 28, 28)
CONFIDENT = 0.9  # a sample is "recognised" when one class gets at least this probability
FEATURES = 128


class DigitClassifier(nn.Module):
    """28x28 grey digit -> 10 class logits; `features` is the 128-D penultimate layer the FID is computed on."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU(),  # (B, 128)
        )
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, 10)


def train_judge(data, *, epochs: int = 2, batch_size: int = 128, lr: float = 1e-3, seed: int = 0) -> DigitClassifier:
    """Train the classifier on a 28x28 grey DataSplit's training part (seeded); returns it in eval mode."""
    if tuple(data.input_shape) != JUDGE_INPUT:
        raise ValueError(f"the judge reads 1x28x28 images, got {tuple(data.input_shape)}")
    torch.manual_seed(seed)
    model = DigitClassifier(data.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = data.train.x, data.train.y.long()
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=shuffle)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def classify(judge: DigitClassifier, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities (N, 10), features (N, 128)) of images (N, 1, 28, 28) in [0, 1]."""
    if tuple(images.shape[1:]) != JUDGE_INPUT:
        raise ValueError(f"the judge reads 1x28x28 images, got {tuple(images.shape[1:])}")
    probs, feats = [], []
    for i in range(0, len(images), batch_size):
        f = judge.features(images[i:i + batch_size].float())
        feats.append(f)
        probs.append(torch.softmax(judge.head(f), dim=1))
    return torch.cat(probs), torch.cat(feats)


def accuracy(judge: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images whose most probable class is their label."""
    probs, _ = classify(judge, images)
    return float((probs.argmax(1) == labels.long()).double().mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows a (N, F) and b (M, F):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))  (Dowson & Landau 1982; Heusel et al. 2017)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))  # (F, F), F >= 1
    # tr((S_a S_b)^(1/2)) = tr((R S_b R)^(1/2)) with R = S_a^(1/2): a symmetric PSD matrix, so its square root's
    # trace is the sum of the square roots of its eigenvalues (clipped: round-off can make tiny ones negative).
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt)


def judge_samples(judge: DigitClassifier, samples: torch.Tensor, real: torch.Tensor) -> dict:
    """How digit-like and how varied generated images (N, 1, 28, 28) are, against real images (M, 1, 28, 28):
    {"recognised": share in [0, 1], "fid": float >= 0, "class_share": (10,) list, "n": N}. Needs N, M >= 2."""
    if len(samples) < 2 or len(real) < 2:
        raise ValueError("the Fréchet distance needs at least two samples and two real images")
    probs, feats = classify(judge, samples)
    _, real_feats = classify(judge, real)
    top = probs.max(1)
    share = torch.bincount(top.indices, minlength=probs.shape[1]).double() / len(samples)
    return {"n": len(samples), "recognised": float((top.values >= CONFIDENT).double().mean()),
            "fid": frechet_distance(feats.numpy(), real_feats.numpy()), "class_share": share.tolist()}


def real_subset(x: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """A seeded random subset of n images (all if fewer): the real images scores are compared with. Random, not
    the first n: MNIST's test set is ordered by writer group, so its halves differ more than two random draws."""
    rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[rows]


def save_judge(path: str | Path, judge: DigitClassifier, meta: dict | None = None) -> Path:
    """Write the classifier as a plain dict of tensors and JSON-like metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": JUDGE_FORMAT, "num_classes": judge.head.out_features,
                "state_dict": judge.state_dict(), "meta": meta or {}}, path)
    return path


def load_judge(path: str | Path = JUDGE_PATH) -> DigitClassifier:
    """The classifier from `path`, loaded without running code (weights_only=True)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"the sample-quality classifier {path} is missing: "
                              "rebuild it with `python -m vae_core zoo build --only mnist-classifier`") from None
    except Exception as exc:
        raise CheckpointError(f"the sample-quality classifier {path} is unreadable: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != JUDGE_FORMAT:
        raise CheckpointError(f"{path} is not a Latent Lab sample-quality classifier")
    judge = DigitClassifier(int(payload["num_classes"]))
    judge.load_state_dict(payload["state_dict"])
    return judge.eval()


def judge_meta(path: str | Path = JUDGE_PATH) -> dict:
    """The classifier file's metadata (test accuracy, the real-vs-real FID floor, how it was trained)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True).get("meta", {})


def fits(input_shape) -> bool:
    """Whether the judge can score a model's images: 1x28x28 grey ones."""
    return tuple(input_shape) == JUDGE_INPUT


__all__ = ["DigitClassifier", "train_judge", "classify", "accuracy", "frechet_distance", "judge_samples",
           "real_subset", "save_judge", "load_judge", "judge_meta", "fits", "JUDGE_PATH", "CONFIDENT"]
