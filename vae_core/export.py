"""Export a decoder layer by layer, for decoding outside PyTorch (the browser's latent pad decodes in JavaScript).

The decoder of every model in the family is one flat `nn.Sequential` of Linear, ReLU, Unflatten and
ConvTranspose2d layers (see `models.build_decoder`); the image is the sigmoid of its output. `export_decoder`
turns it into plain data, a list of layers with float32 weights in PyTorch's own layouts:

    {"type": "linear", "in": I, "out": O, "weight": (O, I), "bias": (O,)}
    {"type": "relu"}
    {"type": "unflatten", "shape": [C, H, W]}
    {"type": "conv_transpose2d", "in": Ci, "out": Co, "kernel": [kh, kw], "stride": [sh, sw],
     "padding": [ph, pw], "output_padding": [oh, ow], "in_shape": [Ci, H, W], "out_shape": [Co, H', W'],
     "weight": (Ci, Co, kh, kw), "bias": (Co,)}
    {"type": "sigmoid"}                                   # always last: decode_mean's Bernoulli / gaussian mean

A layer the exporter does not know (or a ConvTranspose2d with groups, dilation or a non-zero padding mode)
raises `UnsupportedExport`, so a caller can fall back to decoding with PyTorch. `reference_decode` runs an
export with NumPy the way the browser does (a tight loop per Linear, a scatter-form transposed convolution):
it is the executable specification the JavaScript decoder is tested against.

    exported = export_decoder(model)          # ExportedDecoder; UnsupportedExport if it cannot be exported
    payload = browser_payload(exported)       # JSON-able: weights as base64 little-endian float32
    x = reference_decode(exported, z, y)      # (N, C, H, W) in [0, 1], equal to model.decode_mean(z, y)
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

FORMAT = "latent-lab-decoder"
FORMAT_VERSION = 1
MAX_EXPORT_PARAMETERS = 16_000_000  # 64 MB of float32: more is no longer a quick download for a browser


class UnsupportedExport(ValueError):
    """The decoder holds something the browser decoder cannot run; the message names the layer."""


@dataclass(eq=False)
class ExportedDecoder:
    """A decoder as data: z (D,) [+ one-hot (K,)] -> image (C, H, W) in [0, 1] through `layers`."""

    latent_dim: int
    num_classes: int  # > 0 for a CVAE: the one-hot label is appended to z
    output_shape: tuple[int, int, int]  # (C, H, W)
    layers: list[dict] = field(repr=False)

    @property
    def input_size(self) -> int:
        return self.latent_dim + self.num_classes

    @property
    def n_parameters(self) -> int:
        return sum(v.size for layer in self.layers for v in layer.values() if isinstance(v, np.ndarray))

    @property
    def kinds(self) -> list[str]:
        return [layer["type"] for layer in self.layers]


# -- export -----------------------------------------------------------------------------------------------------
def export_decoder(model) -> ExportedDecoder:
    """The decoder of a `LatentVariableModel` as data; UnsupportedExport if a layer cannot be exported."""
    config = getattr(model, "config", None)
    if getattr(config, "arch", None) == "onnx" and getattr(model, "browser_decoder", None) is not None:
        return export_sequential(model.browser_decoder, config.latent_dim, latent_dim=config.latent_dim,
                                 output_shape=tuple(config.input_shape))  # a plain MLP graph, as our own layers
    _refuse_onnx(config)
    decoder = getattr(model, "decoder", None)
    if config is None or decoder is None:
        raise UnsupportedExport(f"{type(model).__name__} is not a Latent Lab model (no config or decoder)")
    n_classes = config.num_classes if config.is_conditional else 0
    return export_sequential(decoder, config.latent_dim + n_classes, latent_dim=config.latent_dim,
                             num_classes=n_classes, output_shape=tuple(config.input_shape))


def _refuse_onnx(config, part: str = "decoder") -> None:
    """An imported ONNX pair (vae_core.onnx_import) has graphs, not these layers: the pages run it on the server
    (only a decoder that is a plain chain of dense layers is converted, see export_decoder)."""
    if getattr(config, "arch", None) == "onnx":
        what = "is not a plain chain of dense layers (Gemm and Relu)" if part == "decoder" else "is an imported graph"
        raise UnsupportedExport(f"its ONNX {part} {what}, so ONNX Runtime runs it on the server; the browser runs "
                                "only Latent Lab's own layers")


def export_sequential(decoder: nn.Module, input_size: int, *, latent_dim: int | None = None, num_classes: int = 0,
                      output_shape: tuple[int, int, int] | None = None) -> ExportedDecoder:
    """An `nn.Sequential` from a flat vector of `input_size` to logits (C, H, W), followed by a sigmoid."""
    if not isinstance(decoder, nn.Sequential):
        raise UnsupportedExport(f"the decoder must be one flat nn.Sequential, got {type(decoder).__name__}")
    shape: tuple[int, ...] = (int(input_size),)  # the activation's shape (without the batch axis)
    layers: list[dict] = []
    for index, module in enumerate(decoder):
        where = f"layer {index} ({type(module).__name__})"
        layer, shape = _export_layer(module, shape, where)
        layers.append(layer)
    if len(shape) != 3:
        raise UnsupportedExport(f"the decoder must end in an image (C, H, W), but its output has shape {shape}")
    if output_shape is not None and tuple(shape) != tuple(output_shape):
        raise UnsupportedExport(f"the decoder's output {tuple(shape)} is not the model's image shape {tuple(output_shape)}")
    layers.append({"type": "sigmoid"})
    exported = ExportedDecoder(latent_dim=int(input_size - num_classes if latent_dim is None else latent_dim),
                               num_classes=int(num_classes), output_shape=tuple(int(v) for v in shape), layers=layers)
    if exported.n_parameters > MAX_EXPORT_PARAMETERS:
        raise UnsupportedExport(f"the decoder has {exported.n_parameters:,} parameters, more than the "
                                f"{MAX_EXPORT_PARAMETERS:,} a browser decoder takes")
    return exported


def _weights(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).contiguous().numpy().copy()


def _export_layer(module: nn.Module, shape: tuple[int, ...], where: str) -> tuple[dict, tuple[int, ...]]:
    """(layer dict, output shape) for one module applied to an activation of `shape`."""
    if isinstance(module, nn.Linear):
        if len(shape) != 1 or shape[0] != module.in_features:
            raise UnsupportedExport(f"{where} takes {module.in_features} features but gets shape {shape}")
        bias = module.bias if module.bias is not None else torch.zeros(module.out_features)
        return ({"type": "linear", "in": module.in_features, "out": module.out_features,
                 "weight": _weights(module.weight), "bias": _weights(bias)}, (module.out_features,))
    if type(module) is nn.ReLU:
        return {"type": "relu"}, shape
    if isinstance(module, nn.Unflatten):
        target = tuple(int(v) for v in module.unflattened_size)
        if module.dim not in (1, -1) or len(shape) != 1 or len(target) != 3 or int(np.prod(target)) != shape[0]:
            raise UnsupportedExport(f"{where}: only Unflatten(1, (C, H, W)) of a flat vector is supported, "
                                    f"got dim={module.dim}, size={target} for shape {shape}")
        return {"type": "unflatten", "shape": list(target)}, target
    if type(module) is nn.ConvTranspose2d:
        return _export_conv_transpose(module, shape, where)
    raise UnsupportedExport(f"{where} is not supported by the browser decoder (it runs Linear, ReLU, Unflatten "
                            "and ConvTranspose2d)")


def _export_conv_transpose(m: nn.ConvTranspose2d, shape: tuple[int, ...], where: str) -> tuple[dict, tuple[int, ...]]:
    if len(shape) != 3 or shape[0] != m.in_channels:
        raise UnsupportedExport(f"{where} takes {m.in_channels} channels but gets shape {shape}")
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        raise UnsupportedExport(f"{where}: groups, dilation and padding modes other than zeros are not supported")
    if isinstance(m.padding, str):
        raise UnsupportedExport(f"{where}: string padding {m.padding!r} is not supported")
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = m.kernel_size, m.stride, m.padding, m.output_padding
    _, h, w = shape
    out_h = (h - 1) * sh - 2 * ph + kh + oh
    out_w = (w - 1) * sw - 2 * pw + kw + ow
    if out_h < 1 or out_w < 1:
        raise UnsupportedExport(f"{where} would produce an empty image from shape {shape}")
    bias = m.bias if m.bias is not None else torch.zeros(m.out_channels)
    out = (m.out_channels, out_h, out_w)
    return ({"type": "conv_transpose2d", "in": m.in_channels, "out": m.out_channels, "kernel": [kh, kw],
             "stride": [sh, sw], "padding": [ph, pw], "output_padding": [oh, ow], "in_shape": list(shape),
             "out_shape": list(out), "weight": _weights(m.weight), "bias": _weights(bias)}, out)


# -- the browser's form ---------------------------------------------------------------------------------------------
def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def browser_payload(exported: ExportedDecoder) -> dict:
    """JSON-able form of an export: arrays as base64 of little-endian float32 (flattened, C order)."""
    layers = []
    for layer in exported.layers:
        layers.append({k: (_b64(v) if isinstance(v, np.ndarray) else v) for k, v in layer.items()})
    return {"format": FORMAT, "version": FORMAT_VERSION, "latent_dim": exported.latent_dim,
            "num_classes": exported.num_classes, "output_shape": list(exported.output_shape),
            "n_parameters": exported.n_parameters, "layers": layers}


def from_browser_payload(payload: dict) -> ExportedDecoder:
    """The inverse of browser_payload (for tests and tools)."""
    if payload.get("format") != FORMAT or payload.get("version") != FORMAT_VERSION:
        raise UnsupportedExport(f"not a {FORMAT} v{FORMAT_VERSION} payload")
    array_keys = {"weight", "bias"}
    layers = []
    for layer in payload["layers"]:
        layers.append({k: (np.frombuffer(base64.b64decode(v), dtype="<f4").astype(np.float32) if k in array_keys
                           else v) for k, v in layer.items()})
    for layer in layers:
        if layer["type"] == "linear":
            layer["weight"] = layer["weight"].reshape(layer["out"], layer["in"])
        elif layer["type"] == "conv_transpose2d":
            layer["weight"] = layer["weight"].reshape(layer["in"], layer["out"], *layer["kernel"])
    return ExportedDecoder(payload["latent_dim"], payload["num_classes"], tuple(payload["output_shape"]), layers)


# -- the executable specification -----------------------------------------------------------------------------------
def reference_decode(exported: ExportedDecoder, z, y=None) -> np.ndarray:
    """Images (N, C, H, W) float32 in [0, 1] from codes z (N, D) [and labels y (N,) or an int for a CVAE], computed
    with NumPy in the browser decoder's way: Linear as a loop of dot products, ConvTranspose2d in scatter form."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.shape[1] != exported.latent_dim:
        raise ValueError(f"z must be (N, {exported.latent_dim}), got {z.shape}")
    if exported.num_classes:
        if y is None:
            raise ValueError("this decoder is conditional: pass the class y")
        labels = np.broadcast_to(np.asarray(y, dtype=np.int64), (len(z),))
        onehot = np.eye(exported.num_classes, dtype=np.float32)[labels]
        z = np.concatenate([z, onehot], axis=1)
    return np.stack([_reference_one(exported.layers, row) for row in z])


