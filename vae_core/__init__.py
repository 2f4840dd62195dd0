"""Latent Lab's PyTorch core: models, losses, data, training, checkpoints, latent tools and metrics. No Streamlit."""
# Importing vae_core changes no process-wide setting (threads, OpenMP wait policy): a command-line run or a training
# worker that owns its cores runs exactly as a bare PyTorch script would. The Streamlit server, whose cores are
# shared, chooses its own settings in app.py.
from vae_core.config import ModelConfig, TrainConfig
from vae_core.errors import CheckpointError, ConfigError, DataError, UserInputError
from vae_core.models import LatentVariableModel, build_model

__all__ = ["ModelConfig", "TrainConfig", "LatentVariableModel", "build_model",
           "UserInputError", "DataError", "CheckpointError", "ConfigError"]
