"""The bundled model zoo: a declarative list, built by `python -m vae_core zoo build` into `checkpoints/`.

Each checkpoint carries a model card in its metadata ("card"): data set, config, seed, training time, test ELBO,
reconstruction and KL, importance-weighted NLL, active units and, for `shapes`, MIG and DCI. The card's figures
come from the same `evaluate_model` as `python -m vae_core evaluate`, so a fresh evaluation reproduces them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vae_core import judge
from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.config import TrainConfig, model_config_for
from vae_core.data import load_data
from vae_core.metrics import PENALTY_KEYS, evaluate_model
from vae_core.models import build_model
from vae_core.training_run import train_and_save

ZOO_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
DIGITS_MLP = {"arch": "mlp", "hidden": (256, 128)}  # shared by the AE / VAE / β-VAE lesson models
MNIST_MLP = {"arch": "mlp", "hidden": (512, 256)}  # shared by the 2-D MNIST family: same network, same seed
SHAPES_CONV = {"arch": "conv", "latent_dim": 8}
JUDGE_NAME = "mnist-classifier"  # not a VAE: the sample-quality classifier (vae_core.judge), built with the zoo


@dataclass(frozen=True)
class ZooModel:
    name: str  # file stem and id
    title: str  # what a teacher sees in the picker
    dataset: str
    model: dict  # model_config_for settings
    train: dict  # TrainConfig settings
    about: str  # one sentence: what this model is for
    iwae: tuple[int, int | None] = (1000, None)  # (K, examples) of the card's importance-weighted NLL
    tags: tuple[str, ...] = field(default_factory=tuple)


DIGITS_TRAIN = {"epochs": 60, "batch_size": 64, "lr": 2e-3, "seed": 0}
MNIST_TRAIN = {"epochs": 20, "batch_size": 128, "lr": 1e-3, "seed": 0}
MNIST_CONV_TRAIN = {"epochs": 12, "batch_size": 128, "lr": 1e-3, "seed": 0}
SAMPLE_CARD_N = 1000  # prior samples the classifier judges for a card
MNIST_IWAE = (1000, 1000)  # K = 1000 importance samples on the first 1,000 test digits
SHAPES_TRAIN = {"epochs": 12, "batch_size": 64, "lr": 1e-3, "seed": 0}
# The disentanglement showcase (β-TCVAE): a 6-D code (five factors and one spare), a smaller network, batch 256 (the
# total correlation is a minibatch estimate) and a 2-epoch KL warm-up. Measured while choosing it (load 5-25): the
# code collapses once the penalties reach full weight (KL ~0.01 nats at epochs 2-5) and reopens at epoch 7; MIG on
# the card's 4,000 test images was 0.119 at 9 epochs, 0.183 at 11, 0.253 at 14, 0.266 at 18, so 20 epochs.
# Batch 128 (lr 1.5e-3, warm-up 1) collapsed and had not reopened after 2 epochs.
SHAPES_TCVAE_CONV = {"arch": "conv", "latent_dim": 6, "conv_channels": (16, 32, 32), "conv_fc": 128}
SHAPES_TCVAE_TRAIN = {"epochs": 20, "batch_size": 256, "lr": 2e-3, "seed": 0, "kl_warmup_epochs": 2.0}

ZOO: tuple[ZooModel, ...] = (
    # Real 28x28 MNIST: the app opens on the first one. The AE, β-VAE, WAE and CVAE are its twins (same network, seed
    # and budget), so the lessons compare like with like; the conv VAE is the sharp one.
    ZooModel("mnist-vae-2d", "MNIST VAE (2-D latent)", "mnist", {"kind": "vae", "latent_dim": 2, **MNIST_MLP},
             MNIST_TRAIN, "Handwritten digits in a 2-D latent space you can see whole: drag through it.",
             iwae=MNIST_IWAE),
    ZooModel("mnist-ae-2d", "MNIST autoencoder (2-D)", "mnist", {"kind": "ae", "latent_dim": 2, **MNIST_MLP},
             MNIST_TRAIN, "The same network and seed without the KL term: a code with holes, not a generator.",
             iwae=MNIST_IWAE),
    ZooModel("mnist-betavae-2d", "MNIST β-VAE (β = 4, 2-D)", "mnist",
             {"kind": "vae", "latent_dim": 2, "beta": 4.0, **MNIST_MLP}, MNIST_TRAIN,
             "A heavier KL weight: a smoother, more prior-like map with blurrier digits.", iwae=MNIST_IWAE),
    ZooModel("mnist-wae-2d", "MNIST WAE (λ = 100, 2-D)", "mnist",
             {"kind": "wae", "latent_dim": 2, "mmd_weight": 100.0, **MNIST_MLP}, MNIST_TRAIN,
             "The KL term swapped for an MMD between all codes and the prior: a deterministic code that still "
             "fills the prior, so it samples; no ELBO.", iwae=MNIST_IWAE),
    ZooModel("mnist-cvae-2d", "MNIST CVAE (2-D)", "mnist", {"kind": "cvae", "latent_dim": 2, **MNIST_MLP},
             MNIST_TRAIN, "Told the digit class: the latent space keeps only the style (slant, width, stroke).",
             iwae=MNIST_IWAE),
    ZooModel("mnist-conv-vae-16d", "MNIST conv VAE (16-D latent)", "mnist",
             {"kind": "vae", "arch": "conv", "latent_dim": 16, "conv_channels": (16, 32)}, MNIST_CONV_TRAIN,
             "A convolutional VAE with room in its code: sharp reconstructions, the best likelihood here.",
             iwae=(200, 1000)),
    # 8x8 digits: the set that trains in two seconds.
    ZooModel("digits-vae-2d", "Digits VAE (2-D latent)", "digits", {"kind": "vae", "latent_dim": 2, **DIGITS_MLP},
             DIGITS_TRAIN, "The plain VAE: a 2-D latent space you can see whole."),
    ZooModel("digits-ae-2d", "Digits autoencoder (2-D)", "digits", {"kind": "ae", "latent_dim": 2, **DIGITS_MLP},
             DIGITS_TRAIN, "The same network and seed without the KL term: a code with holes, not a generator."),
    # On 8x8 digits (64 pixels) a nat of code buys under 3 nats of reconstruction, so β >= 3 collapses the
    # posterior (measured: β = 3 and 4 end with KL ~0 even with warm-up). β = 2 is the informative β-VAE;
    # β = 4 is kept as the collapsed one, the exhibit of the posterior-collapse lesson.
    ZooModel("digits-betavae-2d", "Digits β-VAE (β = 2, 2-D)", "digits",
             {"kind": "vae", "latent_dim": 2, "beta": 2.0, **DIGITS_MLP}, DIGITS_TRAIN,
             "A heavier KL weight: a smoother, more prior-like map with blurrier images."),
    ZooModel("digits-betavae4-2d", "Digits β-VAE (β = 4, collapsed)", "digits",
             {"kind": "vae", "latent_dim": 2, "beta": 4.0, **DIGITS_MLP}, DIGITS_TRAIN,
             "Too heavy a KL weight: the code carries nothing and every input decodes to the same blur."),
    ZooModel("digits-cvae-2d", "Digits CVAE (2-D)", "digits", {"kind": "cvae", "latent_dim": 2, **DIGITS_MLP},
             DIGITS_TRAIN, "Told the digit class: the latent space keeps only the style."),
    ZooModel("digits-vae-10d", "Digits VAE (10-D latent)", "digits", {"kind": "vae", "latent_dim": 10, **DIGITS_MLP},
             DIGITS_TRAIN, "More latent dimensions: the map is a PCA view, and some units stay inactive."),
    ZooModel("shapes-vae", "Shapes VAE (conv, 8-D)", "shapes", {"kind": "vae", **SHAPES_CONV}, SHAPES_TRAIN,
             "A conv VAE on procedural shapes with known factors: position, scale, rotation, shape.",
             iwae=(100, 500)),
    ZooModel("shapes-betavae", "Shapes β-VAE (conv, 8-D, β = 6)", "shapes", {"kind": "vae", "beta": 6.0, **SHAPES_CONV},
             SHAPES_TRAIN, "A β-VAE whose traversals separate the factors: compare its MIG with the VAE's.",
             iwae=(100, 500)),
    ZooModel("shapes-tcvae", "Shapes β-TCVAE (conv, 6-D, β = 10)", "shapes",
             {"kind": "tcvae", "beta": 10.0, **SHAPES_TCVAE_CONV}, SHAPES_TCVAE_TRAIN,
             "The disentanglement showcase: β weighs only the total correlation. Position and scale get rows of "
             "their own; shape is spread over several, and orientation is in none: training never finds it, "
             "though a decoder told it draws the sprites 10 nats better.",
             iwae=(100, 500)),
)


def zoo_model(name: str) -> ZooModel:
    for spec in ZOO:
        if spec.name == name:
            return spec
    raise KeyError(f"no zoo model {name!r}; known: {', '.join(s.name for s in ZOO)}")


def build_one(spec: ZooModel, folder: Path = ZOO_DIR, log: Callable[[str], None] = print) -> dict:
    """Train, evaluate and save one zoo model; returns its card."""
    data = load_data(spec.dataset, seed=spec.train["seed"])
    config = model_config_for(data.input_shape, data.num_classes, **spec.model)
    train_config = TrainConfig(**spec.train)
    model = build_model(config, seed=train_config.seed)
    card: dict = {}

    def zoo_meta(result) -> dict:  # measured on the trained model, before it is saved
        card.update(model_card(spec, model, data, train_seconds=result.seconds, folder=folder))
        return {"name": spec.title, "zoo_name": spec.name, "about": spec.about, "card": card}

    result, _ = train_and_save(model, data, train_config, folder / f"{spec.name}.pt", extra_meta=zoo_meta)
    if result.status != "done":
        raise RuntimeError(f"{spec.name}: {result.message}")
    log(f"{spec.name}: {card_summary(card)}, active {card['active_units']}/{config.latent_dim}, "
        f"{card['train_seconds']:.0f} s")
    return card


def model_card(spec: ZooModel, model, data, *, train_seconds: float, folder: Path = ZOO_DIR) -> dict:
    """The card's figures, from the same code path as `evaluate` (MIG/DCI where the data has factors, and the
    sample-quality classifier's scores for 28x28 grey models)."""
    k, n = spec.iwae
    metrics = evaluate_model(model, data.test, iwae_samples=k, iwae_examples=n)
    card = {
        "dataset": spec.dataset, "config": model.config.to_dict(), "seed": spec.train["seed"],
        "train_config": dict(spec.train), "train_seconds": round(train_seconds, 1),
        "test_elbo": metrics["elbo"], "test_recon": metrics["recon"], "test_kl": metrics["kl"],
        "nll": metrics["nll"], "nll_samples": metrics.get("nll_samples"), "nll_examples": metrics.get("nll_examples"),
        "active_units": metrics["active_units"], "kl_per_dim": metrics["kl_per_dim"],
        **{f"test_{k}": metrics[k] for k in PENALTY_KEYS if k in metrics},  # WAE: mmd; β-TCVAE: mi, tc, dwkl
    }
    if data.test.factors is not None:
        card.update(disentanglement_card(model, data.test))
    judge_file = folder / "judge" / f"{JUDGE_NAME}.pt"
    if judge.fits(model.config.input_shape) and judge_file.is_file():
        card["samples"] = sample_card(model, data.test, judge.load_judge(judge_file))
    return card


