"""Models from any framework as an ONNX encoder and decoder pair, run with ONNX Runtime: nothing of theirs runs.

A user exports two graphs from their own code (three lines, see the README's "Bring your own model"):

    encoder: image (N, 784) or (N, C, H, W) or (N, H, W) or (N, H, W, C) -> mu (N, D) and logvar (N, D),
             or -> one code (N, D) for an autoencoder;
    decoder: z (N, D) -> image (any of the same layouts), as probabilities (a final Sigmoid) or as logits.

Each file is read as data: its size is checked before it is parsed, the parsed graph goes through `onnx.checker`,
its operators must be on a list of plain tensor operators (no control flow, no custom domains, no operators that
make tensors of a computed size, no external data), and its shapes are inferred with the batch dimension set to 1,
so what one example costs (every intermediate tensor) is known before anything runs. Input and output names and
shapes are read from the graphs; what cannot be read is assumed and said (`recognised["assumed"]`), and a graph
that does not fit is refused naming what was found and what is missing.

The pair is stored as a Latent Lab checkpoint (vae_core.checkpoint): model_config with arch "onnx", the two files'
bytes as uint8 tensors under "onnx", loaded with weights_only=True like every checkpoint and read again by the
same checks. `OnnxModel` has the interface of `LatentVariableModel` (encode, decode, decode_mean, forward ->
ModelOutput), so every page runs on it. A decoder that is a plain chain of Gemm and Relu (an MLP, as
torch.onnx.export writes it) also becomes Latent Lab's own layers for the browser's decoder (`browser_layers`);
any other decodes on the server, with a notice.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vae_core.budget import ESTIMATE_LIMIT_BYTES
from vae_core.config import MAX_ACTIVATION_VALUES, MAX_PARAMETERS, ModelConfig
from vae_core.errors import CheckpointError, UserInputError
from vae_core.importers import imported_data_meta
from vae_core.models import LatentVariableModel

MAX_ONNX_BYTES = 4 * MAX_PARAMETERS  # one file: the weights of the largest model Latent Lab holds (64 MB)
MAX_FIXED_BATCH = 1024  # a graph exported without a dynamic batch runs in chunks of its own batch size
DECODER_OUTPUTS = ("auto", "probabilities", "logits")
# Multiply-adds of one image through one graph: 200 M is about 20-40 ms on one core, so the 16 samples a page
# decodes at once take under a second. Latent Lab's own largest conv model (3x256x256, channels 32-32-64-64)
# needs 148 M in each graph, measured with _multiply_adds on its ONNX export.
MAX_MULTIPLY_ADDS = 200_000_000
# Plain tensor operators: each output's size follows from its inputs' sizes and its attributes, so shape inference
# bounds the cost. Left out on purpose: control flow (Loop, If, Scan), operators that build tensors of a computed
# size (Tile, Expand, ConstantOfShape, Range, Resize with computed sizes), random and string operators.
ALLOWED_OPS = frozenset("""
    Abs Add AveragePool BatchNormalization Cast Ceil Clip Concat Constant Conv ConvTranspose Div Dropout Elu Equal Erf
    Exp Flatten Floor Gather Gemm GlobalAveragePool Greater HardSigmoid Identity InstanceNormalization LayerNormalization
    LeakyRelu Less Log LogSoftmax MatMul Max MaxPool Mean Min Mod Mul Neg Not Pad Pow PRelu Reciprocal ReduceMax ReduceMean
    ReduceMin ReduceSum Relu Reshape Selu Shape Sigmoid Sign Slice Softmax Softplus Softsign Split Sqrt Squeeze Sub Sum
    Tanh Transpose Unsqueeze Where Gelu Mish
""".split())
MEAN_NAMES = ("mu", "mean", "z_mean", "loc")
LOGVAR_NAMES = ("logvar", "log_var", "z_log_var", "logsigma2", "log_variance")


@dataclass(frozen=True)
class Layout:
    """How a graph holds images: "flat" (N, C*H*W), "hw" (N, H, W), "chw" (N, C, H, W) or "hwc" (N, H, W, C)."""

    kind: str
    image: tuple[int, int, int]  # (C, H, W)

    def to_graph(self, x: np.ndarray) -> np.ndarray:
        """(B, C, H, W) -> the graph's layout."""
        if self.kind == "flat":
            return x.reshape(len(x), -1)
        if self.kind == "hw":
            return x[:, 0]
        return x.transpose(0, 2, 3, 1) if self.kind == "hwc" else x

    def from_graph(self, a: np.ndarray) -> np.ndarray:
        """The graph's layout -> (B, C, H, W)."""
        if self.kind == "hwc":
            return a.transpose(0, 3, 1, 2)
        return a.reshape(len(a), *self.image)


