"""The latent pad: a 2-D pad over the latent map plus sliders for latent dimensions, decoded in the browser at
frame rate (an `st.components.v2` component, assets in ui/latent_pad/), with a server-side fallback.

    point = latent_pad(model, entry, view, points, labels, label_names, key="pad")
    point.z, point.y          # the point the user released the pad at (or the starting point)

Any page can embed it: pass the model and its entry (ui.catalogue.current_model()), a decodable 2-D view (identity
or PCA, ui.latent_space.latent_view), the test-set points in that view with their labels (drawn faintly), and a
key unique on the page.

How the weights travel: the decoder is exported once per model (vae_core.export) and sent to the page as base64
float32 only on the first run that shows that model in this session; the scene (view, extent, points, slider
ranges) likewise once per view. Later runs send a few hundred bytes ({ids, z, y, slider dims}); the page keeps
what it received in `window.__latentLab`, so remounts and switching back to a model send nothing big either. If the
page lacks something (a reload), the component asks for it with a one-shot `need` trigger and the next run sends it.

The point comes back to Python on release only (pointer up, slider change, class click), through the
component state `point`; it becomes the session's shared latent point (`shared_point`), which the URL
(`z`, `class`) and other pages follow. A decoder the browser cannot run (`UnsupportedExport`) or `browser=False`
gives the server path: a notice, Streamlit sliders and an image decoded by PyTorch in a fragment.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ui.catalogue import class_names
from ui.components import define, model_payload
from ui.images import data_uri, scale_for
from ui.latent_space import latent_view
from ui.figures import PALETTE  # the latent map's colours, so a class looks the same on every page
from ui.state import set_url_exact, url_floats, url_int
from ui.text import plain
from vae_core.latent import (IdentityView, LatentView, PCAView, code_radius, decode, grid_extent, image_grid,
                             view_extent)

MAX_SLIDERS = 8  # sliders shown by default for a larger latent: the most active dimensions
MAX_POINTS = 2000  # test-set points drawn on the pad (a deterministic subsample beyond that)
IMAGE_PX = 200  # the decoded image is drawn about this big (a whole multiple of its pixels)
REACHES = (1, 2, 3, 5, 10, 20)  # how far the sliders may reach either side of 0, in prior σ
SLIDER_STEP = 0.05  # the server's sliders, in σ
SLIDER_HELP = ("A latent dimension is one of the numbers of the code the decoder turns into an image. 0 is the "
               "centre of the prior (the bell curve the codes were trained to follow) and 1 is one prior standard "
               "deviation (σ), so the codes of real images mostly lie within ±3.")
CLASS_HELP = "A conditional VAE is told the class: the same code drawn as each class keeps its style."
SHARED_KEY = "latent_point"  # st.session_state: {"sha", "model", "z", "y"}, the point every page follows
_SENT_KEY = "_latent_pad_sent"  # st.session_state: ids of the decoders and scenes this session's page holds


@dataclass(frozen=True)
class PadPoint:
    """A point of the latent space: z (D floats), the class y of a CVAE (else None), and whether the user set it."""

    z: list[float]
    y: int | None
    released: bool

    def tensor(self) -> torch.Tensor:
        return torch.tensor([self.z], dtype=torch.float32)  # (1, D)


# -- the component ----------------------------------------------------------------------------------------------
_COMPONENT = define("latent_pad", "latent_pad/pad.html", "latent_pad/pad.css",
                    ["latent_pad/decoder.js", "latent_pad/pad.js"])  # one ES module: the decoder, then the pad


def browser_support(model, entry) -> str | None:
    """None when the browser can decode this model, else the reason it cannot."""
    return model_payload(entry.sha256, "decoder", model)[1]


def fallback_notice(reason: str) -> str:
    """What a page says when the browser cannot run this model's decoder (reason: from browser_support)."""
    return (f"This model's decoder cannot run in the browser ({reason}), so each image is decoded on the server: "
            "move a slider and wait for the picture.")


