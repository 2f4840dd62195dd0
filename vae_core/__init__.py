"""Latent Lab's PyTorch core: models, losses, data, training, checkpoints, latent tools and metrics. No Streamlit."""
from vae_core.config import ModelConfig, TrainConfig
from vae_core.errors import CheckpointError, ConfigError, DataError, UserInputError
from vae_core.models import LatentVariableModel, build_model

__all__ = ["ModelConfig", "TrainConfig", "LatentVariableModel", "build_model",
           "UserInputError", "DataError", "CheckpointError", "ConfigError"]