@dataclass(frozen=True)
class Port:
    """One graph input or output: its name, its dimensions after the batch, and the batch (None: dynamic)."""

    name: str
    dims: tuple[int | str, ...]
    batch: int | None

    def describe(self) -> str:
        batch = "N" if self.batch is None else str(self.batch)
        return f"'{self.name}' of shape [{', '.join([batch, *map(str, self.dims)])}]"


@dataclass(frozen=True)
class GraphInfo:
    """What one graph takes and gives, its last operator per output, and the float32 values one example holds."""

    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    producers: dict
    values_per_example: int

    def describe(self) -> str:
        def ports(items, what):
            s = "" if len(items) == 1 else "s"
            return f"{len(items)} {what}{s} " + " and ".join(p.describe() for p in items)

        return f"{ports(self.inputs, 'input')}, {ports(self.outputs, 'output')}"


# -- reading a graph as data --------------------------------------------------------------------------------------
def read_graph(data: bytes, role: str):
    """The parsed, checked ModelProto of one file; CheckpointError naming the problem. role: "encoder"/"decoder"."""
    import onnx
    from google.protobuf.message import DecodeError

    if len(data) > MAX_ONNX_BYTES:
        raise CheckpointError(f"the {role} file is {len(data) / 2**20:.0f} MB; an ONNX file is at most "
                              f"{MAX_ONNX_BYTES // 2**20} MB here")
    if data[:4] == b"PK\x03\x04":
        raise CheckpointError(f"the {role} file is a zip archive, not ONNX: a PyTorch .pt file is uploaded as a "
                              "checkpoint, not as an ONNX encoder or decoder")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"the {role} file is not an ONNX model (it cannot be parsed: {_first_line(exc)}); "
                              "export it with torch.onnx.export or your framework's ONNX exporter") from None
    if model.ir_version <= 0 or not model.graph.node or not model.graph.output:
        raise CheckpointError(f"the {role} file is not an ONNX model (no graph in it): export it with "
                              "torch.onnx.export or your framework's ONNX exporter")
    _check_contents(model, role)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and the C++ checker's own errors
        raise CheckpointError(f"the {role} graph is not valid ONNX: {_first_line(exc)}") from None
    return model


def _check_contents(model, role: str) -> None:
    """Only plain operators of the standard domain, weights inside the file, at most MAX_PARAMETERS of them."""
    from onnx import TensorProto

    if model.functions:
        raise CheckpointError(f"the {role} graph defines its own functions ({model.functions[0].name}): only plain "
                              "ONNX operators can be run here; export without custom functions")
    nodes = [(_text(n.domain), _text(n.op_type)) for n in model.graph.node]
    foreign = sorted({f"{domain}.{op}" for domain, op in nodes if domain not in ("", "ai.onnx")})
    unknown = sorted({op for domain, op in nodes if domain in ("", "ai.onnx") and op not in ALLOWED_OPS})
    if foreign or unknown:
        raise CheckpointError(f"the {role} graph uses operators Latent Lab does not run: {', '.join((foreign + unknown)[:6])}"
                              "; plain layers (Gemm/MatMul, Conv, ConvTranspose, activations, Reshape) are supported")
    weights = list(model.graph.initializer)
    external = [t.name for t in weights if t.data_location == TensorProto.EXTERNAL]
    if external:
        raise CheckpointError(f"the {role} file keeps its weights in other files ({external[0]}): export it with "
                              "the weights inside (the default for models under 2 GB)")
    count = sum(math.prod(t.dims) for t in weights)
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"the {role} holds {count:,} weights, over the limit of {MAX_PARAMETERS:,}")


