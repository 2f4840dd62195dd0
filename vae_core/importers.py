"""Models trained elsewhere: a plain PyTorch `state_dict` of an MLP VAE, recognised from its tensor names and shapes.

What a user has after `torch.save(model.state_dict(), path)` is weights only: names and shapes, no code. Two
layouts cover most of what people type in, and both are recognised by the same rule:
- pytorch/examples `vae/main.py`: `fc1` (784->400), `fc21`/`fc22` (the mean and log-variance heads), `fc3`, `fc4`;
- the tutorial class with `nn.Sequential` stacks: `encoder.0`, `encoder.2`, ..., `fc_mu`, `fc_logvar`,
  `decoder.0`, ..., ending in a `Sigmoid` (no weights, so not in the file).
The rule: find the mean head and the log-variance head by name; the Linear layers defined before them are the
encoder, those after them the decoder (a name with "enc" or "dec" overrides its place), and each side must chain:
input size -> ... -> the heads, latent size -> ... -> input size. What a state_dict cannot say is assumed and written on the card: ReLU between layers (both sources use it)
and a Bernoulli likelihood (a decoder that ends in a sigmoid, trained with binary cross-entropy).

The file is read with `weights_only=True` (vae_core.checkpoint): nothing in it runs.
"""
from __future__ import annotations

import math

import torch

from vae_core.config import ModelConfig
from vae_core.errors import CheckpointError, UserInputError

MEAN_HEADS = ("fc_mu", "fc21", "mu", "z_mean", "fc_mean", "mean", "enc_mu", "encoder_mu")
LOGVAR_HEADS = ("fc_logvar", "fc_log_var", "fc22", "logvar", "log_var", "z_log_var", "fc_var", "enc_logvar",
                "encoder_logvar")
ASSUMED = "ReLU between layers and a Bernoulli likelihood (a decoder ending in a sigmoid)"


# The bundled data set of each image shape: what the pages show an imported model on (its weights do not say what
# it was trained on). Every one is in the repository, so this works offline.
BUNDLED_DATA_BY_SHAPE = {(1, 28, 28): "mnist", (1, 8, 8): "digits", (1, 32, 32): "shapes", (1, 64, 64): "shapes64"}


def imported_data_meta(input_shape: tuple[int, int, int]) -> dict:
    """meta entries ("data_spec", "dataset") that give an imported model the bundled data of its image shape, so
    the pages that need test images (map, interpolate, anomaly...) and `evaluate` have them; {} when none fits."""
    source = BUNDLED_DATA_BY_SHAPE.get(tuple(input_shape))
    if source is None:
        return {}
    spec = {"source": source, "name": source, "seed": 0, "test_fraction": 0.2, "image_size": int(input_shape[-1])}
    return {"data_spec": spec, "dataset": f"{source} (assumed: the bundled set of its image shape)"}


def is_bare_state_dict(payload: object) -> bool:
    """True for what `torch.save(model.state_dict(), path)` writes: a mapping of names to tensors only."""
    return (isinstance(payload, dict) and len(payload) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()))


def convert_state_dict(state_dict: dict[str, torch.Tensor], input_shape: tuple[int, int, int] | None = None
                       ) -> tuple[ModelConfig, dict[str, torch.Tensor], dict]:
    """(config, our state_dict, what was recognised) for a plain MLP VAE's weights; CheckpointError naming what
    was found and what is missing when the weights are not one."""
    linears, others = _linear_layers(state_dict)
    mean, logvar = _head(linears, MEAN_HEADS, "mean"), _head(linears, LOGVAR_HEADS, "log-variance")
    latent, features = linears[mean].shape
    if linears[logvar].shape != (latent, features):
        raise CheckpointError(f"the mean head {mean} is {_shape(linears[mean])} but the log-variance head {logvar} "
                              f"is {_shape(linears[logvar])}: they must have the same shape")
    encoder, decoder = _split_sides(list(linears), mean, logvar)
    body = {k: w for k, w in linears.items() if k not in (mean, logvar)}
    input_size = body[encoder[0]].shape[1] if encoder else features
    _check_chain(body, encoder, input_size, features, "encoder", linears)
    _check_chain(body, decoder, latent, input_size, "decoder", linears)
    if others:
        raise CheckpointError(f"recognised an MLP VAE but these tensors do not belong to it: {', '.join(others[:5])}"
                              ": only plain Linear encoders and decoders can be imported (export other models to ONNX)")
    hidden = tuple(body[k].shape[0] for k in encoder)
    decoder_hidden = tuple(body[k].shape[0] for k in decoder[:-1])
    if decoder_hidden != hidden[::-1]:
        raise CheckpointError(f"the decoder's hidden sizes {decoder_hidden} are not the encoder's {hidden} reversed: "
                              "Latent Lab's MLP models mirror the encoder in the decoder")
    shape = input_shape or _square_image(input_size)
    if math.prod(shape) != input_size:
        raise CheckpointError(f"the model takes {input_size} inputs but the image shape given is {shape} "
                              f"({math.prod(shape)} pixels)")
    try:
        config = ModelConfig(kind="vae", arch="mlp", input_shape=tuple(shape), latent_dim=latent, hidden=hidden)
    except UserInputError as exc:  # e.g. a layer wider than the server's limits
        raise CheckpointError(f"recognised an MLP VAE ({' -> '.join(encoder)}) that Latent Lab cannot hold: {exc}"
                              ) from None
    ours = {}
    for i, name in enumerate(encoder):
        ours |= _renamed(state_dict, name, f"encoder.body.{2 * i}")
    ours |= _renamed(state_dict, mean, "encoder.mu") | _renamed(state_dict, logvar, "encoder.logvar")
    for i, name in enumerate(decoder):
        ours |= _renamed(state_dict, name, f"decoder.{2 * i}")
    recognised = {"layout": _layout_name(mean, logvar), "encoder": encoder, "mean": mean, "logvar": logvar,
                  "decoder": decoder, "assumed": ASSUMED}
    return config, ours, recognised