def card_summary(card: dict) -> str:
    """One line of a card's figures: the ELBO, NLL and KL where defined (not for the WAE: reconstruction and MMD)."""
    if card.get("test_elbo") is None:
        return f"test reconstruction {card['test_recon']:.2f} nats, MMD {card.get('test_mmd', float('nan')):.4f} (no ELBO)"
    return f"test ELBO {card['test_elbo']:.2f} nats, NLL {card['nll']}, KL {card['test_kl']:.2f}"


def sample_card(model, test, classifier, n: int = SAMPLE_CARD_N, seed: int = 0) -> dict:
    """The sample-quality classifier's verdict on n prior samples (seeded) against n seeded random test images."""
    from vae_core.compare import prior_samples

    _, images = prior_samples(model, n, seed)
    score = judge.judge_samples(classifier, images, judge.real_subset(test.x, n, seed))
    return {"n": n, "seed": seed, "recognised": score["recognised"], "fid": score["fid"]}


def judge_card(classifier, data, n: int = SAMPLE_CARD_N) -> dict:
    """The classifier's test accuracy, and what n real training digits score against the n test digits that
    sample_card uses: the floor a perfect generator would reach at that n."""
    floor = judge.judge_samples(classifier, judge.real_subset(data.train.x, n, seed=1),
                                judge.real_subset(data.test.x, n, seed=0))
    return {"test_accuracy": judge.accuracy(classifier, data.test.x, data.test.y), "n": n,
            "real_fid": floor["fid"], "real_recognised": floor["recognised"]}


