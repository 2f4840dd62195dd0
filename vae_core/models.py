"""The model family: autoencoder, (β-)VAE and conditional VAE, with MLP or convolutional encoder and decoder.

Kingma & Welling, "Auto-Encoding Variational Bayes" (2014); Higgins et al., "β-VAE" (2017);
Sohn et al., "Learning Structured Output Representation using Deep Conditional Generative Models" (2015).

The decoder is one flat `nn.Sequential` of Linear, ReLU, Unflatten and ConvTranspose2d layers, so it can be
exported layer by layer (the browser decoder reads it the same way).
"""
from __future__ import annotations

import math
import threading
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vae_core.config import ModelConfig

_INIT_LOCK = threading.Lock()  # torch's global RNG is shared by threads: seed and build under one lock


class Encoder(nn.Module):
    """x (B, C, H, W) [+ one-hot y] -> features (B, F) -> mu, logvar (B, D)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.arch == "onnx":  # its layers are graphs: vae_core.onnx_import.OnnxModel runs them
            raise ValueError("an imported ONNX model is not built from layers: load it with load_checkpoint")
        c, h, w = config.input_shape
        n_cls = config.num_classes if config.is_conditional else 0
        if config.arch == "mlp":
            # The label joins the pixels at the input, as in Sohn et al.'s CVAE.
            self.conv = None
            self.body = _mlp([config.input_size + n_cls, *config.hidden])
            feature_size = config.hidden[-1]
        else:
            layers: list[nn.Module] = []
            channels = [c, *config.conv_channels]
            for c_in, c_out in zip(channels[:-1], channels[1:]):
                layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            self.conv = nn.Sequential(*layers, nn.Flatten())
            side = 2 ** len(config.conv_channels)
            flat = config.conv_channels[-1] * (h // side) * (w // side)
            # The label joins the convolutional features, before the dense layer.
            self.body = _mlp([flat + n_cls, config.conv_fc])
            feature_size = config.conv_fc
        self.mu = nn.Linear(feature_size, config.latent_dim)
        self.logvar = nn.Linear(feature_size, config.latent_dim) if config.is_variational else None

    def forward(self, x: torch.Tensor, y_onehot: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = x.flatten(1) if self.conv is None else self.conv(x)  # (B, C*H*W) or (B, flat)
        if y_onehot is not None:
            h = torch.cat([h, y_onehot], dim=1)
        h = self.body(h)  # (B, F)
        return self.mu(h), (self.logvar(h) if self.logvar is not None else None)


def build_decoder(config: ModelConfig) -> nn.Sequential:
    """z (B, D) [+ one-hot y] -> logits (B, C, H, W): the mirror image of the encoder."""
    c, h, w = config.input_shape
    n_in = config.latent_dim + (config.num_classes if config.is_conditional else 0)
    if config.arch == "mlp":
        sizes = [n_in, *reversed(config.hidden)]
        return nn.Sequential(*_mlp(sizes), nn.Linear(sizes[-1], config.input_size), nn.Unflatten(1, (c, h, w)))
    side = 2 ** len(config.conv_channels)
    h0, w0 = h // side, w // side
    channels = list(reversed(config.conv_channels))  # deepest first
    layers: list[nn.Module] = [
        nn.Linear(n_in, config.conv_fc), nn.ReLU(),
        nn.Linear(config.conv_fc, channels[0] * h0 * w0), nn.ReLU(),
        nn.Unflatten(1, (channels[0], h0, w0)),
    ]
    for c_in, c_out in zip(channels, channels[1:] + [c]):
        layers += [nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no ReLU on the logits


class ModelOutput(NamedTuple):
    """What the model's forward pass returns for a batch."""

    logits: torch.Tensor  # (B, C, H, W) decoder logits; the image is their sigmoid
    mu: torch.Tensor  # (B, D) posterior means (the AE's codes)
    logvar: torch.Tensor | None  # (B, D) posterior log-variances; None for a model without a posterior
    z: torch.Tensor  # (B, D) the sampled code that was decoded (mu itself without a posterior)


class LatentVariableModel(nn.Module):
    """One class for the AE, the (β-)VAE and the CVAE; `config.kind` says which."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = build_decoder(config)
        # A learned σ of the gaussian likelihood, shared by all pixels (log-parametrised so it stays > 0).
        self.log_sigma = nn.Parameter(torch.tensor(math.log(config.gaussian_sigma))) if config.learn_sigma else None

    # -- the three steps of a VAE ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Posterior parameters: mu and logvar (B, D); logvar is None for the deterministic AE."""
        return self.encoder(x, self._onehot(y))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): sampling that gradients can flow through (K&W 2014, sec. 2.4)."""
        if logvar is None:
            return mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)  # (B, D)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder logits (B, C, H, W); the image is their sigmoid (see decode_mean)."""
        y_onehot = self._onehot(y)
        if y_onehot is not None:
            z = torch.cat([z, y_onehot], dim=1)  # (B, D + K)
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoded image in [0, 1] (B, C, H, W): the Bernoulli mean, or the gaussian mean."""
        return torch.sigmoid(self.decode(z, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> ModelOutput:
        """Encode, sample a code, decode: ModelOutput(logits, mu, logvar, z) for a batch."""
        mu, logvar = self.encode(x, y)  # (B, D) each
        z = self.reparameterize(mu, logvar, generator)  # (B, D)
        return ModelOutput(logits=self.decode(z, y), mu=mu, logvar=logvar, z=z)


    # -- helpers -----------------------------------------------------------------------------------------------
    def _onehot(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if not self.config.is_conditional:
            return None
        if y is None:
            raise ValueError("a CVAE needs the class label y to encode or decode")
        return F.one_hot(y.long(), self.config.num_classes).to(self.encoder.mu.weight.dtype)

    @property
    def device(self) -> torch.device:
        return self.encoder.mu.weight.device


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear + ReLU for each consecutive pair of sizes."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


def build_model(config: ModelConfig, seed: int | None = 0) -> LatentVariableModel:
    """A freshly initialised model; the same config and seed give the same weights."""
    if seed is None:
        return LatentVariableModel(config)
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LatentVariableModel(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
