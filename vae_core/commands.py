"""The CLI's subcommands: each has a `add_*` that declares its flags and a `run_*` that returns a JSON-able dict."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from vae_core.checkpoint import load_checkpoint
from vae_core.config import DEFAULT_MMD_WEIGHT, KINDS, LIKELIHOODS, TrainConfig, model_config_for
from vae_core.data import BUILTIN_SOURCES, load_data, load_from_spec, load_npz
from vae_core.errors import DataError, UserInputError
from vae_core.metrics import PENALTY_KEYS, evaluate_model
from vae_core.models import build_model
from vae_core.train import TrainEvent
from vae_core.training_run import train_and_save


def register(sub: argparse._SubParsersAction) -> None:
    from vae_core.mnist_bundle import add_data  # `data pack-mnist`: rebuilds the bundled MNIST copy

    for add in (add_train, add_evaluate, add_info, add_import, add_sample, add_grid, add_traverse, add_interpolate,
                add_zoo, add_data):
        add(sub)


# -- train --------------------------------------------------------------------------------------------------------
def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model and save it as a checkpoint")
    _add_data_flags(p, required=True)
    p.add_argument("--model", choices=KINDS, default="vae",
                   help="ae, vae (use --beta for a β-VAE), cvae, wae (WAE-MMD, see --mmd-weight) or tcvae (β-TCVAE: "
                        "--beta weights the total correlation)")
    p.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="MLP hidden sizes, e.g. --hidden 400")
    p.add_argument("--conv-channels", type=int, nargs="+", default=None, help="conv channels, input side first")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (1 = VAE); of the TC for tcvae")
    p.add_argument("--mmd-weight", type=float, default=DEFAULT_MMD_WEIGHT,
                   help=f"λ of the WAE's MMD penalty (default {DEFAULT_MMD_WEIGHT:g})")
    p.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli")
    p.add_argument("--kl-warmup", type=float, default=0.0, help="epochs of linear KL warm-up")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default, as a bare script gets)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    _add_output_flags(p)
    p.set_defaults(handler=run_train)


def run_train(args) -> dict:
    data = _load_data_arg(args, seed=args.seed)
    config = model_config_for(
        data.input_shape, data.num_classes, kind=args.model, arch=args.arch, latent_dim=args.latent_dim,
        hidden=args.hidden, conv_channels=args.conv_channels, beta=args.beta, likelihood=args.likelihood,
        mmd_weight=args.mmd_weight)
    train_config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               kl_warmup_epochs=args.kl_warmup, device=args.device,
                               num_threads=args.threads)
    out = Path(args.out)
    if out.is_dir():
        raise UserInputError(f"--out {out} is a folder: give a file name such as {out / 'model.pt'}")
    model = build_model(config, seed=args.seed)
    result, _ = train_and_save(model, data, train_config, out, callbacks=[ProgressBar(enabled=not args.json)])
    if result.status != "done":
        raise RuntimeError(result.message)
    last = result.history[-1]
    return {
        "checkpoint": str(out), "epochs": len(result.history), "train_elbo": last["train_elbo"],
        "test_elbo": last["test_elbo"], "test_recon": last["test_recon"], "test_kl": last["test_kl"],
        **{k: last[k] for k in last if k.startswith(("train_", "test_")) and k[k.index("_") + 1:] in PENALTY_KEYS},
        "samples_per_s": result.samples_per_s, "seconds": result.seconds, "data_copy": data.spec.get("copy"),
    }


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, event: TrainEvent) -> None:
        if not self.enabled or event.kind not in ("step", "epoch"):
            return
        now = time.monotonic()
        if event.kind == "step" and now - self.last < 0.1:
            return
        self.last = now
        m = event.metrics
        frac = m.get("progress", 0.0)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        sys.stderr.write(f"\repoch {event.epoch} [{bar}] {100 * frac:5.1f}%  loss {m.get('loss', m.get('train_loss', 0)):.2f}"
                         f"  {m.get('samples_per_s', 0):,.0f} samples/s ")
        if frac >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()


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
        data = _load_data_arg(args, seed=seed, image_size=model.config.input_shape[-1], test_only=True)
    elif spec:
        data = load_from_spec({**spec, "seed": seed})
    else:
        raise DataError("the checkpoint does not say which data it was trained on: pass --dataset or --data")
    result = evaluate_model(model, data.test, iwae_samples=args.iwae_samples)
    if data.spec.get("copy"):  # which copy of a built-in set (e.g. the bundled MNIST) was evaluated on
        result["data_copy"] = data.spec["copy"]
    return result


# -- info ---------------------------------------------------------------------------------------------------------
def add_info(sub) -> None:
    p = sub.add_parser("info", help="print a checkpoint's metadata")
    p.add_argument("--checkpoint", required=True)
    _add_output_flags(p)
    p.set_defaults(handler=run_info)


def run_info(args) -> dict:
    model, meta = load_checkpoint(args.checkpoint)
    return {"model_config": model.config.to_dict(), **meta}


# -- import ------------------------------------------------------------------------------------------------------
def add_import(sub) -> None:
    p = sub.add_parser("import", help="convert a VAE trained elsewhere (a bare PyTorch state_dict, or an ONNX encoder "
                                      "and decoder pair) into a checkpoint",
                       description="Reads FILE, written by `torch.save(model.state_dict(), FILE)`, as weights only "
                                   "(nothing in it runs), recognises pytorch/examples' VAE (fc1, fc21, fc22, fc3, fc4) "
                                   "or an MLP VAE with fc_mu / fc_logvar heads, and writes a Latent Lab checkpoint. "
                                   "Assumed: ReLU between layers, a Bernoulli likelihood (a decoder ending in a "
                                   "sigmoid). Or, with --encoder and --decoder instead of FILE, reads two ONNX graphs "
                                   "exported from any framework (image -> mu, logvar or one code; z -> image) as data "
                                   "and keeps them, run with ONNX Runtime.")
    p.add_argument("file", nargs="?", default=None, help="the state_dict (.pt)")
    p.add_argument("--encoder", default=None, help="the encoder's ONNX file (image -> mu, logvar, or one code)")
    p.add_argument("--decoder", default=None, help="the decoder's ONNX file (z -> image)")
    p.add_argument("--decoder-output", choices=("auto", "probabilities", "logits"), default="auto",
                   help="what the ONNX decoder gives (auto: probabilities when it ends in a Sigmoid, else logits)")
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    p.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"), default=None,
                   help="the image shape, when the input size is not a square greyscale image (784 -> 1 28 28)")
    p.add_argument("--name", default=None, help="the model's name in the app (default: from FILE)")
    _add_output_flags(p)
    p.set_defaults(handler=run_import)


def run_import(args) -> dict:
    from vae_core.checkpoint import model_from_payload, save_checkpoint

    shape = tuple(args.input_shape) if args.input_shape else None
    if shape is not None and not all(0 < v <= 4096 for v in shape):
        raise UserInputError(f"--input-shape must be three positive sizes C H W, got {' '.join(map(str, shape))}")
    onnx_pair = args.encoder is not None or args.decoder is not None
    if onnx_pair == (args.file is not None) or (onnx_pair and not (args.encoder and args.decoder)):
        raise UserInputError("give either a state_dict FILE or both --encoder E.onnx and --decoder D.onnx")
    out = Path(args.out)
    if out.is_dir():
        raise UserInputError(f"--out {out} is a folder: give a file name such as {out / 'model.pt'}")
    payload = _onnx_import_payload(args, shape) if onnx_pair else _state_dict_import_payload(args, shape)
    model, meta = model_from_payload(payload)
    source = Path(args.encoder if onnx_pair else args.file)
    meta["name"] = args.name or f"{source.stem} (imported, z={model.config.latent_dim})"
    save_checkpoint(out, model, meta)
    return {"checkpoint": str(out), "name": meta["name"], "model_config": model.config.to_dict(),
            "imported": meta["imported"], "about": meta["about"]}


def _state_dict_import_payload(args, shape) -> dict:
    from vae_core.checkpoint import _load_payload, _read_bytes, imported_payload, model_from_payload
    from vae_core.importers import is_bare_state_dict

    payload = _load_payload(_read_bytes(args.file))  # weights only, after the size and archive checks
    if not is_bare_state_dict(payload):
        model_from_payload(payload)  # a damaged or foreign file says why; a good one is already ours
        raise UserInputError(f"{args.file} is already a Latent Lab checkpoint: nothing to import")
    payload = imported_payload(payload, shape)
    payload["meta"]["imported"]["files"] = [Path(args.file).name]
    return payload


def _onnx_import_payload(args, shape) -> dict:
    from vae_core.onnx_import import MAX_ONNX_BYTES, onnx_payload

    files = []
    for flag, name in (("--encoder", args.encoder), ("--decoder", args.decoder)):
        path = Path(name)
        if not path.is_file():
            raise UserInputError(f"{flag} {path}: no such file")
        if path.stat().st_size > MAX_ONNX_BYTES:  # checked before a byte is read
            raise UserInputError(f"{flag} {path.name} is {path.stat().st_size / 2**20:.0f} MB; an ONNX file is at "
                                 f"most {MAX_ONNX_BYTES // 2**20} MB here")
        files.append(path.read_bytes())
    return onnx_payload(*files, file_names=(Path(args.encoder).name, Path(args.decoder).name), input_shape=shape,
                        decoder_output=args.decoder_output)


# -- pictures: sample, grid, traverse, interpolate -----------------------------------------------------------------
def _add_picture_flags(p, default_out: str) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default=default_out, help="PNG file to write")
    p.add_argument("--scale", type=int, default=4, help="upscale each image by this integer factor (no blur)")
    p.add_argument("--class", dest="label", type=int, default=None, help="class to decode with (CVAE only)")
    _add_output_flags(p)


def add_sample(sub) -> None:
    p = sub.add_parser("sample", help="decode random codes from the prior into a PNG grid")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the prior's standard deviation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nrow", type=int, default=8)
    _add_picture_flags(p, "samples.png")
    p.set_defaults(handler=run_sample)


def run_sample(args) -> dict:
    from vae_core.latent import sample_prior

    model, _ = load_checkpoint(args.checkpoint)
    _check_range("--n", args.n, 1, 4096)
    _check_range("--temperature", args.temperature, 0.0, 10.0)
    z, images = sample_prior(model, args.n, temperature=args.temperature, seed=args.seed, y=_label(model, args))
    png = _save_png(images, args.out, nrow=args.nrow, scale=args.scale)
    return {"png": png, "n": args.n, "temperature": args.temperature, "seed": args.seed, "z": z.tolist()}


def add_grid(sub) -> None:
    p = sub.add_parser("grid", help="decode an n x n grid over two latent dimensions into a PNG")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--dims", type=int, nargs=2, default=(0, 1), help="the two latent dimensions to vary")
    p.add_argument("--span", type=float, default=3.0, help="the grid covers ±span prior standard deviations")
    _add_picture_flags(p, "grid.png")
    p.set_defaults(handler=run_grid)


def run_grid(args) -> dict:
    from vae_core.latent import manifold_grid

    model, _ = load_checkpoint(args.checkpoint)
    _check_range("--n", args.n, 2, 64)
    _check_dims(model, args.dims)
    extent = (-args.span, args.span, -args.span, args.span)
    images, z, plane = manifold_grid(model, args.n, extent=extent, dims=tuple(args.dims), y=_label(model, args))
    png = _save_png(images, args.out, nrow=args.n, scale=args.scale)
    return {"png": png, "n": args.n, "dims": list(args.dims), "extent": list(extent), "z": z.tolist()}


def add_traverse(sub) -> None:
    p = sub.add_parser("traverse", help="vary one latent dimension at a time (rows = dimensions) into a PNG")
    p.add_argument("--dims", type=int, nargs="+", default=None, help="dimensions to traverse (default: all)")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--span", type=float, default=3.0)
    p.add_argument("--base", type=float, nargs="+", default=None, help="the base latent point (default: zeros)")
    _add_picture_flags(p, "traverse.png")
    p.set_defaults(handler=run_traverse)


def run_traverse(args) -> dict:
    from vae_core.latent import traverse

    model, _ = load_checkpoint(args.checkpoint)
    d = model.config.latent_dim
    dims = args.dims if args.dims is not None else list(range(d))
    _check_dims(model, dims)
    _check_range("--steps", args.steps, 2, 64)
    base = torch.zeros(d) if args.base is None else _vector("--base", args.base, d)
    images, values = traverse(model, base, dims=dims, n=args.steps, span=args.span, y=_label(model, args))
    png = _save_png(images.flatten(0, 1), args.out, nrow=args.steps, scale=args.scale)
    return {"png": png, "dims": dims, "values": values.tolist(), "base": base.tolist()}


def add_interpolate(sub) -> None:
    p = sub.add_parser("interpolate", help="decode a path between two test images (or two codes) into a PNG strip")
    ends = p.add_mutually_exclusive_group()
    ends.add_argument("--indices", type=int, nargs=2, metavar=("START", "END"), default=(0, 1),
                      help="two test-set indices of the model's data")
    ends.add_argument("--codes", type=float, nargs="+", help="two latent vectors, the first D numbers then the next D")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--method", choices=("linear", "slerp"), default="linear")
    _add_picture_flags(p, "interpolate.png")
    p.set_defaults(handler=run_interpolate)


def run_interpolate(args) -> dict:
    from vae_core.latent import decode, interpolate

    model, meta = load_checkpoint(args.checkpoint)
    d = model.config.latent_dim
    _check_range("--steps", args.steps, 2, 256)
    if args.codes is not None:
        if len(args.codes) != 2 * d:
            raise UserInputError(f"--codes needs 2 x {d} numbers (two latent vectors), got {len(args.codes)}")
        z0, z1 = torch.tensor(args.codes[:d]), torch.tensor(args.codes[d:])
        ends = {"codes": args.codes}
    else:
        z0, z1 = _encode_test_images(model, meta, args.indices)
        ends = {"indices": list(args.indices)}
    path = interpolate(z0, z1, args.steps, args.method)
    images = decode(model, path, _label(model, args, n=args.steps))
    png = _save_png(images, args.out, nrow=args.steps, scale=args.scale)
    return {"png": png, "method": args.method, **ends, "path": path.tolist()}


def _encode_test_images(model, meta: dict, indices) -> tuple[torch.Tensor, torch.Tensor]:
    from vae_core.latent import encode_dataset

    spec = meta.get("data_spec")
    if not spec:
        raise DataError("the checkpoint does not say which data it was trained on: give --codes instead")
    test = load_from_spec(spec).test
    for i in indices:
        _check_range("--indices", i, 0, len(test) - 1)
    idx = torch.tensor(indices)
    mu = encode_dataset(model, test.x[idx], test.y[idx]).mu
    return mu[0], mu[1]


def _label(model, args, n: int | None = None):
    if not model.config.is_conditional:
        if args.label is not None:
            raise UserInputError("--class is only for a CVAE; this model is not conditional")
        return None
    label = 0 if args.label is None else args.label
    _check_range("--class", label, 0, model.config.num_classes - 1)
    return label if n is None else torch.full((n,), label)


def _check_range(flag: str, value, low, high) -> None:
    if not low <= value <= high:
        raise UserInputError(f"{flag} must be between {low} and {high}, got {value}")


def _check_dims(model, dims) -> None:
    d = model.config.latent_dim
    bad = [i for i in dims if not 0 <= i < d]
    if bad:
        raise UserInputError(f"latent dimension(s) {bad} out of range: this model has dimensions 0..{d - 1}")


def _vector(flag: str, values, d: int) -> torch.Tensor:
    if len(values) != d:
        raise UserInputError(f"{flag} needs {d} numbers (the latent size), got {len(values)}")
    return torch.tensor(values, dtype=torch.float32)


def _save_png(images: torch.Tensor, out: str, *, nrow: int, scale: int) -> str:
    """Write (N, C, H, W) images in [0, 1] as one PNG grid (torchvision), upscaled by nearest neighbour."""
    from torchvision.utils import save_image

    _check_range("--scale", scale, 1, 32)
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise UserInputError(f"--out must end in .png, got {out}")
    path.parent.mkdir(parents=True, exist_ok=True)
    big = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    save_image(big, path, nrow=nrow, padding=scale, pad_value=1.0)
    return str(path)


# -- zoo ----------------------------------------------------------------------------------------------------------
def add_zoo(sub) -> None:
    p = sub.add_parser("zoo", help="build or list the bundled model zoo")
    zoo_sub = p.add_subparsers(dest="zoo_command", required=True, parser_class=type(p))
    build = zoo_sub.add_parser(
        "build", help="train the sample-quality classifier and every zoo model into checkpoints/ (~15 min, 2 cores)")
    build.add_argument("--only", nargs="+", default=None, help="build only these zoo models")
    build.add_argument("--out", default=None, help="folder (default: checkpoints/)")
    build.add_argument("--cards-only", action="store_true",
                       help="recompute the cards of the built models without training them again")
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
        build = zoo.refresh_cards if args.cards_only else zoo.build_zoo
        cards = build(folder, args.only, log=(lambda _: None) if args.json else print)
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
        if c.get("test_elbo") is None:  # a WAE: no ELBO nor KL, its reconstruction and MMD instead
            figures = f"recon {c['test_recon']:7.2f}  MMD {c.get('test_mmd', float('nan')):.4f}"
        else:
            figures = f"ELBO {c['test_elbo']:8.2f}  NLL {nll:>7}  KL {c['test_kl']:6.2f}"
        print(f"{c['name']:<20} {c['title']:<34} {figures}  "
              f"active {c['active_units']}" + (f"  MIG {c['mig']:.3f}" if "mig" in c else ""))
    return {}


# -- shared flags -------------------------------------------------------------------------------------------------
def _add_data_flags(p, *, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--dataset", choices=BUILTIN_SOURCES, help="a bundled or downloadable data set")
    group.add_argument("--data", help="a .npz file, an image folder or a .zip of one")
    p.add_argument("--image-size", type=int, default=None, help="side to resize image folders to")
    p.add_argument("--max-data-mb", type=int, default=None,
                   help="memory a --data file may take to load, in MiB (default 192, the app's budget for one file); "
                        "raise it for a large file of your own, e.g. a full MNIST .npz needs about 400")


def _add_output_flags(p) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _load_data_arg(args, *, seed: int, image_size: int | None = None, test_only: bool = False):
    """The data a command names. test_only (evaluate): a Keras-style .npz's training arrays are not read, so a full
    MNIST file fits the one-file budget."""
    source = args.dataset or args.data
    if args.data and not os.path.exists(args.data):
        raise DataError(f"no file or folder at {args.data}: check the path")
    max_bytes = None
    if args.max_data_mb is not None:
        if not 1 <= args.max_data_mb <= 1 << 20:
            raise UserInputError(f"--max-data-mb must be 1..{1 << 20}, got {args.max_data_mb}")
        max_bytes = args.max_data_mb << 20
    if test_only and args.data and str(args.data).lower().endswith(".npz"):
        return load_npz(args.data, seed=seed, max_bytes=max_bytes, test_only=True)
    return load_data(source, seed=seed, image_size=args.image_size or image_size, max_bytes=max_bytes)
