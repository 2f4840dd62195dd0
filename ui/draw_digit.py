"""The drawing box: draw a digit and watch the encoder place it, live, in the browser (an `st.components.v2`
component, assets in ui/draw_digit/).

    code = draw_digit(model, entry, key="draw", mu=test_mu, labels=test_y)   # None until the user releases a stroke
    code.mu, code.logvar, code.x                                             # the posterior and the 28x28 input

For 28x28 greyscale models (`drawable(entry)`). The drawing is preprocessed like MNIST in the page (a 2-pixel pen at
28x28 scale, the ink's bounding box fitted into 20x20 with its aspect kept, centred by its centre of mass in 28x28),
encoded by the model's encoder exported layer by layer (vae_core.export.export_encoder, run by encoder.js) on every
stroke; the ellipse of μ ± σ moves on a small latent map (the latent plane of a 2-D model; for a larger code the two
dimensions that carry the most information, ui.latent_point.dims_by_information) and μ is decoded by the latent
pad's decoder.js. On release the code comes back to Python as the component state `code`; it becomes the session's
shared latent point (the latent pad, the URL's `z` and the other pages follow).

The weights travel once per session (as for the pad): a decoder the latent pad already sent to this page is used as
it is; a reloaded page asks for what it lacks with the one-shot trigger `need`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui import latent_point
from ui.components import define, model_payload
from ui.figures import PALETTE
from ui.state import set_url_exact

MAX_POINTS = 1500
_SENT_KEY = "_draw_digit_sent"  # st.session_state: {"encoder": ids, "decoder": ids, "force": ids} this page holds


@dataclass(frozen=True)
class DrawnCode:
    """What a released drawing encodes to: mu and logvar (D,) (logvar None for an AE), x the 28x28 input."""

    mu: list[float]
    logvar: list[float] | None
    x: list[float]
    y: int | None


_COMPONENT = define("draw_digit", "draw_digit/draw.html", "draw_digit/draw.css",
                    ["latent_pad/decoder.js", "draw_digit/encoder.js", "draw_digit/draw.js"])


def drawable(entry) -> bool:
    """Whether the drawing box fits this model: 28x28 greyscale images, a code of at least two numbers."""
    return tuple(entry.config.input_shape) == (1, 28, 28) and entry.config.latent_dim >= 2


def section_heading(entry, title: str, about: str) -> bool:
    """A page's drawing-box section starts: its subheader and a caption on what happens when one draws. Nothing is
    shown, and False returned, for a model the box does not fit (see drawable)."""
    if not drawable(entry):
        return False
    st.subheader(title)
    st.caption(about)
    return True


def map_dims(entry, mu: np.ndarray | None) -> list[int]:
    """The map's two axes: the latent plane of a 2-D model, else the two most informative dimensions."""
    if entry.config.latent_dim == 2:
        return [0, 1]
    return sorted(latent_point.dims_by_information(entry, mu)[:2])


def _scene(entry, mu, labels) -> dict:
    dims = map_dims(entry, mu)
    extent = [-3.0, 3.0, -3.0, 3.0]
    points = None
    if mu is not None and len(mu) > 1:
        sub = np.asarray(mu, dtype=np.float64)[:, dims]
        lo, hi = np.quantile(sub, 0.005, axis=0), np.quantile(sub, 0.995, axis=0)
        margin = 0.15 * np.maximum(hi - lo, 1e-3)
        if entry.config.is_variational:
            lo, hi = np.minimum(lo - margin, -3), np.maximum(hi + margin, 3)
        else:
            lo, hi = lo - margin, hi + margin
        extent = [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]
        idx = np.arange(len(sub))
        if len(idx) > MAX_POINTS:
            idx = np.sort(np.random.default_rng(0).choice(len(sub), MAX_POINTS, replace=False))
        points = {"x": np.round(sub[idx, 0], 3).tolist(), "y": np.round(sub[idx, 1], 3).tolist(),
                  "label": None if labels is None else np.asarray(labels)[idx].astype(int).tolist()}
    return {"dims": dims, "extent": extent, "points": points, "palette": PALETTE,
            "axis_labels": [f"z[{d}]" for d in dims]}


def _valid_code(value, entry) -> DrawnCode | None:
    if not isinstance(value, dict) or value.get("model_id") != entry.sha256:
        return None
    d = entry.config.latent_dim

    def numbers(v, n):
        return (isinstance(v, list) and len(v) == n
                and all(isinstance(t, (int, float)) and math.isfinite(t) and abs(t) <= 1e4 for t in v))

    mu, logvar, x = value.get("mu"), value.get("logvar"), value.get("x")
    if not numbers(mu, d) or not numbers(x, 28 * 28) or (logvar is not None and not numbers(logvar, d)):
        return None
    k = entry.config.num_classes if entry.config.is_conditional else 0
    y = value.get("y") if k and isinstance(value.get("y"), int) and 0 <= value["y"] < k else (0 if k else None)
    return DrawnCode([float(v) for v in mu], None if logvar is None else [float(v) for v in logvar],
                     [float(v) for v in x], y)


def draw_digit(model, entry, *, key: str, mu: np.ndarray | None = None, labels=None, y: int | None = None,
               url: bool = True) -> DrawnCode | None:
    """Draw the box; the code of the last released drawing (None before one). mu (N, D), labels (N,): the test
    codes drawn faintly on the map. y: the class a CVAE encodes and decodes with (default the shared point's, else 0).
    url: a release moves the URL's `z` (and `class`)."""
    if not drawable(entry):
        return None
    encoder, reason = model_payload(entry.sha256, "encoder", model)
    decoder, why = model_payload(entry.sha256, "decoder", model)
    if encoder is None or decoder is None:
        st.info(f"This model cannot run in the browser ({reason or why}), so the drawing box is not shown.",
                icon=":material/draw:")
        return None
    sent = st.session_state.setdefault(_SENT_KEY, {"encoder": set(), "decoder": set(), "force": set()})
    pad_sent = latent_point._sent()["decoder"]  # the latent pad's decoder on this page is used as it is
    if y is None and entry.config.is_conditional:
        shared = latent_point.shared_point(entry)
        y = shared.y if shared is not None and shared.y is not None else 0

    def on_need() -> None:
        need = (st.session_state.get(key) or {}).get("need") or {}
        if need.get("encoder"):
            sent["encoder"].discard(entry.sha256)
        if need.get("decoder"):
            sent["decoder"].discard(entry.sha256)
            sent["force"].add(entry.sha256)

    def on_code() -> None:
        code = _valid_code((st.session_state.get(key) or {}).get("code"), entry)
        if code is not None:
            latent_point.share_point(entry, code.mu, code.y)
            if url:
                set_url_exact(z=code.mu, **{"class": code.y})

    send_decoder = entry.sha256 in sent["force"] or not (entry.sha256 in sent["decoder"] or entry.sha256 in pad_sent)
    data = {"model_id": entry.sha256, "y": y, "scene": _scene(entry, mu, labels),
            "encoder": None if entry.sha256 in sent["encoder"] else encoder,
            "decoder": decoder if send_decoder else None}
    _COMPONENT(key=key, data=data, on_code_change=on_code, on_need_change=on_need, height="content")
    sent["encoder"].add(entry.sha256)
    if send_decoder:
        sent["decoder"].add(entry.sha256)
        sent["force"].discard(entry.sha256)
    return _valid_code((st.session_state.get(key) or {}).get("code"), entry)