def _text(value) -> str:
    """A string field of the graph: a damaged file's invalid UTF-8 comes back from protobuf as bytes."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def graph_info(model, role: str) -> GraphInfo:
    """Inputs and outputs (names, dimensions, batch), the operator behind each output, and the cost of one example
    from the shapes inferred with the batch set to 1; CheckpointError when a shape cannot be inferred."""
    import onnx

    weights = {t.name for t in model.graph.initializer}
    inputs = tuple(_port(v, role) for v in model.graph.input if v.name not in weights)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for v in probe.graph.input:
        dims = v.type.tensor_type.shape.dim
        if v.name not in weights and len(dims) and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1
    inferred = _infer(_fold_shape_arithmetic(probe, role), role)
    shapes = {t.name: tuple(t.dims) for t in inferred.graph.initializer}
    values_info = {v.name: v for v in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}
    inputs_and_outputs = [i.name for i in inferred.graph.input if i.name not in weights]
    inputs_and_outputs += [o for node in inferred.graph.node for o in node.output]
    for name in inputs_and_outputs:  # every tensor the graph holds must have a known size
        v = values_info.get(name)
        if v is not None and _is_shape_arithmetic(v):
            continue  # a few integers (a Shape's output, sliced and concatenated): no cost
        known = _known_shape(v)
        if known is None:
            raise CheckpointError(f"the size of the {role}'s tensor '{name}' cannot be read from the graph, so its "
                                  "cost is unknown: export with fixed image sizes (only the batch may vary)")
        shapes[name] = known
    values = sum(math.prod(shape) for name, shape in shapes.items() if name not in weights)
    if values > MAX_ACTIVATION_VALUES:
        raise CheckpointError(f"the {role} holds {values:,} values per image on its way through, over the limit of "
                              f"{MAX_ACTIVATION_VALUES:,}: use smaller images or layers")
    macs = sum(_multiply_adds(node, shapes) for node in inferred.graph.node)
    if macs > MAX_MULTIPLY_ADDS:
        raise CheckpointError(f"the {role} takes {macs:,} multiply-adds per image, over the limit of "
                              f"{MAX_MULTIPLY_ADDS:,}: use smaller images or layers")
    # An exporter may name an output's sizes it could not tell ("Transpose10_dim_1"): the inferred ones replace them.
    outputs = tuple(_port(v, role, rest=_dims(inferred_v)[1:])
                    for v, inferred_v in zip(model.graph.output, inferred.graph.output))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    return GraphInfo(inputs, outputs, producers, values)


def _infer(model, role: str):
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise CheckpointError(f"the {role} graph's shapes cannot be worked out: {_first_line(exc)}") from None


def _known_shape(value) -> tuple[int, ...] | None:
    """A value's dimensions when the graph fixes all of them (its rank too), else None."""
    if value is None or not value.type.tensor_type.HasField("shape"):
        return None
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims) if all(d.HasField("dim_value") for d in dims) else None


SHAPE_OPS = frozenset("Shape Slice Concat Gather Unsqueeze Squeeze Mod Add Sub Mul Div Cast Reshape Identity".split())
MAX_SHAPE_VECTOR = 64  # an integer vector longer than this is not shape arithmetic


def _fold_shape_arithmetic(model, role: str):
    """The graph with the integer vectors it computes from its tensors' shapes (an exported nn.Unflatten: Shape ->
    Slice -> Concat -> Reshape) replaced by constants, so shape inference can size what follows. Only nodes whose
    inputs are known short integer vectors (or, for Shape, a tensor of known shape) are evaluated, by ONNX's
    reference evaluator, at a cost of a few integers each."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    inferred = _infer(model, role)
    known = {v.name: _known_shape(v) for v in [*inferred.graph.input, *inferred.graph.value_info]}
    small = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
             if t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and math.prod(t.dims) <= MAX_SHAPE_VECTOR
             and len(t.dims) <= 1}
    nodes = []
    for node in model.graph.node:
        value = None
        if node.op_type == "Constant":
            value = _small_vector(numpy_helper.to_array(node.attribute[0].t)) if node.attribute and \
                node.attribute[0].type == onnx.AttributeProto.TENSOR else None
        elif node.op_type == "Shape" and known.get(node.input[0]) is not None:
            attrs = {a.name: a.i for a in node.attribute}
            value = np.array(known[node.input[0]], np.int64)[attrs.get("start", 0):attrs.get("end", None)]
        elif node.op_type in SHAPE_OPS and node.input and all(not i or i in small for i in node.input):
            try:
                value = _small_vector(ReferenceEvaluator(node).run(None, {i: small[i] for i in node.input if i})[0])
            except Exception:  # left to shape inference, which names what it cannot size
                value = None
        if value is None or len(node.output) != 1:
            nodes.append(node)
            continue
        small[node.output[0]] = value
        nodes.append(onnx.helper.make_node("Constant", [], [node.output[0]], value=numpy_helper.from_array(
            value, name=node.output[0])))
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    del folded.graph.node[:]
    folded.graph.node.extend(nodes)
    return folded


def _small_vector(value) -> np.ndarray | None:
    """value as an int64 vector when it is a short integer vector (or scalar), else None."""
    value = np.asarray(value)
    if value.dtype.kind not in "iu" or value.ndim > 1 or value.size > MAX_SHAPE_VECTOR:
        return None
    return value.astype(np.int64)


def _is_shape_arithmetic(value) -> bool:
    """An integer vector, as the Shape -> Slice -> Concat -> Reshape of an exported Unflatten or view computes: its
    length is at most a tensor's rank (operators that build longer ones, like Range, are not accepted)."""
    from onnx import TensorProto

    tensor = value.type.tensor_type
    return tensor.elem_type in (TensorProto.INT64, TensorProto.INT32) and len(tensor.shape.dim) <= 1


