"""The CLI's subcommands: each has a `add_*` that declares its flags and a `run_*` that returns a JSON-able dict."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.config import KINDS, LIKELIHOODS, TrainConfig, model_config_for
from vae_core.data import BUILTIN_SOURCES, load_data, load_from_spec
from vae_core.errors import DataError, UserInputError
from vae_core.metrics import evaluate_elbo, iwae_log_likelihood
from vae_core.models import build_model
from vae_core.train import Trainer, training_meta


def register(sub: argparse._SubParsersAction) -> None:
    for add in (add_train, add_evaluate, add_info):
        add(sub)


# -- train --------------------------------------------------------------------------------------------------------
def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model and save it as a checkpoint")
    _add_data_flags(p, required=True)
    p.add_argument("--model", choices=KINDS, default="vae", help="ae, vae (use --beta for a β-VAE) or cvae")
    p.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="MLP hidden sizes, e.g. --hidden 400")
    p.add_argument("--conv-channels", type=int, nargs="+", default=None, help="conv channels, input side first")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (1 = VAE)")
    p.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli")
    p.add_argument("--kl-warmup", type=float, default=0.0, help="epochs of linear KL warm-up")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    _add_output_flags(p)
    p.set_defaults(handler=run_train)


def run_train(args) -> dict:
    from vae_core.cli import ProgressBar

    data = _load_data_arg(args, seed=args.seed)
    config = model_config_for(
        data.input_shape, data.num_classes, kind=args.model, arch=args.arch, latent_dim=args.latent_dim,
        hidden=args.hidden, conv_channels=args.conv_channels, beta=args.beta, likelihood=args.likelihood)
    train_config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               kl_warmup_epochs=args.kl_warmup, device=args.device,
                               num_threads=args.threads or (os.cpu_count() or 1))
    out = Path(args.out)
    if out.is_dir():
        raise UserInputError(f"--out {out} is a folder: give a file name such as {out / 'model.pt'}")
    model = build_model(config, seed=args.seed)
    result = Trainer(model, data, train_config).run(callbacks=[ProgressBar(enabled=not args.json)])
    if result.status != "done":
        raise RuntimeError(result.message)
    save_checkpoint(out, model, training_meta(data, train_config, result))
    last = result.history[-1]
    return {
        "checkpoint": str(out), "epochs": len(result.history), "train_elbo": last["train_elbo"],
        "test_elbo": last["test_elbo"], "test_recon": last["test_recon"], "test_kl": last["test_kl"],
        "samples_per_s": result.samples_per_s, "seconds": result.seconds,
    }


# -- evaluate -----------------------------------------------------------------------------------------------------
def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="ELBO, reconstruction, KL, -log p(x) and active units on the test split")
    p.add_argument("--checkpoint", required=True)
    _add_data_flags(p, required=False)
    p.add_argument("--iwae-samples", type=int, default=0, help="K > 0: importance-weighted -log p(x) with K samples")
    p.add_argument("--seed", type=int, default=None, help="split seed (default: the one the model was trained with)")
    _add_output_flags(p)
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args) -> dict:
    model, meta = load_checkpoint(args.checkpoint)
    if args.iwae_samples < 0:
        raise UserInputError(f"--iwae-samples must be >= 0, got {args.iwae_samples}")
    spec = meta.get("data_spec") or {}
    seed = args.seed if args.seed is not None else spec.get("seed", 0)
    if args.dataset or args.data:
        data = _load_data_arg(args, seed=seed, image_size=model.config.input_shape[-1])
    elif spec:
        data = load_from_spec({**spec, "seed": seed})
    else:
        raise DataError("the checkpoint does not say which data it was trained on: pass --dataset or --data")
    return evaluate_model(model, data.test, iwae_samples=args.iwae_samples)


def evaluate_model(model, test, *, iwae_samples: int = 0, seed: int = 0) -> dict:
    """The evaluate command's numbers for a model on a test set (nats per example)."""
    if tuple(test.x.shape[1:]) != tuple(model.config.input_shape):
        raise DataError(f"the data's images are {'x'.join(map(str, test.x.shape[1:]))} but the model expects "
                        f"{'x'.join(map(str, model.config.input_shape))}: use the data set it was trained on")
    if model.config.is_conditional and int(test.y.max()) >= model.config.num_classes:
        raise DataError(f"the data has labels up to {int(test.y.max())} but the CVAE knows {model.config.num_classes} classes")
    metrics = evaluate_elbo(model, test.x, test.y, seed=seed)
    out = {k: metrics[k] for k in ("elbo", "recon", "kl", "active_units")}
    out["kl_per_dim"] = metrics["kl_per_dim"]
    out["nll"] = None
    if iwae_samples > 0 and model.config.is_variational:
        out["nll"] = float(-iwae_log_likelihood(model, test.x, test.y, k=iwae_samples, seed=seed).mean())
    out["n_test"] = len(test.x)
    return out


# -- info ---------------------------------------------------------------------------------------------------------
def add_info(sub) -> None:
    p = sub.add_parser("info", help="print a checkpoint's metadata")
    p.add_argument("--checkpoint", required=True)
    _add_output_flags(p)
    p.set_defaults(handler=run_info)


def run_info(args) -> dict:
    model, meta = load_checkpoint(args.checkpoint)
    return {"model_config": model.config.to_dict(), **meta}


# -- shared flags -------------------------------------------------------------------------------------------------
def _add_data_flags(p, *, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--dataset", choices=BUILTIN_SOURCES, help="a bundled or downloadable data set")
    group.add_argument("--data", help="a .npz file, an image folder or a .zip of one")
    p.add_argument("--image-size", type=int, default=None, help="side to resize image folders to")


def _add_output_flags(p) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _load_data_arg(args, *, seed: int, image_size: int | None = None):
    source = args.dataset or args.data
    if args.data and not os.path.exists(args.data):
        raise DataError(f"no file or folder at {args.data}: check the path")
    return load_data(source, seed=seed, image_size=args.image_size or image_size)