def _linear_layers(state_dict: dict) -> tuple[dict[str, torch.Tensor], list[str]]:
    """{prefix: weight (out, in)} of the Linear layers (a 2-D weight with a matching bias); the other names."""
    linears, others = {}, []
    for name, value in state_dict.items():
        prefix, _, leaf = name.rpartition(".")
        if leaf == "weight" and value.dim() == 2:
            bias = state_dict.get(f"{prefix}.bias")
            if bias is None or tuple(bias.shape) != (value.shape[0],):
                raise CheckpointError(f"{name} {_shape(value)} has no matching bias {prefix}.bias: only Linear layers "
                                      "with a bias can be imported")
            linears[prefix] = value
        elif leaf == "bias" and isinstance(state_dict.get(f"{prefix}.weight"), torch.Tensor) \
                and state_dict[f"{prefix}.weight"].dim() == 2:
            continue
        else:
            others.append(f"{name} {_shape(value)}")
    if not linears:
        raise CheckpointError("no Linear layers found (no 2-D `.weight` with a `.bias`): this is not an MLP VAE's "
                              "state_dict; a convolutional model can be imported as ONNX")
    return linears, others


def _head(linears: dict, names: tuple[str, ...], what: str) -> str:
    """The prefix of the mean (or log-variance) head: the last component of its name is one of `names`."""
    found = [k for k in linears if k.rsplit(".", 1)[-1].lower() in names]
    if len(found) != 1:
        problem = "no" if not found else f"{len(found)} candidate"
        raise CheckpointError(f"{problem} {what} head found (looked for a layer named {', '.join(names[:4])} ...); "
                              f"layers found: {_describe(linears)}")
    return found[0]


def _split_sides(names: list[str], mean: str, logvar: str) -> tuple[list[str], list[str]]:
    """(encoder layers, decoder layers) in order. A name with "dec" or "enc" in it says its side; otherwise the
    layer's place says it: a state_dict lists layers in the order the module defined them, and both known layouts
    define the encoder, then the heads, then the decoder (fc1, fc21, fc22, fc3, fc4)."""
    first_head = min(names.index(mean), names.index(logvar))
    encoder, decoder = [], []
    for i, name in enumerate(names):
        if name in (mean, logvar):
            continue
        lowered = name.lower()
        is_decoder = "dec" in lowered or ("enc" not in lowered and i > first_head)
        (decoder if is_decoder else encoder).append(name)
    return encoder, decoder


def _check_chain(layers: dict[str, torch.Tensor], chain: list[str], start: int, end: int, side: str,
                 linears: dict) -> None:
    """Each layer takes the previous one's output, from `start` inputs to `end` outputs."""
    if not chain:
        raise CheckpointError(f"no {side} layers found; layers found: {_describe(linears)}")
    size = start
    for name in chain:
        w = layers[name]  # (out, in)
        if w.shape[1] != size:
            raise CheckpointError(f"the {side}'s layer {name} takes {w.shape[1]} inputs but the layer before it gives "
                                  f"{size}: the layers do not form a chain ({' -> '.join(chain)})")
        size = w.shape[0]
    if size != end:
        raise CheckpointError(f"the {side} ({' -> '.join(chain)}) ends with {size} outputs where {end} are needed")


def _square_image(size: int) -> tuple[int, int, int]:
    side = math.isqrt(size)
    if side * side != size:
        raise CheckpointError(f"the model takes {size} inputs, which is not a square greyscale image: give the "
                              "image shape (channels, height, width) when importing")
    return (1, side, side)


def _renamed(state_dict: dict, prefix: str, ours: str) -> dict[str, torch.Tensor]:
    return {f"{ours}.{leaf}": state_dict[f"{prefix}.{leaf}"].detach().to(torch.float32).contiguous()
            for leaf in ("weight", "bias")}


def _layout_name(mean: str, logvar: str) -> str:
    if (mean, logvar) == ("fc21", "fc22"):
        return "pytorch/examples vae/main.py (fc1, fc21, fc22, fc3, fc4)"
    return f"an MLP VAE with heads {mean} and {logvar}"


def _describe(linears: dict) -> str:
    return ", ".join(f"{k} {_shape(w)}" for k, w in list(linears.items())[:8]) + (" ..." if len(linears) > 8 else "")


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape))