def _multiply_adds(node, shapes: dict[str, tuple[int, ...]]) -> int:
    """The multiply-adds of one example through a node, from the inferred shapes: the products (Gemm, MatMul) and
    the convolutions, which is where a network's time goes; every other operator costs about its output's size."""
    out = math.prod(shapes.get(node.output[0], ())) if node.output else 0
    first = shapes.get(node.input[0], ()) if node.input else ()
    weight = shapes.get(node.input[1], ()) if len(node.input) > 1 else ()
    if node.op_type in ("Gemm", "MatMul") and first:
        transposed = any(a.name == "transA" and a.i for a in node.attribute)
        return out * (first[-2] if transposed and len(first) > 1 else first[-1])
    if node.op_type == "Conv" and len(weight) > 2:
        return out * math.prod(weight[1:])  # (C_out, C_in / groups, kh, kw): each output sums C_in/groups x kh x kw
    if node.op_type == "ConvTranspose" and len(weight) > 2:
        return math.prod(first) * math.prod(weight[1:])  # each input scatters into C_out/groups x kh x kw outputs
    return out


def _dims(value) -> list[int | str]:
    """A value's declared dimensions: sizes, or names (or "?") where the graph gives none."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]


def _port(value, role: str, rest: list | None = None) -> Port:
    from onnx import TensorProto

    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or tensor.elem_type != TensorProto.FLOAT:
        kind = TensorProto.DataType.Name(tensor.elem_type) if value.type.HasField("tensor_type") else "not a tensor"
        raise CheckpointError(f"the {role}'s '{value.name}' is {kind}: inputs and outputs must be float32 tensors")
    dims = _dims(value)
    if dims and rest is not None and len(rest) == len(dims) - 1:
        dims = [dims[0], *rest]
    if not dims:
        raise CheckpointError(f"the {role}'s '{value.name}' has no shape: export with a batch dimension")
    batch = dims[0] if isinstance(dims[0], int) else None
    if batch is not None and not 1 <= batch <= MAX_FIXED_BATCH:
        raise CheckpointError(f"the {role}'s '{value.name}' has a batch of {batch}: export with a batch of 1 or a "
                              "dynamic batch (dynamic_axes={'x': {0: 'batch'}})")
    return Port(value.name, tuple(dims[1:]), batch)


# -- recognising the pair ----------------------------------------------------------------------------------------
def image_layout(dims: tuple, input_shape: tuple[int, int, int] | None, where: str) -> Layout:
    """The layout of an image held with these dimensions (after the batch); input_shape: (C, H, W) of a flat one."""
    if not all(isinstance(d, int) for d in dims):
        raise CheckpointError(f"{where} has dimensions {list(dims)} with names instead of sizes: only the batch may "
                              "vary, export with a fixed image size")
    if any(d > 1 << 20 for d in dims):
        raise CheckpointError(f"{where} declares dimensions {list(dims)}, far beyond any image Latent Lab holds")
    if len(dims) == 1:
        if input_shape is not None:
            if math.prod(input_shape) != dims[0]:
                raise CheckpointError(f"{where} has {dims[0]} values but the image shape given is {tuple(input_shape)}"
                                      f" ({math.prod(input_shape)} pixels)")
            return Layout("flat", tuple(input_shape))
        side = math.isqrt(dims[0])
        if side * side != dims[0]:
            raise CheckpointError(f"{where} has {dims[0]} values, which is not a square greyscale image: give the "
                                  "image shape (channels, height, width)")
        return Layout("flat", (1, side, side))
    if len(dims) == 2:
        return Layout("hw", (1, *dims))
    if len(dims) == 3 and dims[0] in (1, 3):
        return Layout("chw", tuple(dims))
    if len(dims) == 3 and dims[2] in (1, 3):
        return Layout("hwc", (dims[2], dims[0], dims[1]))
    raise CheckpointError(f"{where} is not an image: expected [N, C*H*W], [N, H, W], [N, C, H, W] or [N, H, W, C] "
                          "with 1 or 3 channels")


@dataclass(frozen=True)
class PairSpec:
    """What was recognised in an encoder and decoder pair: how to run it and what to tell the user."""

    config: ModelConfig
    encoder_input: Port
    encoder_layout: Layout
    mean: str
    logvar: str | None
    decoder_input: Port
    decoder_output: Port
    decoder_layout: Layout
    probabilities: bool  # the decoder gives probabilities (else logits)
    encoder_values: int
    decoder_values: int
    assumed: str
    decoder_graph: object = None  # the decoder's ModelProto (for browser_layers)


def recognise_pair(encoder, decoder, *, input_shape: tuple[int, int, int] | None = None,
                   decoder_output: str = "auto") -> PairSpec:
    """The pair's spec from two checked graphs (read_graph); CheckpointError naming what was found and missing."""
    if decoder_output not in DECODER_OUTPUTS:
        raise CheckpointError(f"the decoder's output must be one of {', '.join(DECODER_OUTPUTS)}, got {decoder_output!r}")
    enc, dec = graph_info(encoder, "encoder"), graph_info(decoder, "decoder")
    _check_not_swapped(enc, dec)
    if len(enc.inputs) != 1:
        raise CheckpointError(f"the encoder has {enc.describe()}; an encoder must take one input, the image")
    layout = image_layout(enc.inputs[0].dims, input_shape,
                          f"the encoder's input {enc.inputs[0].describe()}")
    mean, logvar, latent = _heads(enc)
    try:  # the image and code sizes against the server's limits, before the decoder is looked at
        config = ModelConfig(kind="vae" if logvar else "ae", arch="onnx", input_shape=layout.image,
                             latent_dim=latent, hidden=())  # no layers of ours: they are in the graphs
    except UserInputError as exc:
        raise CheckpointError(f"recognised an encoder ({enc.describe()}) that Latent Lab cannot hold: {exc}") from None
    if len(dec.inputs) != 1 or len(dec.inputs[0].dims) != 1 or dec.inputs[0].dims[0] != latent:
        raise CheckpointError(f"the decoder has {dec.describe()}; a decoder must take one input of shape [N, {latent}]"
                              f" (the encoder's code has {latent} numbers)")
    if len(dec.outputs) != 1:
        raise CheckpointError(f"the decoder has {dec.describe()}; a decoder must give one output, the image")
    out = dec.outputs[0]
    flat = len(out.dims) == 1
    if flat and out.dims[0] != math.prod(layout.image):
        raise CheckpointError(f"the decoder gives {out.describe()} but the encoder takes images of {layout.image} "
                              f"(C, H, W; {math.prod(layout.image)} values): they are not a pair")
    out_layout = image_layout(out.dims, layout.image if flat else None, f"the decoder's output {out.describe()}")
    if out_layout.image != layout.image:
        raise CheckpointError(f"the decoder gives images of {out_layout.image} (C, H, W) but the encoder takes "
                              f"{layout.image}: they are not a pair")
    last = dec.producers.get(dec.outputs[0].name, "?")
    probabilities = decoder_output == "probabilities" or (decoder_output == "auto" and last == "Sigmoid")
    return PairSpec(config, enc.inputs[0], layout, mean, logvar, dec.inputs[0], dec.outputs[0], out_layout,
                    probabilities, enc.values_per_example, dec.values_per_example,
                    _assumptions(layout, mean, logvar, last, decoder_output, probabilities), decoder)