# -- the shared point -------------------------------------------------------------------------------------------
def shared_point(entry) -> PadPoint | None:
    """The latent point last chosen in this session for this model (by any page), or None."""
    saved = st.session_state.get(SHARED_KEY)
    if saved and saved.get("sha") == entry.sha256 and len(saved["z"]) == entry.config.latent_dim:
        return PadPoint(list(saved["z"]), saved.get("y"), True)
    return None


def share_point(entry, z, y: int | None) -> None:
    """Make (z, y) the session's latent point for this model; the URL follows on the next run of the pad."""
    st.session_state[SHARED_KEY] = {"sha": entry.sha256, "model": entry.key, "z": [float(v) for v in z],
                                    "y": None if y is None else int(y)}


def _valid_point(value, entry) -> tuple[list[float], int | None] | None:
    """(z, y) from the component's released state, or None if it is for another model or malformed."""
    if not isinstance(value, dict) or value.get("decoder_id") != entry.sha256:
        return None
    z, y = value.get("z"), value.get("y")
    d, k = entry.config.latent_dim, (entry.config.num_classes if entry.config.is_conditional else 0)
    if not isinstance(z, list) or len(z) != d or not all(isinstance(v, (int, float)) and math.isfinite(v)
                                                         and abs(v) <= 1e3 for v in z):
        return None
    if k:
        if not isinstance(y, int) or not 0 <= y < k:
            return None
    else:
        y = None
    return [float(v) for v in z], y


def starting_point(entry, view: LatentView) -> PadPoint:
    """The session's shared point for this model, else the link's `z`/`class`, else the view's origin."""
    shared = shared_point(entry)
    if shared is not None:
        return shared
    config = entry.config
    k = config.num_classes if config.is_conditional else 0
    y = (url_int("class", 0, k - 1) if k else None)
    if k and y is None:
        y = 0
    z = url_floats("z", config.latent_dim)
    if z is None:
        z = view.inverse_transform(torch.zeros(1, 2))[0].tolist() if view.decodable else [0.0] * config.latent_dim
    return PadPoint([float(v) for v in z], y, False)


