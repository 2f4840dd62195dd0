"""Small models and seeded tensors shared by the latent toolkit's tests."""
import io

import numpy as np
import torch
from PIL import Image

from vae_core.config import model_config_for
from vae_core.models import build_model

ARCH_INPUTS = [("mlp", (1, 28, 28)), ("conv", (1, 28, 28)), ("mlp", (3, 32, 32)), ("conv", (3, 32, 32))]
CLASSES = 4


def _model(kind="vae", arch="mlp", shape=(1, 8, 8), latent_dim=3):
    """A small freshly initialised model (untrained: shapes and exact identities only)."""
    config = model_config_for(shape, CLASSES, kind=kind, arch=arch, latent_dim=latent_dim, hidden=(32,),
                              conv_channels=(8, 16), conv_fc=32)
    return build_model(config, seed=0)


def _label(model, n=None):
    """A valid y for a CVAE (None otherwise): one class, or n classes."""
    if not model.config.is_conditional:
        return None
    return 1 if n is None else torch.arange(n) % CLASSES


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _correlated_codes(n=200, d=5, seed=0):
    """Codes with a clear principal plane and a non-zero mean."""
    return _randn(n, d, seed=seed) @ (torch.diag(torch.linspace(3, 0.2, d)) + 0.3) + torch.linspace(-1, 1, d)


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()