def _check_not_swapped(enc: GraphInfo, dec: GraphInfo) -> None:
    """A decoder given as the encoder (and the other way round) is the easiest mistake: say so."""
    looks_like_code = len(enc.inputs) == 1 and len(enc.inputs[0].dims) == 1 and enc.inputs[0].dims[0] in (
        [d for p in dec.outputs for d in p.dims[-1:]])
    if looks_like_code and len(dec.outputs) == 2:
        raise CheckpointError(f"the encoder has {enc.describe()} and the decoder has {dec.describe()}: the files look "
                              "swapped; give the encoder (image -> code) first")


def _heads(enc: GraphInfo) -> tuple[str, str | None, int]:
    """(mean output, log-variance output or None, latent size): two outputs of [N, D] (named, else in order), or one
    output [N, D] for an autoencoder's code."""
    outs = enc.outputs
    if len(outs) not in (1, 2) or not all(len(p.dims) == 1 and isinstance(p.dims[0], int) for p in outs):
        raise CheckpointError(f"the encoder has {enc.describe()}; an encoder must give mu and logvar, two outputs of "
                              "shape [N, D] (or one code [N, D] for an autoencoder)")
    latent = outs[0].dims[0]
    if len(outs) == 1:
        return outs[0].name, None, latent
    if outs[1].dims[0] != latent:
        raise CheckpointError(f"the encoder has {enc.describe()}; mu and logvar must have the same size")
    first, second = outs[0].name, outs[1].name
    if _named(first, LOGVAR_NAMES) and not _named(second, LOGVAR_NAMES):
        first, second = second, first  # e.g. outputs exported as (logvar, mu)
    return first, second, latent


def _named(name: str, names: tuple[str, ...]) -> bool:
    return name.lower().replace("-", "_").rsplit("/", 1)[-1] in names


