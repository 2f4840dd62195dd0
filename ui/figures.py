"""Plotly figures the pages share: plain functions from arrays to figures, every axis labelled."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from vae_core.disentanglement import normalised_mi

PALETTE = ["#4f46e5", "#e11d48", "#059669", "#d97706", "#0891b2", "#7c3aed", "#65a30d", "#db2777",
           "#475569", "#ca8a04", "#2563eb", "#dc2626"]


def plotly_text(text) -> str:
    """A user's text (a label name, a model's name) for a Plotly string: Plotly reads a subset of HTML in them
    (<a href>, <b>, <br>), so its markup characters are written as entities and it shows the text as typed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _layout(fig: go.Figure, x_title: str, y_title: str, height: int = 360, title: str | None = None) -> go.Figure:
    title = None if title is None else plotly_text(title)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title,
                      xaxis_title=x_title, yaxis_title=y_title, legend=dict(itemsizing="constant"))
    return fig


def latent_scatter(points: np.ndarray, labels: np.ndarray, label_names, axis_labels: tuple[str, str], *,
                   indices: np.ndarray | None = None, height: int = 480, title: str | None = None,
                   marker_size: int = 6, opacity: float = 0.8, webgl: bool = True) -> go.Figure:
    """Points of a 2-D latent view coloured by label; each point carries its data index in custom_data.

    webgl=False draws SVG: slower for tens of thousands of points, but no WebGL context, which a browser without
    a GPU renders in software at a high CPU cost (the Train page's live map, redrawn while training runs)."""
    trace = go.Scattergl if webgl else go.Scatter
    indices = np.arange(len(points)) if indices is None else indices
    fig = go.Figure()
    for k, name in enumerate(label_names):
        mask = labels == k
        if not mask.any():
            continue
        name = plotly_text(name)  # a label name may come from an uploaded file
        fig.add_trace(trace(
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
    """Training loss by mini-batch and test loss by epoch, with their reconstruction and KL parts (nats). A term
    the model does not have (a WAE's KL and ELBO are None) is left out rather than drawn as zero."""
    fig = go.Figure()
    if steps:
        x = np.array([s["step"] for s in steps]) / steps_per_epoch
        for key, name, color in (("loss", "train loss", "#4f46e5"), ("recon", "train reconstruction", "#0891b2"),
                                 ("kl", "train KL", "#d97706")):
            values = [s.get(key) for s in steps]
            if all(v is not None for v in values):
                fig.add_trace(go.Scatter(x=x, y=values, mode="lines", name=name, line=dict(color=color, width=1.5)))
    if history:
        epochs = [h["epoch"] for h in history]
        for key, name, color in (("test_elbo", "test −ELBO", "#e11d48"), ("test_recon", "test reconstruction", "#059669"),
                                 ("test_kl", "test KL", "#7c3aed")):
            values = [h.get(key) for h in history]
            if all(v is not None for v in values):
                fig.add_trace(go.Scatter(x=epochs, y=[-v if key == "test_elbo" else v for v in values],
                                         mode="lines+markers", name=name, line=dict(color=color, dash="dot")))
    return _layout(fig, "epoch", "nats per example", 360)


def term_curves(steps: list[dict], history: list[dict], steps_per_epoch: int, terms: list[tuple[str, str]],
                y_title: str, height: int = 300) -> go.Figure:
    """Terms of the objective over training: each (key, name) of `terms` by mini-batch (train, solid) and by epoch
    (test, dotted, from the history's test_<key>), e.g. the β-TCVAE's MI, TC and dimension-wise KL."""
    fig = go.Figure()
    x = np.array([s["step"] for s in steps]) / steps_per_epoch if steps else np.array([])
    for k, (key, name) in enumerate(terms):
        color = PALETTE[(k + 1) % len(PALETTE)]
        values = [s.get(key) for s in steps]
        if steps and all(v is not None for v in values):
            fig.add_trace(go.Scatter(x=x, y=values, mode="lines", name=f"train {name}", legendgroup=key,
                                     line=dict(color=color, width=1.5)))
        tested = [(h["epoch"], h.get(f"test_{key}")) for h in history if h.get(f"test_{key}") is not None]
        if tested:
            fig.add_trace(go.Scatter(x=[e for e, _ in tested], y=[v for _, v in tested], mode="lines+markers",
                                     name=f"test {name}", legendgroup=key, line=dict(color=color, dash="dot")))
    return _layout(fig, "epoch", y_title, height)


def kl_per_dimension(kl: list[float], threshold: float | None = None) -> go.Figure:
    """Bar chart of each latent dimension's KL (nats): the information each dimension carries."""
    fig = go.Figure(go.Bar(x=[f"z[{i}]" for i in range(len(kl))], y=kl, marker_color="#4f46e5",
                           hovertemplate="%{x}: %{y:.3f} nats<extra></extra>"))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dot", line_color="#e11d48")
    return _layout(fig, "latent dimension", "KL (nats per example)", 260)


# -- the latent map of the explore pages (Latent map, Interpolate): layers over latent_scatter ---------------------
GRID_INDEX = -1  # custom_data of the invisible click grid's points; data points carry their index (>= 0)


def click_grid(fig: go.Figure, extent: tuple[float, float, float, float], n: int = 41) -> go.Figure:
    """Invisible n x n points over the extent, drawn first (under the data): Plotly reports clicks on points only,
    so a click on empty space selects the nearest grid point and the page learns where the user clicked."""
    xs, ys = np.meshgrid(np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n))
    hidden = dict(marker=dict(opacity=0))  # Plotly restyles selected points: keep the grid invisible then too
    fig.add_trace(go.Scattergl(x=xs.ravel(), y=ys.ravel(), mode="markers", name="click anywhere",
                               marker=dict(size=10, color="rgba(0,0,0,0)"), customdata=np.full((n * n, 1), GRID_INDEX),
                               selected=hidden, unselected=hidden, hoverinfo="none", showlegend=False))
    fig.data = (fig.data[-1], *fig.data[:-1])  # first: data points stay on top for hover and clicks
    return fig


def map_selection(selection) -> dict | None:
    """What a selection on a latent map means, from st.plotly_chart's documented selection structure
    {"points": [{"customdata": [index], "x": ..., "y": ...}, ...], "box": [...], "lasso": [...]}:

    {"indices": [...]}  the data indices of the picked points (click, box or lasso), in order, without repeats;
                        empty when a box or lasso caught no data point;
    {"spot": (x, y)}    a click on empty space (a point of the invisible click grid, figures.GRID_INDEX);
    None                nothing selected (or only points of other layers).
    """
    selection = selection or {}
    points = selection.get("points") or []
    indices, grid_points = [], []
    for point in points:
        custom = point.get("customdata")
        # A list [index] in the docs; {"0": index} in a real browser, where plotly.js decodes the figure's numpy
        # custom_data into a typed array and Streamlit's frontend serialises that as an object.
        if isinstance(custom, dict):
            custom = custom.get("0", custom.get(0))
        value = custom[0] if isinstance(custom, (list, tuple)) and custom else custom
        try:
            index = int(value)
        except (TypeError, ValueError):
            continue  # a layer without indices (prior circles, ellipses, the path)
        if index >= 0 and index not in indices:
            indices.append(index)
        elif index == GRID_INDEX:
            grid_points.append((float(point["x"]), float(point["y"])))
    dragged = bool(selection.get("box") or selection.get("lasso"))
    if indices or dragged:
        return {"indices": indices}
    if len(grid_points) == 1:
        return {"spot": grid_points[0]}
    return None


def background_image(fig: go.Figure, png_data_uri: str, box: tuple[float, float, float, float],
                     opacity: float = 0.6) -> go.Figure:
    """A picture (e.g. the decoded manifold grid) stretched over the box (x0, x1, y0, y1), under the points."""
    x0, x1, y0, y1 = box
    fig.add_layout_image(source=png_data_uri, xref="x", yref="y", x=x0, y=y1, sizex=x1 - x0, sizey=y1 - y0,
                         sizing="stretch", opacity=opacity, layer="below", xanchor="left", yanchor="top")
    return fig


def outlines(fig: go.Figure, shapes: np.ndarray, name: str, color: str = "rgba(30,30,30,0.45)") -> go.Figure:
    """Closed outlines (N, V, 2), e.g. posterior ellipses, as one line trace (NaN breaks between them)."""
    breaks = np.full((len(shapes), 1, 2), np.nan)
    xy = np.concatenate([shapes, breaks], axis=1).reshape(-1, 2)
    fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="lines", name=name, hoverinfo="skip",
                             line=dict(color=color, width=1)))
    return fig


