"""Cached latent-space work shared by the explore pages: the codes of a split, its 2-D views, the grid budget.

The model's sha256 is the cache key; the model and data objects ride along unhashed (leading underscore).
"""
from __future__ import annotations

import math

import numpy as np
import streamlit as st
import torch

from vae_core.data import DataSplit


@st.cache_data(show_spinner="Encoding the test set…", max_entries=64, ttl=3600)
def encode_split(sha: str, split: str, _model, _data: DataSplit) -> dict:
    """Posterior means (and log-variances) of a split: {"mu": (N, D), "logvar": (N, D) | None, "y": (N,)} numpy."""
    from vae_core.latent import encode_dataset

    part = getattr(_data, split)
    enc = encode_dataset(_model, part.x, part.y)
    return {"mu": enc.mu.numpy(), "logvar": None if enc.logvar is None else enc.logvar.numpy(), "y": part.y.numpy()}


@st.cache_resource(show_spinner="Fitting the 2-D view…", max_entries=64)
def latent_view(sha: str, method: str, _mu: np.ndarray):
    """The 2-D view of a model's test-set means (identity, PCA, or view-only t-SNE), fitted once."""
    from vae_core.latent import fit_view

    return fit_view(torch.from_numpy(_mu), method, max_tsne_points=1000)


def grid_side_limit(model, wanted: int) -> int:
    """The most images a side of a decoded n x n grid may have for this model: at most `wanted`, and n² at most the
    model's max_batch_size (vae_core/config.py), i.e. the grid's images take at most half of the memory one batch
    may (its activations count the output twice), so an uploaded model with large images decodes a small grid
    within the budget. At least 4 for any model the app loads (max_batch_size >= 16)."""
    from vae_core.config import ModelConfig, max_batch_size

    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        return wanted
    return max(1, min(wanted, math.isqrt(max_batch_size(config))))


def view_methods(latent_dim: int) -> list[str]:
    """The 2-D views offered for a latent size (t-SNE is view-only: no decoding from its plane)."""
    return ["identity"] if latent_dim <= 2 else ["pca", "tsne"]


VIEW_LABELS = {"identity": "the latent plane itself", "pca": "PCA (decodable)", "tsne": "t-SNE (view only)"}