def _assumptions(layout: Layout, mean: str, logvar: str | None, last: str, choice: str, probabilities: bool) -> str:
    """What the graphs cannot say and was assumed, in words for the card."""
    parts = []
    if logvar:
        parts.append(f"'{mean}' is the mean and '{logvar}' the log-variance of a diagonal Gaussian posterior")
    else:
        parts.append(f"one code '{mean}' per image: an autoencoder (no posterior, no ELBO)")
    if layout.kind == "flat":
        parts.append(f"the flat input holds a {'×'.join(map(str, layout.image))} image row by row (PyTorch's flatten)")
    if choice == "auto":
        parts.append("the decoder gives probabilities (it ends in a Sigmoid)" if probabilities else
                     f"the decoder gives logits (its output comes from {last}, not a Sigmoid; choose 'probabilities' "
                     "if it squashes them another way)")
    else:
        parts.append(f"the decoder gives {choice} (as chosen)")
    parts.append("a Bernoulli likelihood on pixels in [0, 1]")
    return "; ".join(parts)


# -- the browser's decoder ----------------------------------------------------------------------------------------
def browser_layers(spec: PairSpec) -> nn.Sequential | None:
    """The decoder as Latent Lab's own layers (Linear, ReLU, Unflatten; vae_core.export sends them to the browser)
    when its graph is a plain chain of Gemm and Relu from the code to the image, ending in a Sigmoid when it gives
    probabilities, as torch.onnx.export writes an MLP decoder; else None. The weights are the graph's own."""
    from onnx import numpy_helper

    graph = spec.decoder_graph.graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    layers: list[nn.Module] = []
    current, nodes = spec.decoder_input.name, list(graph.node)
    if spec.probabilities:
        if not nodes or nodes[-1].op_type != "Sigmoid":
            return None
        nodes = nodes[:-1]  # the browser applies the sigmoid itself
    for node in nodes:
        if not node.input or node.input[0] != current or len(node.output) != 1:
            return None
        if node.op_type == "Relu":
            layers.append(nn.ReLU())
        elif node.op_type == "Gemm":
            linear = _linear(node, weights)
            if linear is None:
                return None
            layers.append(linear)
        else:
            return None
        current = node.output[0]
    if spec.decoder_layout.kind not in ("flat", "chw") or not layers or not isinstance(layers[-1], nn.Linear):
        return None
    if layers[-1].out_features != math.prod(spec.config.input_shape):
        return None
    return nn.Sequential(*layers, nn.Unflatten(1, tuple(spec.config.input_shape)))


def _linear(node, weights: dict) -> nn.Linear | None:
    """nn.Linear of a Gemm y = x W^T + b (transB = 1, as PyTorch exports it; transB = 0 transposed), or None."""
    attrs = {a.name: (a.f if a.type == a.FLOAT else a.i) for a in node.attribute}
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
        return None
    if len(node.input) != 3 or node.input[1] not in weights or node.input[2] not in weights:
        return None
    w, b = weights[node.input[1]], weights[node.input[2]]
    w = w if attrs.get("transB", 0) else w.T
    if w.ndim != 2 or b.shape != (w.shape[0],) or w.dtype != np.float32 or b.dtype != np.float32:
        return None
    linear = nn.Linear(w.shape[1], w.shape[0], device="meta")
    linear.weight = nn.Parameter(torch.from_numpy(np.array(w, np.float32, order="C")), requires_grad=False)
    linear.bias = nn.Parameter(torch.from_numpy(np.array(b, np.float32)), requires_grad=False)
    return linear


# -- running it ----------------------------------------------------------------------------------------------------
_SESSIONS: OrderedDict[str, object] = OrderedDict()
_SESSIONS_LOCK = threading.Lock()
MAX_SESSIONS = 16


def runtime_session(data: bytes):
    """An ONNX Runtime session for a checked graph's bytes, shared by every model with the same file (an LRU of
    MAX_SESSIONS): CPU provider, one intra-op thread (the server's cores belong to all its users)."""
    import onnxruntime as ort

    key = hashlib.sha256(data).hexdigest()
    with _SESSIONS_LOCK:
        if key in _SESSIONS:
            _SESSIONS.move_to_end(key)
            return _SESSIONS[key]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckpointError(f"ONNX Runtime cannot load the graph: {_first_line(exc)}") from None
    with _SESSIONS_LOCK:
        _SESSIONS[key] = session
        while len(_SESSIONS) > MAX_SESSIONS:
            _SESSIONS.popitem(last=False)
    return session