def path_overlay(fig: go.Figure, points: np.ndarray, name: str = "interpolation path") -> go.Figure:
    """A path (n, 2) as a line with a marker per step, the start and the end marked. No custom_data: a click on
    the path must not read as a click on a data point."""
    steps = np.arange(1, len(points) + 1)
    fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="lines+markers", name=name,
                             line=dict(color="#111827", width=2), marker=dict(size=7, color="#f59e0b",
                                                                               line=dict(color="#111827", width=1)),
                             text=[f"step {k}" for k in steps], hovertemplate="%{text}<extra></extra>"))
    for point, label, symbol in ((points[0], "start", "circle-open"), (points[-1], "end", "square-open")):
        highlight(fig, point[None], label, symbol)
    return fig


def highlight(fig: go.Figure, points: np.ndarray, name: str, symbol: str = "circle-open",
              color: str = "#111827") -> go.Figure:
    """Big open markers around chosen points (n, 2): the selected image, a decoded spot, a path's ends."""
    fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name=name, hoverinfo="skip",
                             marker=dict(size=16, symbol=symbol, color=color, line=dict(width=2.5, color=color))))
    return fig


def tile_figure(picture: np.ndarray, n_rows: int, n_cols: int, tile: tuple[int, int], *, scale: int = 1,
                row_labels, col_labels, x_title: str, y_title: str, frames=(), notes: dict | None = None,
                hover=None, max_ticks: int = 11) -> go.Figure:
    """A picture of n_rows x n_cols image tiles, each `tile` (h, w) pixels with equal gaps between and around
    them (as image_grid makes it), shown `scale` times larger without blur (Plotly draws an image trace with
    image-rendering: pixelated), with a labelled tick at the centre of each row and column (at most max_ticks per
    axis), a red frame around each (row, col) of `frames`, a short note on the bottom edge of each (row, col) key
    of `notes`, and hover[row][col] as each tile's hover text.

    Built without Plotly's property validation (Streamlit takes a Figure as validated): on a slider move this
    figure is redrawn, and validating its layout cost ~50 ms, far more than decoding the tiles."""
    import base64

    from vae_core.latent import png_bytes

    height, width = picture.shape[0] * scale, picture.shape[1] * scale  # display pixels
    th, tw = tile[0] * scale, tile[1] * scale
    gap_x, gap_y = (width - n_cols * tw) / (n_cols + 1), (height - n_rows * th) / (n_rows + 1)  # 0 for one tile
    xc = [gap_x + c * (tw + gap_x) + tw / 2 for c in range(n_cols)]  # tile centres
    yc = [gap_y + r * (th + gap_y) + th / 2 for r in range(n_rows)]
    uri = "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")
    data = [dict(type="image", source=uri, x0=scale / 2, y0=scale / 2, dx=scale, dy=scale, hoverinfo="skip")]
    if hover is not None:  # invisible markers carry each tile's hover text (an image trace hovers per pixel)
        data.append(dict(type="scatter", x=[x for _ in yc for x in xc], y=[y for y in yc for _ in xc],
                         mode="markers", text=[hover[r][c] for r in range(n_rows) for c in range(n_cols)],
                         hovertemplate="%{text}<extra></extra>", showlegend=False,
                         marker=dict(size=max(8, min(th, tw)), symbol="square", opacity=0)))
    shapes = [dict(type="rect", x0=xc[c] - tw / 2 - 1.5, x1=xc[c] + tw / 2 + 1.5, y0=yc[r] - th / 2 - 1.5,
                   y1=yc[r] + th / 2 + 1.5, line=dict(color="#e11d48", width=3)) for r, c in frames]
    annotations = [dict(x=xc[c], y=yc[r] + th / 2, yanchor="bottom", text=text, showarrow=False,
                        font=dict(size=11, color="#111827"), bgcolor="rgba(255,255,255,0.85)", borderpad=1)
                   for (r, c), text in (notes or {}).items()]

    def ticks(centres, labels):
        step = -(-len(centres) // max_ticks)  # ceil: thin crowded labels out
        keep = [i for i in range(len(centres)) if i % step == 0]
        return dict(tickmode="array", tickvals=[centres[i] for i in keep],
                    ticktext=[plotly_text(labels[i]) for i in keep])  # class names may be a user's text

    # In a column narrower than the picture, shrink it from the top left rather than centre it in blank space.
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, ticks="outside", showline=False, constrain="domain")
    left = 48 + 7 * max((len(str(s)) for s in row_labels), default=1)  # room for the row labels and the title
    layout = dict(width=width + left + 10, height=height + 70, margin=dict(l=left, r=10, t=10, b=60),
                  plot_bgcolor="white", showlegend=False, shapes=shapes, annotations=annotations,
                  xaxis=dict(range=[0, width], title=dict(text=x_title), constraintoward="left",
                             **ticks(xc, col_labels), **axis),
                  yaxis=dict(range=[height, 0], title=dict(text=y_title), constraintoward="top",
                             **ticks(yc, row_labels), **axis))
    return go.Figure(data=data, layout=layout, _validate=False)


