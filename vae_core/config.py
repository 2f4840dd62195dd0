"""Configuration dataclasses for models and training, serialisable to JSON-able dicts and back."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeVar

from vae_core.errors import ConfigError

KINDS = ("ae", "vae", "cvae", "wae", "tcvae")
DETERMINISTIC_KINDS = ("ae", "wae")  # the encoder gives one code per input: no posterior q(z|x), no ELBO
# λ of the WAE-MMD. Tolstikhin et al. use λ = 10 on MNIST with a squared error scaled by 0.05, about 0.5-1 per
# image; our reconstruction is a Bernoulli NLL summed over the pixels (about 60-100 nats on MNIST), ~100x larger,
# so the paper's balance needs a λ about 100x larger. Measured on MNIST (MLP 512-256, z = 8, 5 epochs, seed 0; 1,000
# prior samples judged by the shipped classifier, vae_core.judge): λ = 10 recon 89.1 nats, 38% recognised, FID 224;
# λ = 100 recon 92.1, 46%, FID 185; λ = 1000 recon 103.9, 47%, FID 191. λ = 100 gives the best samples for 3 nats.
DEFAULT_MMD_WEIGHT = 100.0
# "onnx": a model imported as an ONNX encoder and decoder pair (vae_core.onnx_import): its layers are its graphs,
# run by ONNX Runtime; it has no PyTorch weights and is never built or trained here.
ARCHS = ("mlp", "conv", "onnx")
LIKELIHOODS = ("bernoulli", "gaussian")

# Upper bounds on a model's settings. A checkpoint is untrusted input: these are checked (ModelConfig validation)
# before a model is built or a weight is read, so that no file can make the app build a model that costs more than
# the budget of vae_core/budget.py (256 MB, 2 s). Each bound admits every bundled model (checkpoints/*.pt: MLPs up
# to 784-512-256 and conv stacks up to 32-64-64) and everything the Train page offers for the built-in data sets
# (sides 8 to 64, MLP presets up to 512-256, latent sizes up to 32, conv stacks up to 32-32-64-64, 10 classes),
# with room to spare for the command line.
MAX_INPUT_SIDE = 256  # pixels per side: the data loaders' own limit (vae_core.data.MAX_SIDE)
MAX_LATENT_DIM = 512
MAX_MLP_LAYERS = 8  # hidden layers of the MLP encoder (mirrored by the decoder)
MAX_MLP_WIDTH = 4096  # units per hidden layer
MAX_CONV_LAYERS = 6  # stride-2 conv layers: 256 pixels down to 4
MAX_CONV_CHANNELS = 512
MAX_CONV_FC = 4096  # units of the conv model's dense layer
MAX_CLASSES = 100  # the data loaders' own limit (vae_core.data.MAX_CLASSES)
# 16 M float32 parameters are 64 MB: the upload limit (server.maxUploadSize). Loading holds the file's bytes and the
# weights once (the model is built on the meta device and takes the loaded tensors): about 128 MB at the bound.
# The largest Train-page model on built-in data is the 512-256 MLP on 64x64 shapes, 4.5 M parameters; 3x64x64
# uploads with that preset make 12.9 M. 3x256x256 with it (202 M, finding 6 of issue 15) is refused.
MAX_PARAMETERS = 16_000_000
# Activations of one example through the encoder or the decoder, in float32 values (each layer's output counted,
# see activation_values). Decoding n samples at once takes about n x 4 bytes x decoder values; the bound lets any
# admitted model decode DECODE_SAMPLES_GUARANTEED samples in one batch within the budget (max_batch_size chunks
# larger requests). The default conv stack on 3x256x256 needs 1.9 M; a 4096x4096 input fails the side bound first.
MAX_ACTIVATION_VALUES = 3_000_000
DECODE_SAMPLES_GUARANTEED = 16

T = TypeVar("T", bound="_Serialisable")


class _Serialisable:
    """to_dict / from_dict for flat dataclasses whose fields are numbers, strings, bools and tuples."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a dict of settings, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(**values)
        except TypeError as exc:  # a wrongly typed value deep inside __post_init__
            raise ConfigError(f"bad {cls.__name__}: {exc}") from None