# -- what the page draws --------------------------------------------------------------------------------------------
def dims_by_information(entry, mu: np.ndarray | None = None) -> list[int]:
    """Every latent dimension, those carrying the most information first: by test KL per dimension (the model
    card's), else by the variance of the codes `mu` (N, D), else in index order. Ties keep index order (an AE's
    zero KLs)."""
    d = entry.config.latent_dim
    score = entry.meta.get("kl_per_dim") or entry.card.get("kl_per_dim")
    if not score or len(score) != d:
        score = mu.var(axis=0).tolist() if mu is not None and len(mu) > 1 else [0.0] * d
    return [int(i) for i in np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")]


def default_slider_dims(entry, mu: np.ndarray | None = None, limit: int = MAX_SLIDERS) -> list[int]:
    """Every dimension of a small latent; for a larger one the `limit` most informative ones, in index order."""
    return sorted(dims_by_information(entry, mu)[:limit])


def plane_view(entry, mu: np.ndarray | None) -> tuple[LatentView, str]:
    """The Latent map's decodable view (identity up to 2-D, PCA above) and a sentence on what the pad shows."""
    d = entry.config.latent_dim
    if mu is not None:
        view = latent_view(entry.sha256, "identity" if d <= 2 else "pca", mu)
    elif d <= 2:
        view = IdentityView().fit(torch.zeros(1, d))
    else:  # no data to fit PCA on: the plane of the first two dimensions, the others at 0
        view = PCAView.from_plane(torch.zeros(d, dtype=torch.float64), torch.eye(2, d, dtype=torch.float64),
                                  ("z[0]", "z[1]"))
    if d <= 2:
        about = "The pad is the latent plane itself: its two axes are the two numbers of the code."
    elif view.explained_variance_ratio_ is not None:
        about = (f"The code has {d} numbers, so the pad is the flat slice through the test codes that shows the most "
                 "of their spread (PCA): a spot on it sets all of them; a slider then moves one number off that slice.")
    else:
        about = (f"The code has {d} numbers; without the model's data the pad is the plane of z[0] and z[1], the "
                 "others at 0; a slider moves one number off that plane.")
    return view, about


def _view_maps(view: LatentView) -> dict:
    d = view.latent_dim_
    if not view.decodable:
        raise ValueError("the latent pad needs a decodable view (identity or PCA): a t-SNE view has no way back "
                         "to the latent space")
    if view.method == "identity":
        mean = [0.0] * d
        components = [[1.0 if j == i else 0.0 for j in range(d)] for i in range(2)]  # D == 1: a zero 2nd row
    else:
        mean, components = view.mean_.tolist(), view.components_.tolist()
    return {"method": view.method, "mean": mean, "components": components, "axis_labels": list(view.axis_labels)}


def pad_extent(view: LatentView, mu: np.ndarray | None) -> tuple[float, float, float, float]:
    """The pad's plane, as the Latent map page draws it: the data and the prior's ±3σ box, with a margin."""
    if mu is not None and len(mu) > 1:
        return tuple(float(v) for v in view_extent(view, torch.from_numpy(np.asarray(mu, np.float32))))
    return tuple(float(v) for v in grid_extent(view, mode="prior"))


def default_reach(entry, mu: np.ndarray | None = None) -> int:
    """How far the sliders reach either side of 0, in prior σ (one of REACHES): ±3 for a generator (VAE, WAE: the
    codes of real images mostly lie within ±3σ of the prior); an autoencoder has no prior scale, so the smallest
    reach that covers its codes `mu` (N, D) (vae_core.latent.code_radius), ±3 without them."""
    if not entry.config.is_generative and mu is not None and len(mu):
        radius = code_radius(torch.from_numpy(np.asarray(mu, dtype=np.float32)))
        return next((r for r in REACHES if r >= radius), REACHES[-1])
    return 3


def reach_to(reach: int, z) -> int:
    """The reach, widened to the next whole σ when the point z lies beyond it (a link, an AE's code): a Streamlit
    slider cannot hold a value outside its range."""
    return max(int(reach), math.ceil(max((abs(float(v)) for v in z), default=0)))


def slider_ranges(entry, mu: np.ndarray | None, reach: int | None = None, z=None) -> list[list[float]]:
    """The one slider-range rule, for the browser's sliders and the server's: every dimension from -reach to
    +reach σ (default_reach when None), widened to reach the point z when one is given."""
    reach = default_reach(entry, mu) if reach is None else int(reach)
    if z is not None:
        reach = reach_to(reach, z)
    return [[-float(reach), float(reach)]] * entry.config.latent_dim


def _scene(view, points, labels, label_names, extent, ranges) -> dict:
    pts = None
    if points is not None and len(points):
        points = np.asarray(points, dtype=np.float64)
        idx = np.arange(len(points))
        if len(idx) > MAX_POINTS:
            idx = np.sort(np.random.default_rng(0).choice(len(points), MAX_POINTS, replace=False))
        pts = {"x": np.round(points[idx, 0], 3).tolist(), "y": np.round(points[idx, 1], 3).tolist(),
               "label": None if labels is None else np.asarray(labels)[idx].astype(int).tolist()}
    return {"view": _view_maps(view), "extent": list(extent), "points": pts,
            "label_names": None if label_names is None else [str(n) for n in label_names],
            "palette": PALETTE, "ranges": ranges}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _sent() -> dict[str, set]:
    return st.session_state.setdefault(_SENT_KEY, {"decoder": set(), "scene": set()})


# -- the public function --------------------------------------------------------------------------------------------
def latent_pad(model, entry, view: LatentView, points=None, labels=None, label_names=None, *, key: str,
               z=None, y: int | None = None, slider_dims: list[int] | None = None, mu: np.ndarray | None = None,
               extent: tuple[float, float, float, float] | None = None, reach: int | None = None,
               browser: bool = True, url: bool = True, image_px: int = IMAGE_PX,
               own_fragment: bool = True, image_key: str | None = None) -> PadPoint:
    """Draw the latent pad and return the current point (the released one once the user has touched it).

    model, entry: current_model(). view: a decodable LatentView of this model (identity or PCA). points (N, 2):
    the test set in that view, labels (N,) and label_names for their colours (all optional). key: unique on the
    page. z, y: move the pad to this point now (e.g. after a "random" button); None keeps the shared point.
    slider_dims: the dimensions that get a slider (default: default_slider_dims). mu (N, D): the codes behind
    `points`, for the pad's extent and the slider ranges. extent: the pad's plane (default pad_extent). reach:
    how far the sliders go either side of 0, in prior σ (default default_reach; see slider_ranges). browser=False
    forces the server path. url: keep `z` (and `class`) in the URL. image_px: the decoded image is drawn about this
    many pixels a side, at a whole multiple of its size (nearest neighbour: every pixel a crisp block of the same
    size). own_fragment: the server path reruns alone on a slider move; False when the caller's own fragment holds
    the pad and more that should follow the sliders (the Decode page's grids). image_key: the key of the server
    path's image container (default `<key>_server_image`; its CSS class .st-key-<image_key> is what benches find).
    """
    if view.latent_dim_ != entry.config.latent_dim:
        raise ValueError(f"the view is for D = {view.latent_dim_} but the model has D = {entry.config.latent_dim}")
    if z is not None:
        share_point(entry, list(np.asarray(z, dtype=np.float64).reshape(-1)), y)
    start = starting_point(entry, view)
    dims = default_slider_dims(entry, mu) if slider_dims is None else [int(d) for d in slider_dims]
    payload, reason = model_payload(entry.sha256, "decoder", model)
    if payload is None or not browser:
        notice = None if payload is not None else fallback_notice(reason)
        ranges = slider_ranges(entry, mu, reach, z=start.z)  # a Streamlit slider must hold the point
        point = _server_pad(model, entry, start, dims, ranges, key=key, notice=notice, url=url, image_px=image_px,
                            own_fragment=own_fragment, image_key=image_key or f"{key}_server_image")
    else:  # the browser's sliders are not widened to the point: a release there would resend the scene
        point = _browser_pad(payload, entry, view, points, labels, label_names, start, dims, mu, extent,
                             slider_ranges(entry, mu, reach), key=key, image_px=image_px)
    if url:
        set_url_exact(z=point.z, **{"class": point.y})
    return point


def image_size(entry, image_px: int = IMAGE_PX) -> int:
    """The decoded image's size on screen: the whole multiple of its width nearest image_px."""
    width = entry.config.input_shape[-1]
    return max(1, round(image_px / width)) * width


def _browser_pad(payload, entry, view, points, labels, label_names, start: PadPoint, dims, mu, extent, ranges, *,
                 key: str, image_px: int = IMAGE_PX) -> PadPoint:
    extent = pad_extent(view, mu) if extent is None else tuple(float(v) for v in extent)
    scene = _scene(view, points, labels, label_names, extent, ranges)
    scene_id = f"{entry.sha256[:12]}-{_digest(scene)}"
    sent = _sent()

    force_point = f"_latent_pad_force_point_{key}"

    def on_need() -> None:  # the page lacks something (a reload kept the session): send it on this run
        need = (st.session_state.get(key) or {}).get("need") or {}
        sent["decoder"].discard(need.get("decoder"))
        sent["scene"].discard(need.get("scene"))
        if need.get("point"):
            st.session_state[force_point] = True

    def on_point() -> None:  # the user released the pad: the session's point follows
        released = _valid_point((st.session_state.get(key) or {}).get("point"), entry)
        if released is not None:
            share_point(entry, *released)

    # The point only when the page does not show it already: then a release's rerun sends the very same element,
    # which Streamlit replaces by a reference to the copy the browser holds (the JS alone is ~20 kB).
    shown = _valid_point((st.session_state.get(key) or {}).get("point"), entry)
    keep = shown is not None and shown == (start.z, start.y) and not st.session_state.pop(force_point, False)
    data = {"decoder_id": entry.sha256, "scene_id": scene_id, "z": None if keep else start.z,
            "y": None if keep else start.y, "slider_dims": dims,
            "decoder": None if entry.sha256 in sent["decoder"] else payload,
            "scene": None if scene_id in sent["scene"] else scene}
    with st.container(key=f"{key}_frame"):  # the image size reaches the component's shadow root as a CSS variable
        st.html(f"<style>.st-key-{key}_frame {{ --latent-image-px: {image_size(entry, image_px)}px; }}</style>")
        _COMPONENT(key=key, data=data, on_point_change=on_point, on_need_change=on_need, height="content")
    sent["decoder"].add(entry.sha256)
    sent["scene"].add(scene_id)
    st.session_state.setdefault("_latent_pad_bytes", {})[key] = len(json.dumps(data))  # measured by the tests
    return shared_point(entry) or start


# -- the server path --------------------------------------------------------------------------------------------------
def _server_pad(model, entry, start: PadPoint, dims: list[int], ranges, *, key: str, notice: str | None,
                url: bool, image_px: int, own_fragment: bool, image_key: str) -> PadPoint:
    """Streamlit sliders (and a CVAE's class) and a PyTorch decode: each change is a round trip to the server."""
    if notice:
        st.info(notice, icon=":material/dns:")
    else:
        st.caption("Decoding on the server: every change travels to the server, which decodes the image with "
                   "PyTorch and sends the picture back.")
    body = st.fragment(_server_body) if own_fragment else _server_body
    body(model, entry, start, dims, ranges, key, url, image_px, image_key)
    return shared_point(entry) or start


def _server_body(model, entry, start: PadPoint, dims: list[int], ranges, key: str, url: bool, image_px: int,
                 image_key: str) -> None:
    config = entry.config
    k = config.num_classes if config.is_conditional else 0
    prefix = f"{key}_server_{entry.sha256[:12]}_{_digest(ranges)[:6]}"  # other ranges: other sliders
    point = shared_point(entry) or start
    # The sliders start at the shared point, and again whenever it moved elsewhere (a page's start button, the
    # browser's pad, another page): their own last values are what they were built from.
    moved = st.session_state.get(f"{prefix}_at") != (point.z, point.y)
    z, y = list(point.z), point.y
    left, right = st.columns([3, 2], gap="large")
    with left:
        if k:
            names = class_names(entry, model)
            if moved or f"{prefix}_y" not in st.session_state:
                st.session_state[f"{prefix}_y"] = point.y or 0
            y = int(st.radio("Class", range(k), format_func=lambda i: plain(names[i], 40), horizontal=True,
                             key=f"{prefix}_y", help=CLASS_HELP))
        for d in dims:
            lo, hi = ranges[d]
            wkey = f"{prefix}_z{d}"
            if moved or wkey not in st.session_state:
                st.session_state[wkey] = float(min(max(z[d], lo), hi))
            z[d] = st.slider(f"z[{d}]", float(lo), float(hi), step=SLIDER_STEP, format="%.2f", key=wkey,
                             help=SLIDER_HELP)
    if z != point.z or y != point.y:  # a slider moved: the other pages follow
        share_point(entry, z, y)
        if url:
            set_url_exact(z=z, **{"class": y})
    st.session_state[f"{prefix}_at"] = (z, y)
    with right, st.container(key=image_key):
        images = decode(model, torch.tensor([z], dtype=torch.float32), y)  # (1, C, H, W)
        picture = image_grid(images, nrow=1, scale=scale_for(images, image_px))
        shown = f", class {plain(class_names(entry, model)[y], 80)}" if k else ""
        st.image(data_uri(picture), caption=f"The decoder's image for this code{shown} (decoded on the server)",
                 width="content")
