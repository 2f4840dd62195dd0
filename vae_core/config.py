"""Configuration dataclasses for models and training, serialisable to JSON-able dicts and back."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeVar

from vae_core.errors import ConfigError

KINDS = ("ae", "vae", "cvae")
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")

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
          "cvae" (encoder and decoder also see the one-hot label).
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
    beta: float = 1.0  # weight of the KL term; 1 is the ELBO

    def __post_init__(self) -> None:
        _check(self.kind in KINDS, f"model kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        _check(self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        _check(self.likelihood in LIKELIHOODS, f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        _check(len(self.input_shape) == 3 and all(_is_int(v) and v > 0 for v in self.input_shape),
               f"input_shape must be three positive integers (C, H, W), got {self.input_shape}")
        _check(self.input_shape[0] in (1, 3), f"images must have 1 or 3 channels, got {self.input_shape[0]}")
        _check(_is_int(self.latent_dim) and 1 <= self.latent_dim <= 512, f"latent_dim must be 1..512, got {self.latent_dim}")
        _check(all(_is_int(h) and 1 <= h <= 8192 for h in self.hidden), f"hidden sizes must be 1..8192, got {self.hidden}")
        _check(self.arch != "mlp" or len(self.hidden) >= 1, "an MLP needs at least one hidden layer (e.g. --hidden 400)")
        _check(all(_is_int(c) and 1 <= c <= 1024 for c in self.conv_channels) and len(self.conv_channels) >= 1,
               f"conv_channels must be 1..1024 and at least one, got {self.conv_channels}")
        if self.arch == "conv":
            factor = 2 ** len(self.conv_channels)
            _, h, w = self.input_shape
            _check(h % factor == 0 and w % factor == 0,
                   f"a conv model with {len(self.conv_channels)} stride-2 layers needs H and W divisible by {factor}, "
                   f"got {h}x{w}: use fewer conv_channels or the mlp arch")
        _check(_is_int(self.num_classes) and self.num_classes >= 0, f"num_classes must be >= 0, got {self.num_classes}")
        _check(self.kind != "cvae" or self.num_classes >= 2, "a CVAE needs labelled data with at least 2 classes")
        _check(_is_number(self.beta) and 0 <= self.beta <= 1000, f"beta must be between 0 and 1000, got {self.beta}")
        _check(_is_number(self.gaussian_sigma) and self.gaussian_sigma > 0, f"gaussian_sigma must be > 0, got {self.gaussian_sigma}")

    @property
    def is_conditional(self) -> bool:
        return self.kind == "cvae"

    @property
    def is_variational(self) -> bool:
        return self.kind != "ae"

    @property
    def input_size(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def label(self) -> str:
        """Short human name, e.g. 'β-VAE (β=4), mlp, z=2'."""
        family = {"ae": "AE", "cvae": "CVAE", "vae": "VAE" if self.beta == 1 else f"β-VAE (β={self.beta:g})"}[self.kind]
        return f"{family}, {self.arch}, z={self.latent_dim}"


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


__all__ = ["ModelConfig", "TrainConfig", "KINDS", "ARCHS", "LIKELIHOODS", "default_conv_channels", "model_config_for"]