def build_judge(folder: Path = ZOO_DIR, log: Callable[[str], None] = print) -> dict:
    """Train the sample-quality classifier on MNIST and save it under folder/judge/; returns its card."""
    data = load_data("mnist", seed=0)
    start = time.perf_counter()
    classifier = judge.train_judge(data, epochs=2, seed=0)
    card = {**judge_card(classifier, data), "train_seconds": round(time.perf_counter() - start, 1),
            "epochs": 2, "seed": 0}
    judge.save_judge(folder / "judge" / f"{JUDGE_NAME}.pt", classifier, {"card": card, "dataset": "mnist"})
    log(f"{JUDGE_NAME}: test accuracy {card['test_accuracy']:.4f}, real digits' FID {card['real_fid']:.2f}, "
        f"{card['train_seconds']:.0f} s")
    return card


def disentanglement_card(model, dataset) -> dict:
    from vae_core.disentanglement import evaluate_disentanglement

    d = evaluate_disentanglement(model, dataset, max_samples=4000, seed=0)
    return {"mig": d["mig"], "dci_disentanglement": d["dci_disentanglement"],
            "dci_completeness": d["dci_completeness"], "dci_informativeness": d["dci_informativeness"],
            "factor_accuracy": d["factor_accuracy"], "factor_chance": d["factor_chance"],  # known at all?
            "factor_per_dim": d["factor_per_dim"], "mi": d["mi"], "entropies": d["entropies"]}  # the lab's heat map


