"""Latent Lab's PyTorch core: models, losses, data, training, checkpoints, latent tools and metrics. No Streamlit."""
import os
import sys

# OpenMP threads that spin while waiting make every small op wait for a descheduled thread when the cores are
# shared (a class's server trains and decodes at once): measured here, 2 threads ran 10-70x slower than 1.
# Passive waiting removes that cliff. It must be set before torch loads OpenMP, so only when torch is not loaded.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vae_core.config import ModelConfig, TrainConfig  # noqa: E402
from vae_core.errors import CheckpointError, ConfigError, DataError, UserInputError  # noqa: E402
from vae_core.models import LatentVariableModel, build_model  # noqa: E402

__all__ = ["ModelConfig", "TrainConfig", "LatentVariableModel", "build_model",
           "UserInputError", "DataError", "CheckpointError", "ConfigError"]
