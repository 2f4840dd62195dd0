"""Plotly figures the pages share: plain functions from arrays to figures, every axis labelled."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

PALETTE = ["#4f46e5", "#e11d48", "#059669", "#d97706", "#0891b2", "#7c3aed", "#65a30d", "#db2777",
           "#475569", "#ca8a04", "#2563eb", "#dc2626"]


def _layout(fig: go.Figure, x_title: str, y_title: str, height: int = 360, title: str | None = None) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title,
                      xaxis_title=x_title, yaxis_title=y_title, legend=dict(itemsizing="constant"))
    return fig


def latent_scatter(points: np.ndarray, labels: np.ndarray, label_names, axis_labels: tuple[str, str], *,
                   indices: np.ndarray | None = None, height: int = 480, title: str | None = None,
                   marker_size: int = 6, opacity: float = 0.8) -> go.Figure:
    """Points of a 2-D latent view coloured by label; each point carries its data index in custom_data."""
    indices = np.arange(len(points)) if indices is None else indices
    fig = go.Figure()
    for k, name in enumerate(label_names):
        mask = labels == k
        if not mask.any():
            continue
        fig.add_trace(go.Scattergl(
            x=points[mask, 0], y=points[mask, 1], mode="markers", name=str(name),
            marker=dict(size=marker_size, color=PALETTE[k % len(PALETTE)], opacity=opacity),
            customdata=indices[mask][:, None],
            hovertemplate=f"label {name}<br>index %{{customdata[0]}}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        ))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, axis_labels[0], axis_labels[1], height, title)


def prior_contours(fig: go.Figure, center=(0.0, 0.0), scale=(1.0, 1.0), sigmas=(1, 2, 3)) -> go.Figure:
    """Dashed circles where the standard normal prior's density is 1σ, 2σ and 3σ from its centre."""
    t = np.linspace(0, 2 * np.pi, 120)
    for s in sigmas:
        fig.add_trace(go.Scatter(x=center[0] + s * scale[0] * np.cos(t), y=center[1] + s * scale[1] * np.sin(t),
                                 mode="lines", line=dict(color="rgba(60,60,60,0.5)", dash="dash", width=1),
                                 name=f"prior {s}σ", hoverinfo="skip", showlegend=s == sigmas[0],
                                 legendgroup="prior"))
    return fig


def loss_curves(steps: list[dict], history: list[dict], steps_per_epoch: int) -> go.Figure:
    """Training loss by mini-batch and test loss by epoch, with their reconstruction and KL parts (nats)."""
    fig = go.Figure()
    if steps:
        x = np.array([s["step"] for s in steps]) / steps_per_epoch
        for key, name, color in (("loss", "train loss", "#4f46e5"), ("recon", "train reconstruction", "#0891b2"),
                                 ("kl", "train KL", "#d97706")):
            fig.add_trace(go.Scatter(x=x, y=[s[key] for s in steps], mode="lines", name=name,
                                     line=dict(color=color, width=1.5)))
    if history:
        epochs = [h["epoch"] for h in history]
        for key, name, color in (("test_elbo", "test −ELBO", "#e11d48"), ("test_recon", "test reconstruction", "#059669"),
                                 ("test_kl", "test KL", "#7c3aed")):
            values = [-h[key] if key == "test_elbo" else h[key] for h in history]
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=name,
                                     line=dict(color=color, dash="dot")))
    return _layout(fig, "epoch", "nats per example", 360)


def kl_per_dimension(kl: list[float], threshold: float | None = None) -> go.Figure:
    """Bar chart of each latent dimension's KL (nats): the information each dimension carries."""
    fig = go.Figure(go.Bar(x=[f"z[{i}]" for i in range(len(kl))], y=kl, marker_color="#4f46e5",
                           hovertemplate="%{x}: %{y:.3f} nats<extra></extra>"))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dot", line_color="#e11d48")
    return _layout(fig, "latent dimension", "KL (nats per example)", 260)