@dataclass(frozen=True)
class ModelConfig(_Serialisable):
    """What the model is: its family, its encoder/decoder architecture and its objective.

    kind: "ae" (deterministic code, no KL), "vae" (β = 1 is the plain VAE, other β the β-VAE),
          "cvae" (encoder and decoder also see the one-hot label),
          "wae" (WAE-MMD, Tolstikhin et al. 2018: deterministic code, the KL replaced by mmd_weight x MMD to the prior),
          "tcvae" (β-TCVAE, Chen et al. 2018: the KL split into MI + TC + dimension-wise KL, β on the TC only).
    arch: "mlp" (hidden sizes in `hidden`, mirrored in the decoder) or "conv" (stride-2 convolutions with
          `conv_channels`, mirrored by transposed convolutions; H and W divisible by 2**len(conv_channels)).
    """

    kind: str = "vae"
    arch: str = "mlp"
    input_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W)
    latent_dim: int = 2
    hidden: tuple[int, ...] = (256, 128)  # MLP hidden sizes, input side first
    conv_channels: tuple[int, ...] = (32, 64)  # conv channels, input side first
    conv_fc: int = 256  # width of the dense layer between the conv stack and the latent heads
    num_classes: int = 0  # > 0 only for the CVAE
    likelihood: str = "bernoulli"
    gaussian_sigma: float = 0.1  # fixed σ of the gaussian likelihood (ignored when learn_sigma)
    learn_sigma: bool = False  # learn one σ for all pixels instead
    beta: float = 1.0  # weight of the KL term (of the total correlation for tcvae); 1 is the ELBO
    mmd_weight: float = DEFAULT_MMD_WEIGHT  # λ of the WAE's MMD penalty (kind "wae" only)

    def __post_init__(self) -> None:
        _check(isinstance(self.kind, str) and self.kind in KINDS,
               f"model kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        _check(isinstance(self.arch, str) and self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        _check(isinstance(self.likelihood, str) and self.likelihood in LIKELIHOODS,
               f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        _check(isinstance(self.input_shape, (tuple, list)) and len(self.input_shape) == 3
               and all(_is_int(v) and v > 0 for v in self.input_shape),
               f"input_shape must be three positive integers (C, H, W), got {self.input_shape}")
        _check(self.input_shape[0] in (1, 3), f"images must have 1 or 3 channels, got {self.input_shape[0]}")
        _check(max(self.input_shape[1:]) <= MAX_INPUT_SIDE,
               f"images of {self.input_shape[1]}x{self.input_shape[2]} pixels are over the {MAX_INPUT_SIDE}-pixel "
               "limit per side: resize the data to a smaller image size")
        _check(_is_int(self.latent_dim) and 1 <= self.latent_dim <= MAX_LATENT_DIM,
               f"latent_dim must be 1..{MAX_LATENT_DIM}, got {self.latent_dim}")
        _check(isinstance(self.hidden, (tuple, list)) and len(self.hidden) <= MAX_MLP_LAYERS
               and all(_is_int(h) and 1 <= h <= MAX_MLP_WIDTH for h in self.hidden),
               f"hidden sizes must be at most {MAX_MLP_LAYERS} layers of 1..{MAX_MLP_WIDTH} units, got {self.hidden}")
        _check(self.arch != "mlp" or len(self.hidden) >= 1, "an MLP needs at least one hidden layer (e.g. --hidden 400)")
        _check(isinstance(self.conv_channels, (tuple, list)) and 1 <= len(self.conv_channels) <= MAX_CONV_LAYERS
               and all(_is_int(c) and 1 <= c <= MAX_CONV_CHANNELS for c in self.conv_channels),
               f"conv_channels must be 1..{MAX_CONV_LAYERS} layers of 1..{MAX_CONV_CHANNELS} channels, "
               f"got {self.conv_channels}")
        _check(_is_int(self.conv_fc) and 1 <= self.conv_fc <= MAX_CONV_FC,
               f"conv_fc must be 1..{MAX_CONV_FC} units, got {self.conv_fc!r}")
        if self.arch == "conv":
            factor = 2 ** len(self.conv_channels)
            _, h, w = self.input_shape
            _check(h % factor == 0 and w % factor == 0,
                   f"a conv model with {len(self.conv_channels)} stride-2 layers needs H and W divisible by {factor}, "
                   f"got {h}x{w}: use fewer conv_channels or the mlp arch")
        _check(_is_int(self.num_classes) and 0 <= self.num_classes <= MAX_CLASSES,
               f"num_classes must be 0..{MAX_CLASSES}, got {self.num_classes!r}")
        _check(self.kind != "cvae" or self.num_classes >= 2, "a CVAE needs labelled data with at least 2 classes")
        _check(_is_number(self.beta) and 0 <= self.beta <= 1000, f"beta must be between 0 and 1000, got {self.beta}")
        _check(_is_number(self.mmd_weight) and 0 <= self.mmd_weight <= 1e6,
               f"mmd_weight must be between 0 and 1e6, got {self.mmd_weight}")
        _check(_is_number(self.gaussian_sigma) and 1e-6 <= self.gaussian_sigma <= 1e6,
               f"gaussian_sigma must be in [1e-6, 1e6], got {self.gaussian_sigma}")
        _check(isinstance(self.learn_sigma, bool), f"learn_sigma must be true or false, got {self.learn_sigma!r}")
        _check_model_cost(self)

    @property
    def is_conditional(self) -> bool:
        return self.kind == "cvae"

    @property
    def is_variational(self) -> bool:
        """Whether the encoder gives a posterior q(z|x) (a logvar head): then the ELBO and the KL are defined."""
        return self.kind not in DETERMINISTIC_KINDS

    @property
    def is_generative(self) -> bool:
        """Whether the codes are trained towards the prior N(0, I), so decoding prior samples makes sense (not the AE)."""
        return self.kind != "ae"

    @property
    def input_size(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def label(self) -> str:
        """Short human name, e.g. 'β-VAE (β=4), mlp, z=2'."""
        return f"{self.family}, {self.arch}, z={self.latent_dim}"

    @property
    def family(self) -> str:
        """The model family with its weight, e.g. 'β-VAE (β=4)', 'WAE (λ=100)', 'β-TCVAE (β=6)'."""
        return {"ae": "AE", "cvae": "CVAE", "vae": "VAE" if self.beta == 1 else f"β-VAE (β={self.beta:g})",
                "wae": f"WAE (λ={self.mmd_weight:g})", "tcvae": f"β-TCVAE (β={self.beta:g})"}[self.kind]


@dataclass(frozen=True)
class TrainConfig(_Serialisable):
    """How the model is trained. Mini-batch Adam; the KL weight can warm up linearly from 0 to β."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    kl_warmup_epochs: float = 0.0  # epochs over which the KL weight rises linearly from 0 to β
    device: str = "auto"  # auto: cuda, then mps, then cpu
    num_threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    steps_per_event: int = 10  # a "step" event every this many mini-batches

    def __post_init__(self) -> None:
        _check(_is_int(self.epochs) and 1 <= self.epochs <= 10_000, f"epochs must be 1..10000, got {self.epochs}")
        _check(_is_int(self.batch_size) and 1 <= self.batch_size <= 65_536, f"batch size must be 1..65536, got {self.batch_size}")
        _check(_is_number(self.lr) and 0 < self.lr <= 10, f"learning rate must be in (0, 10], got {self.lr}")
        _check(_is_int(self.seed) and 0 <= self.seed < 2**63, f"seed must be a non-negative integer, got {self.seed}")
        _check(_is_number(self.kl_warmup_epochs) and self.kl_warmup_epochs >= 0,
               f"KL warm-up must be >= 0 epochs, got {self.kl_warmup_epochs}")
        _check(self.device in ("auto", "cpu", "cuda", "mps"), f"device must be auto, cpu, cuda or mps, got {self.device!r}")
        _check(_is_int(self.num_threads) and 0 <= self.num_threads <= 256, f"num_threads must be 0..256, got {self.num_threads}")
        _check(_is_int(self.steps_per_event) and self.steps_per_event >= 1, "steps_per_event must be >= 1")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_model_cost(config: ModelConfig) -> None:
    """The bounds that depend on several settings at once: parameters and activations per example."""
    params = estimate_parameters(config)
    _check(params <= MAX_PARAMETERS,
           f"this model would have {params:,} parameters, over the limit of {MAX_PARAMETERS:,}: use smaller hidden "
           "layers, fewer conv channels or smaller images")
    encoder, decoder = activation_values(config)
    _check(max(encoder, decoder) <= MAX_ACTIVATION_VALUES,
           f"this model would hold {max(encoder, decoder):,} activations per image, over the limit of "
           f"{MAX_ACTIVATION_VALUES:,}: use fewer conv channels or smaller images")


def state_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in the model's state_dict, by name, computed from the settings alone (no model
    is built; vae_core/models.py builds exactly these, which tests/test_budget.py checks)."""
    if config.arch == "onnx":
        return {}  # its weights are inside its ONNX graphs, bounded when they are read (vae_core.onnx_import)
    c, h, w = config.input_shape
    n_cls = config.num_classes if config.is_conditional else 0
    shapes: dict[str, tuple[int, ...]] = {}

    def linear(prefix: str, n_in: int, n_out: int) -> None:
        shapes[f"{prefix}.weight"], shapes[f"{prefix}.bias"] = (n_out, n_in), (n_out,)

    side = 2 ** len(config.conv_channels)
    if config.arch == "mlp":
        sizes = [config.input_size + n_cls, *config.hidden]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear(f"encoder.body.{2 * i}", n_in, n_out)
        feature = config.hidden[-1]
    else:
        channels = [c, *config.conv_channels]
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            shapes[f"encoder.conv.{2 * i}.weight"], shapes[f"encoder.conv.{2 * i}.bias"] = (c_out, c_in, 4, 4), (c_out,)
        flat = config.conv_channels[-1] * (h // side) * (w // side)
        linear("encoder.body.0", flat + n_cls, config.conv_fc)
        feature = config.conv_fc
    linear("encoder.mu", feature, config.latent_dim)
    if config.is_variational:
        linear("encoder.logvar", feature, config.latent_dim)
    n_in = config.latent_dim + n_cls
    if config.arch == "mlp":
        sizes = [n_in, *reversed(config.hidden)]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear(f"decoder.{2 * i}", a, b)
        linear(f"decoder.{2 * len(config.hidden)}", sizes[-1], config.input_size)
    else:
        deep = list(reversed(config.conv_channels))
        linear("decoder.0", n_in, config.conv_fc)
        linear("decoder.2", config.conv_fc, deep[0] * (h // side) * (w // side))
        for i, (c_in, c_out) in enumerate(zip(deep, deep[1:] + [c])):
            shapes[f"decoder.{5 + 2 * i}.weight"], shapes[f"decoder.{5 + 2 * i}.bias"] = (c_in, c_out, 4, 4), (c_out,)
    if config.learn_sigma:
        shapes["log_sigma"] = ()
    return shapes


def estimate_parameters(config: ModelConfig) -> int:
    """Number of parameters of the model these settings describe, without building it."""
    return sum(math.prod(shape) for shape in state_shapes(config).values())


def activation_values(config: ModelConfig) -> tuple[int, int]:
    """(encoder, decoder) float32 values one example holds on its way through, counting every layer's output
    (an upper bound on the peak under no_grad, where only two consecutive outputs live at once)."""
    c, h, w = config.input_shape
    n_cls = config.num_classes if config.is_conditional else 0
    heads = 2 * config.latent_dim
    if config.arch == "onnx":  # the graphs' own activations are bounded from their inferred shapes on import
        return config.input_size + heads, config.latent_dim + 2 * config.input_size
    if config.arch == "mlp":
        layers = 2 * sum(config.hidden)  # Linear and ReLU outputs
        encoder = config.input_size + n_cls + layers + heads
        decoder = config.latent_dim + n_cls + layers + 2 * config.input_size  # logits and their sigmoid
        return encoder, decoder
    maps = [ch * (h >> (i + 1)) * (w >> (i + 1)) for i, ch in enumerate(config.conv_channels)]  # each conv's output
    flat = maps[-1]
    encoder = config.input_size + 2 * sum(maps) + flat + n_cls + 2 * config.conv_fc + heads
    decoder = (config.latent_dim + n_cls + 2 * config.conv_fc + 2 * flat + 2 * sum(maps[:-1])
               + 2 * config.input_size)
    return encoder, decoder


def max_batch_size(config: ModelConfig, budget_bytes: int | None = None) -> int:
    """The most examples to encode or decode in one batch so that their activations fit the budget (bytes;
    default: vae_core.budget.ESTIMATE_LIMIT_BYTES). At least DECODE_SAMPLES_GUARANTEED for any valid config."""
    from vae_core.budget import ESTIMATE_LIMIT_BYTES

    per_example = 4 * max(activation_values(config))  # bytes
    return max(1, (ESTIMATE_LIMIT_BYTES if budget_bytes is None else budget_bytes) // per_example)


def default_conv_channels(image_size: int) -> tuple[int, ...]:
    """Conv channels that bring an image of this side down to about 4-7 pixels."""
    if image_size >= 64:
        return (32, 32, 64, 64)
    if image_size >= 32:
        return (32, 64, 64)
    if image_size >= 16:
        return (32, 64)
    return (32,)




def model_config_for(input_shape: tuple[int, int, int], num_classes: int, *, kind: str = "vae", arch: str = "mlp",
                     latent_dim: int = 2, hidden: tuple[int, ...] | None = None,
                     conv_channels: tuple[int, ...] | None = None, **settings: Any) -> ModelConfig:
    """A ModelConfig fitted to a data set: its input shape, its classes (for the CVAE), conv depth by image size."""
    return ModelConfig(
        kind=kind, arch=arch, input_shape=tuple(input_shape), latent_dim=latent_dim,
        hidden=tuple(hidden) if hidden else ModelConfig.hidden,
        conv_channels=tuple(conv_channels) if conv_channels else default_conv_channels(min(input_shape[1:])),
        num_classes=num_classes if kind == "cvae" else 0,
        **settings,
    )


__all__ = ["ModelConfig", "TrainConfig", "KINDS", "DETERMINISTIC_KINDS", "DEFAULT_MMD_WEIGHT", "ARCHS", "LIKELIHOODS", "default_conv_channels", "model_config_for",
           "state_shapes", "estimate_parameters", "activation_values", "max_batch_size", "MAX_INPUT_SIDE",
           "MAX_LATENT_DIM", "MAX_MLP_LAYERS", "MAX_MLP_WIDTH", "MAX_CONV_LAYERS", "MAX_CONV_CHANNELS", "MAX_CONV_FC",
           "MAX_CLASSES", "MAX_PARAMETERS", "MAX_ACTIVATION_VALUES", "DECODE_SAMPLES_GUARANTEED"]