def elbo_along_path(elbo: np.ndarray, y_title: str = "ELBO (nats)") -> go.Figure:
    """The ELBO of each decoded step of an interpolation (higher: an image the model finds more plausible)."""
    steps = np.arange(1, len(elbo) + 1)
    fig = go.Figure(go.Scatter(x=steps, y=elbo, mode="lines+markers", name="ELBO", line=dict(color="#4f46e5"),
                               hovertemplate="step %{x}: %{y:.1f} nats<extra></extra>"))
    fig.update_xaxes(dtick=1 if len(elbo) <= 12 else 2)
    return _layout(fig, "step", y_title, 300)


def normalised_information(mi, entropies) -> np.ndarray:
    """(K, D): vae_core.disentanglement.normalised_mi turned to one row per factor, as the heat map draws it."""
    return normalised_mi(mi, entropies).T


def factor_heatmap(mi, entropies, factor_names, *, height: int | None = None) -> go.Figure:
    """A factor x latent-dimension heat map of normalised mutual information (normalised_information): one row per
    factor, one column per latent dimension, each cell's value written in it; a disentangled code has one bright
    cell per factor row."""
    nmi = normalised_information(mi, entropies)  # (K, D)
    k, d = nmi.shape
    columns = [f"z[{i}]" for i in range(d)]
    rows = [plotly_text(n) for n in factor_names]
    fig = go.Figure(go.Heatmap(
        z=nmi.tolist(), x=columns, y=rows, zmin=0.0, zmax=1.0, colorscale="Viridis", texttemplate="%{z:.2f}",
        textfont=dict(size=11), xgap=2, ygap=2,
        colorbar=dict(title=dict(text="MI / H(factor)", side="right"), thickness=14),
        hovertemplate="%{y} and %{x}: %{z:.2f} of the factor's uncertainty<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return _layout(fig, "latent dimension", "factor", height=height or 90 + 42 * k)
