"""The CLI's subcommands: each has a `add_*` that declares its flags and a `run_*` that returns a JSON-able dict."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.config import KINDS, LIKELIHOODS, TrainConfig, model_config_for
from vae_core.data import BUILTIN_SOURCES, load_data, load_from_spec
from vae_core.errors import DataError, UserInputError
from vae_core.metrics import evaluate_model
from vae_core.models import build_model
from vae_core.train import Trainer, training_meta


def register(sub: argparse._SubParsersAction) -> None:
    for add in (add_train, add_evaluate, add_info, add_zoo):
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


# -- info ---------------------------------------------------------------------------------------------------------
def add_info(sub) -> None:
    p = sub.add_parser("info", help="print a checkpoint's metadata")
    p.add_argument("--checkpoint", required=True)
    _add_output_flags(p)
    p.set_defaults(handler=run_info)


def run_info(args) -> dict:
    model, meta = load_checkpoint(args.checkpoint)
    return {"model_config": model.config.to_dict(), **meta}


# -- zoo ----------------------------------------------------------------------------------------------------------
def add_zoo(sub) -> None:
    p = sub.add_parser("zoo", help="build or list the bundled model zoo")
    zoo_sub = p.add_subparsers(dest="zoo_command", required=True, parser_class=type(p))
    build = zoo_sub.add_parser("build", help="train every zoo model into checkpoints/ (about 5 minutes)")
    build.add_argument("--only", nargs="+", default=None, help="build only these zoo models")
    build.add_argument("--out", default=None, help="folder (default: checkpoints/)")
    _add_output_flags(build)
    build.set_defaults(handler=run_zoo_build)
    listing = zoo_sub.add_parser("list", help="the zoo's models and their cards")
    listing.add_argument("--folder", default=None)
    _add_output_flags(listing)
    listing.set_defaults(handler=run_zoo_list)


def run_zoo_build(args) -> dict:
    from vae_core import zoo

    folder = Path(args.out) if args.out else zoo.ZOO_DIR
    try:
        cards = zoo.build_zoo(folder, args.only, log=(lambda _: None) if args.json else print)
    except KeyError as exc:
        raise UserInputError(str(exc).strip("'\"")) from None
    return {"folder": str(folder), "models": len(cards)} if not args.json else {"folder": str(folder), "cards": cards}


def run_zoo_list(args) -> dict:
    from vae_core import zoo

    cards = zoo.list_zoo(Path(args.folder) if args.folder else zoo.ZOO_DIR)
    if args.json:
        return {"models": cards}
    for c in cards:
        nll = f"{c['nll']:.2f}" if c.get("nll") is not None else "n/a"
        print(f"{c['name']:<20} {c['title']:<34} ELBO {c['test_elbo']:8.2f}  NLL {nll:>7}  KL {c['test_kl']:6.2f}  "
              f"active {c['active_units']}" + (f"  MIG {c['mig']:.3f}" if "mig" in c else ""))
    return {}


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
