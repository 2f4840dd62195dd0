"""Shared fixtures: small real data (digits) and tiny trained models, built once per test session."""
from __future__ import annotations

import pytest

import vae_core  # noqa: F401  (first: sets OpenMP's passive waiting before torch loads, as the app and CLI do)
import torch  # noqa: E402

from vae_core.config import TrainConfig, model_config_for
from vae_core.models import build_model
from vae_core.train import Trainer


@pytest.fixture(scope="session")
def digits():
    from vae_core.data import load_data

    return load_data("digits", seed=0)


@pytest.fixture(scope="session")
def trained_digits_vae(digits):
    """A digits VAE (latent 2) trained long enough that its posterior is informative (KL of a few nats)."""
    config = model_config_for(digits.input_shape, digits.num_classes, kind="vae", latent_dim=2, hidden=(256, 128))
    model = build_model(config, seed=0)
    Trainer(model, digits, TrainConfig(epochs=25, batch_size=64, lr=3e-3, seed=0)).run()
    return model.eval()


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)
    yield