def build_zoo(folder: Path = ZOO_DIR, names: list[str] | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Build the sample-quality classifier and every zoo model (or the named ones) into `folder`. The classifier
    comes first: the MNIST models' cards carry its scores."""
    names = list(names) if names else [JUDGE_NAME, *(spec.name for spec in ZOO)]
    cards = [build_judge(folder, log)] if JUDGE_NAME in names else []
    specs = [zoo_model(n) for n in names if n != JUDGE_NAME]
    return cards + [build_one(spec, folder, log) for spec in specs]


def refresh_cards(folder: Path = ZOO_DIR, names: list[str] | None = None,
                  log: Callable[[str], None] = print) -> list[dict]:
    """Recompute the cards of built checkpoints (and the classifier's) without training again: after a change to
    how a card is measured. Training time is kept from the old card."""
    names = list(names) if names else [JUDGE_NAME, *(spec.name for spec in ZOO)]
    cards = []
    if JUDGE_NAME in names:
        path = folder / "judge" / f"{JUDGE_NAME}.pt"
        old = judge.judge_meta(path)
        classifier = judge.load_judge(path)
        how_trained = {k: v for k, v in old.get("card", {}).items() if k in ("train_seconds", "epochs", "seed")}
        card = {**judge_card(classifier, load_data("mnist", seed=0)), **how_trained}
        judge.save_judge(path, classifier, {**old, "card": card})
        cards.append(card)
    for spec in (zoo_model(n) for n in names if n != JUDGE_NAME):
        path = folder / f"{spec.name}.pt"
        model, meta = load_checkpoint(path)
        data = load_data(spec.dataset, seed=spec.train["seed"])
        card = model_card(spec, model, data, train_seconds=meta["card"]["train_seconds"], folder=folder)
        # The title and description come from the spec, as in build_one, so a reworded one lands too.
        save_checkpoint(path, model, {**meta, "name": spec.title, "about": spec.about, "card": card})
        log(f"{spec.name}: card refreshed")
        cards.append(card)
    return cards


def list_zoo(folder: Path = ZOO_DIR) -> list[dict]:
    """The cards of the checkpoints present in `folder`, in the declared order."""
    out = []
    for spec in ZOO:
        path = folder / f"{spec.name}.pt"
        if path.is_file():
            _, meta = load_checkpoint(path)
            out.append({"name": spec.name, "title": spec.title, "path": str(path), **meta.get("card", {})})
    return out