def _reference_one(layers: list[dict], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        kind = layer["type"]
        if kind == "linear":
            x = layer["weight"] @ x + layer["bias"]
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "unflatten":
            x = x.reshape(layer["shape"])
        elif kind == "conv_transpose2d":
            x = _conv_transpose_scatter(x, layer)
        elif kind == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        else:
            raise UnsupportedExport(f"unknown layer type {kind!r}")
    return x.astype(np.float32)


def _conv_transpose_scatter(x: np.ndarray, layer: dict) -> np.ndarray:
    """Every input pixel adds its value times the kernel into the output window it maps to (stride, padding)."""
    (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
    c_out, out_h, out_w = layer["out_shape"]
    weight = layer["weight"]  # (Ci, Co, kh, kw)
    _, h, w = x.shape
    # Accumulate on a canvas with room for the padding, then crop it off.
    full = np.zeros((c_out, (h - 1) * sh + kh + layer["output_padding"][0], (w - 1) * sw + kw + layer["output_padding"][1]),
                    dtype=np.float64)
    contrib = np.einsum("chw,cokl->hwokl", x.astype(np.float64), weight.astype(np.float64))  # (H, W, Co, kh, kw)
    for iy in range(h):
        for ix in range(w):
            full[:, iy * sh: iy * sh + kh, ix * sw: ix * sw + kw] += contrib[iy, ix]
    return (full[:, ph: ph + out_h, pw: pw + out_w] + layer["bias"][:, None, None]).astype(np.float32)


# -- the encoder (the drawing box encodes in the browser) -----------------------------------------------------------
ENCODER_FORMAT = "latent-lab-encoder"


@dataclass(eq=False)
class ExportedEncoder:
    """An encoder as data: image (C, H, W) -> `conv` layers (Conv2d, ReLU, Flatten; empty for an MLP, which takes
    the flattened pixels) -> [+ one-hot (K,)] -> `body` (Linear, ReLU) -> the heads `mu` and `logvar` (Linear;
    logvar None for a deterministic model)."""

    input_shape: tuple[int, int, int]
    latent_dim: int
    num_classes: int
    conv: list[dict] = field(repr=False)
    body: list[dict] = field(repr=False)
    mu: dict = field(repr=False)
    logvar: dict | None = field(repr=False)

    @property
    def n_parameters(self) -> int:
        layers = [*self.conv, *self.body, self.mu, *([self.logvar] if self.logvar else [])]
        return sum(v.size for layer in layers for v in layer.values() if isinstance(v, np.ndarray))


def export_encoder(model) -> ExportedEncoder:
    """The encoder of a `LatentVariableModel` as data; UnsupportedExport if a layer cannot be exported."""
    config, encoder = getattr(model, "config", None), getattr(model, "encoder", None)
    _refuse_onnx(config, "encoder")
    if config is None or encoder is None or not hasattr(encoder, "body"):
        raise UnsupportedExport(f"{type(model).__name__} is not a Latent Lab model (no config or encoder)")
    n_classes = config.num_classes if config.is_conditional else 0
    shape: tuple[int, ...] = tuple(int(v) for v in config.input_shape)
    conv: list[dict] = []
    if encoder.conv is not None:
        for index, module in enumerate(encoder.conv):
            where = f"encoder conv layer {index} ({type(module).__name__})"
            if type(module) is nn.Conv2d:
                layer, shape = _export_conv(module, shape, where)
            elif type(module) is nn.ReLU:
                layer = {"type": "relu"}
            elif type(module) is nn.Flatten:
                layer, shape = {"type": "flatten"}, (int(np.prod(shape)),)
            else:
                raise UnsupportedExport(f"{where} is not supported by the browser encoder")
            conv.append(layer)
    else:
        shape = (int(np.prod(shape)),)
    if len(shape) != 1:
        raise UnsupportedExport(f"the encoder's features must be flat, got shape {shape}")
    shape = (shape[0] + n_classes,)
    body = []
    for index, module in enumerate(encoder.body):
        layer, shape = _export_layer(module, shape, f"encoder layer {index} ({type(module).__name__})")
        if layer["type"] not in ("linear", "relu"):
            raise UnsupportedExport(f"encoder layer {index} is not Linear or ReLU")
        body.append(layer)
    mu, _ = _export_layer(encoder.mu, shape, "the mean head")
    logvar = _export_layer(encoder.logvar, shape, "the log-variance head")[0] if encoder.logvar is not None else None
    exported = ExportedEncoder(tuple(int(v) for v in config.input_shape), int(config.latent_dim), int(n_classes),
                               conv, body, mu, logvar)
    if exported.n_parameters > MAX_EXPORT_PARAMETERS:
        raise UnsupportedExport(f"the encoder has {exported.n_parameters:,} parameters, more than the "
                                f"{MAX_EXPORT_PARAMETERS:,} a browser encoder takes")
    return exported


def _export_conv(m: nn.Conv2d, shape: tuple[int, ...], where: str) -> tuple[dict, tuple[int, ...]]:
    if len(shape) != 3 or shape[0] != m.in_channels:
        raise UnsupportedExport(f"{where} takes {m.in_channels} channels but gets shape {shape}")
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise UnsupportedExport(f"{where}: groups, dilation, string padding and padding modes other than zeros are "
                                "not supported")
    (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
    _, h, w = shape
    out = (m.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    if out[1] < 1 or out[2] < 1:
        raise UnsupportedExport(f"{where} would produce an empty image from shape {shape}")
    bias = m.bias if m.bias is not None else torch.zeros(m.out_channels)
    return ({"type": "conv2d", "in": m.in_channels, "out": m.out_channels, "kernel": [kh, kw], "stride": [sh, sw],
             "padding": [ph, pw], "in_shape": list(shape), "out_shape": list(out), "weight": _weights(m.weight),
             "bias": _weights(bias)}, out)


def encoder_payload(exported: ExportedEncoder) -> dict:
    """JSON-able form of an encoder export: arrays as base64 little-endian float32 (flattened, C order)."""
    def pack(layer):
        return None if layer is None else {k: (_b64(v) if isinstance(v, np.ndarray) else v) for k, v in layer.items()}

    return {"format": ENCODER_FORMAT, "version": FORMAT_VERSION, "input_shape": list(exported.input_shape),
            "latent_dim": exported.latent_dim, "num_classes": exported.num_classes,
            "n_parameters": exported.n_parameters, "conv": [pack(L) for L in exported.conv],
            "body": [pack(L) for L in exported.body], "mu": pack(exported.mu), "logvar": pack(exported.logvar)}


def reference_encode(exported: ExportedEncoder, x, y=None) -> tuple[np.ndarray, np.ndarray | None]:
    """(mu, logvar) (N, D) from images x (N, C, H, W) [and labels y for a CVAE], computed with NumPy the browser
    encoder's way: Conv2d as a gather over the kernel window, Linear as dot products."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, *exported.input_shape)
    mus, logvars = [], []
    for i, image in enumerate(x):
        h = image.astype(np.float64)
        for layer in exported.conv:
            if layer["type"] == "conv2d":
                h = _conv_gather(h, layer)
            elif layer["type"] == "relu":
                h = np.maximum(h, 0)
            else:
                h = h.reshape(-1)
        h = h.reshape(-1)
        if exported.num_classes:
            label = int(np.broadcast_to(np.asarray(y), (len(x),))[i])
            h = np.concatenate([h, np.eye(exported.num_classes)[label]])
        for layer in exported.body:
            h = layer["weight"] @ h + layer["bias"] if layer["type"] == "linear" else np.maximum(h, 0)
        mus.append(exported.mu["weight"] @ h + exported.mu["bias"])
        if exported.logvar is not None:
            logvars.append(exported.logvar["weight"] @ h + exported.logvar["bias"])
    return np.asarray(mus, np.float32), (np.asarray(logvars, np.float32) if exported.logvar is not None else None)


def _conv_gather(x: np.ndarray, layer: dict) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
    c_out, out_h, out_w = layer["out_shape"]
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    weight = layer["weight"].astype(np.float64)  # (Co, Ci, kh, kw)
    out = np.empty((c_out, out_h, out_w))
    for oy in range(out_h):
        for ox in range(out_w):
            window = padded[:, oy * sh: oy * sh + kh, ox * sw: ox * sw + kw]
            out[:, oy, ox] = np.einsum("oikl,ikl->o", weight, window)
    return out + layer["bias"][:, None, None]