def _chunk_size(port: Port, values_per_example: int) -> int:
    """Examples per run: the graph's fixed batch, else as many as the activation budget allows."""
    if port.batch is not None:
        return port.batch
    return max(1, min(1024, ESTIMATE_LIMIT_BYTES // (4 * max(1, values_per_example))))


def run_graph(session, port: Port, array: np.ndarray, values_per_example: int) -> list[np.ndarray]:
    """Every output of `session` for a batch, run in chunks (padded to a fixed batch where the graph has one)."""
    size = _chunk_size(port, values_per_example)
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(array), size):
        chunk = np.ascontiguousarray(array[start:start + size], dtype=np.float32)
        n = len(chunk)
        if port.batch is not None and n < port.batch:
            chunk = np.concatenate([chunk, np.zeros((port.batch - n, *chunk.shape[1:]), np.float32)])
        parts.append([o[:n] for o in session.run(None, {port.name: chunk})])
    if not parts:
        return [np.zeros((0,), np.float32)] * len(session.get_outputs())
    return [np.concatenate(outs) for outs in zip(*parts)]


class OnnxModel(LatentVariableModel):
    """An encoder and decoder pair run by ONNX Runtime, with the interface of the PyTorch models (encode, decode,
    decode_mean, forward -> ModelOutput). It has no PyTorch parameters: nothing in it trains."""

    def __init__(self, spec: PairSpec, encoder_bytes: bytes, decoder_bytes: bytes):
        nn.Module.__init__(self)  # not LatentVariableModel.__init__: there are no PyTorch layers to build
        self.config = spec.config
        self.spec = spec
        self.log_sigma = None
        self.onnx_files = {"encoder": encoder_bytes, "decoder": decoder_bytes}
        # Not a submodule (its weights are the graph's, not checkpoint weights of ours); None: decoded on the server.
        self.__dict__["browser_decoder"] = browser_layers(spec)
        self._encoder = runtime_session(encoder_bytes)
        self._decoder = runtime_session(decoder_bytes)
        names = [o.name for o in self._encoder.get_outputs()]
        self._heads = [names.index(spec.mean)] + ([names.index(spec.logvar)] if spec.logvar else [])

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """mu and logvar (B, D) for images (B, C, H, W); logvar is None for an autoencoder."""
        array = self.spec.encoder_layout.to_graph(x.detach().to("cpu", torch.float32).numpy())
        outs = run_graph(self._encoder, self.spec.encoder_input, array, self.spec.encoder_values)
        mu, *logvar = (torch.from_numpy(np.asarray(outs[i], np.float32).reshape(len(x), -1)) for i in self._heads)
        return mu, (logvar[0] if logvar else None)

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoded image in [0, 1] (B, C, H, W)."""
        out = self._decode(z)
        return out if self.spec.probabilities else torch.sigmoid(out)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder logits (B, C, H, W). Probabilities p become log p - log(1 - p), each log clamped at -100 as
        PyTorch's binary_cross_entropy clamps it, so the Bernoulli likelihood is the one their own loss computes."""
        out = self._decode(z)
        if not self.spec.probabilities:
            return out
        p = out.double().clamp(0, 1)  # a float32 sigmoid may overshoot by an ulp: log1p(-p) must stay defined
        logits = torch.log(p).clamp(min=-100) - torch.log1p(-p).clamp(min=-100)
        return logits.float()

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        array = z.detach().to("cpu", torch.float32).numpy()
        (out,) = run_graph(self._decoder, self.spec.decoder_input, array, self.spec.decoder_values)
        return torch.from_numpy(self.spec.decoder_layout.from_graph(np.asarray(out, np.float32)).copy())


# -- from files to a model, and back -------------------------------------------------------------------------------
def onnx_model(encoder_bytes: bytes, decoder_bytes: bytes, *, input_shape: tuple[int, int, int] | None = None,
               decoder_output: str = "auto") -> OnnxModel:
    """The model of an encoder and decoder pair, checked and run once on a probe; CheckpointError if refused."""
    try:
        spec = recognise_pair(read_graph(encoder_bytes, "encoder"), read_graph(decoder_bytes, "decoder"),
                              input_shape=input_shape, decoder_output=decoder_output)
    except UserInputError:
        raise
    except Exception as exc:  # a damaged graph that parses can still hold fields no check foresaw: one message
        raise CheckpointError(f"the pair cannot be read, a file is damaged ({type(exc).__name__}: "
                              f"{_first_line(exc)}): export the encoder and decoder again") from None
    model = OnnxModel(spec, bytes(encoder_bytes), bytes(decoder_bytes))
    _probe(model, decoder_output)
    return model


def _probe(model: OnnxModel, decoder_output: str) -> None:
    """Run both graphs on two examples: they must run, give the declared shapes and finite numbers, and a decoder
    said to give probabilities must give numbers in [0, 1]."""
    config = model.config
    x = torch.full((2, *config.input_shape), 0.5)
    z = torch.linspace(-1, 1, 2 * config.latent_dim).view(2, config.latent_dim)
    try:
        mu, logvar = model.encode(x)
        image = model._decode(z)
    except UserInputError:
        raise
    except Exception as exc:  # onnxruntime's errors (a shape the graph rejects at run time) and reshape errors
        raise CheckpointError(f"the pair does not run on an image of {config.input_shape} (C, H, W): "
                              f"{_first_line(exc)}") from None
    if mu.shape != (2, config.latent_dim) or (logvar is not None and logvar.shape != mu.shape):
        raise CheckpointError(f"the encoder gives codes of shape {list(mu.shape)} for 2 images where its graph "
                              f"declares [2, {config.latent_dim}]: the graph does not do what it says")
    if not all(torch.isfinite(t).all() for t in (mu, image, *([logvar] if logvar is not None else []))):
        raise CheckpointError("the pair gives NaN or infinite values on a plain grey image: the model is unusable")
    outside = float(torch.maximum(image.min().neg(), image.max() - 1).clamp(min=0))
    if model.spec.probabilities and outside > 1e-5:
        said = "you chose probabilities" if decoder_output == "probabilities" else "it ends in a Sigmoid"
        raise CheckpointError(f"the decoder's output goes outside [0, 1] (by {outside:.3g}) although {said}: choose "
                              "'logits'")


def imported_pair(encoder_bytes: bytes, decoder_bytes: bytes, *, file_names: tuple[str, str] = ("", ""),
                  input_shape: tuple[int, int, int] | None = None, decoder_output: str = "auto"
                  ) -> tuple[OnnxModel, dict]:
    """(model, meta) for a pair; the meta says where it came from (the files' names), what each graph takes and
    gives, and what was assumed. CheckpointError if refused."""
    model = onnx_model(encoder_bytes, decoder_bytes, input_shape=input_shape, decoder_output=decoder_output)
    spec = model.spec
    recognised = {
        "importer": "onnx", "layout": "an ONNX encoder and decoder pair, run with ONNX Runtime",
        "files": [str(n)[:120] for n in file_names if n],
        "encoder": [f"input {spec.encoder_input.describe()}"], "mean": spec.mean, "logvar": spec.logvar or "",
        "decoder": [f"input {spec.decoder_input.describe()}", f"output {spec.decoder_output.describe()}"],
        "decoder_output": "probabilities" if spec.probabilities else "logits", "assumed": spec.assumed,
    }
    kind = "VAE" if spec.logvar else "autoencoder"
    meta = {"name": f"Imported ONNX {kind}, z={spec.config.latent_dim}", "imported": recognised,
            "about": f"Imported from an ONNX encoder and decoder pair ({', '.join(recognised['files']) or 'two files'})"
                     ", run with ONNX Runtime.",  # what was assumed is in "imported", which the card shows
            **imported_data_meta(spec.config.input_shape)}
    return model, meta


def onnx_payload(encoder_bytes: bytes, decoder_bytes: bytes, **options) -> dict:
    """A Latent Lab checkpoint payload for a pair (options: those of imported_pair)."""
    from vae_core.checkpoint import checkpoint_payload

    return checkpoint_payload(*imported_pair(encoder_bytes, decoder_bytes, **options))


def stored_files(model: OnnxModel) -> dict:
    """The checkpoint's "onnx" entry: the two files as uint8 tensors (stored as records, not in the pickle) and the
    decoder's output kind."""
    return {role: torch.frombuffer(bytearray(data), dtype=torch.uint8) for role, data in model.onnx_files.items()
            } | {"decoder_output": "probabilities" if model.spec.probabilities else "logits"}


def model_from_stored(stored: object, config: ModelConfig) -> OnnxModel:
    """The model of a checkpoint's "onnx" entry, read by the same checks as an upload; the graphs must be the model
    its config says (the file is untrusted)."""
    if not isinstance(stored, dict) or not all(isinstance(stored.get(k), torch.Tensor) and stored[k].dtype == torch.uint8
                                               and stored[k].dim() == 1 for k in ("encoder", "decoder")):
        raise CheckpointError("the checkpoint says it holds an ONNX pair but its encoder and decoder files are missing"
                              ": the file was edited or is damaged")
    choice = stored.get("decoder_output")
    if choice not in ("probabilities", "logits"):
        raise CheckpointError(f"the checkpoint's decoder output kind {choice!r} is not probabilities or logits")
    files = [stored[k].numpy().tobytes() for k in ("encoder", "decoder")]
    model = onnx_model(*files, input_shape=tuple(config.input_shape), decoder_output=choice)
    if model.config != config:
        raise CheckpointError(f"the checkpoint's ONNX graphs are a {model.config.label} model of "
                              f"{model.config.input_shape} but its config says {config.label} of {config.input_shape}"
                              ": the file was edited or is damaged")
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:240] if text else type(exc).__name__
