"""Latent map: every test image as a point at its code (the encoder's mean μ) in a 2-D view, coloured by label.
Click a point to see the image and its reconstruction, box or lasso a group, or click empty space to decode that
spot and compare it with its nearest training images ("is it just copying?"). Options draw the encoder's
uncertainty, the prior's circles and the decoded images behind the points. The selection lives in the URL.

Below the map, "Walk the map in real time": the latent pad (ui/latent_point.py) over the same view (PCA when the
map shows t-SNE, which cannot be decoded), decoding in the browser as the point is dragged. Its decoder is sent once
per session and model, whichever page showed it first."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui import draw_digit, figures
from ui import latent_point as lp
from ui.catalogue import current_model
from ui.class_picker import class_picker
from ui.datasets import require_data
from ui.figures import map_selection
from ui.images import data_uri, picture
from ui.latent_space import VIEW_LABELS, encode_split, grid_side_limit, latent_view, view_methods
from ui.page import friendly_errors, page_header, pop_notice, queue_notice
from ui.state import bad_link_value, page_state, set_url_exact, url_floats, url_int
from ui.text import plain
from vae_core.latent import (
    decode, grid_picture_box, image_grid, manifold_grid, nearest_training_images, posterior_ellipses, reconstruct,
    typical_nearest_distance, view_extent,
)

GROUP_SHOWN = 16  # images of a box/lasso group shown (the first ones)
ELLIPSE_SAMPLE = 120  # points that get an uncertainty ellipse: more would hide the map
BACKGROUND_N = 15  # decoded images per side of the background grid
CLICK_GRID_N = 41  # invisible click targets per side: a click on empty space lands within half a cell
NEIGHBOURS = 5
COPY_REFERENCE_SAMPLE = 200  # test images whose distance to the training set gives the "typical" distance


# -- state: the selection (a list of test indices, or a spot of the plane), mirrored in the URL ------------------------
@dataclass
class LatentMapState:
    """The page's own state (the widgets keep theirs). link_read: the link was read (on the first visit of the
    session); focus: the selection, {"indices": [test indices]} or {"spot": (x, y)} in the view's plane, None for
    none; pad_class: the class the map last moved the pad to (a CVAE's "Class to decode with")."""

    link_read: bool = False
    focus: dict | None = None
    pad_class: int | None = None


def state() -> LatentMapState:
    return page_state(LatentMapState)


def load_link(n_test: int, methods: list[str], num_classes: int) -> None:
    """On the first visit in a session, take the selection, the view and the class from the link."""
    if state().link_read:
        return
    state().link_read = True
    idx = url_int("idx", 0, n_test - 1)
    spot = url_floats("pt", 2)
    state().focus = {"indices": [idx]} if idx is not None else {"spot": tuple(spot)} if spot is not None else None
    view = st.query_params.get("view")
    if view in methods:
        st.session_state.lm_view = view
    elif view is not None:
        queue_notice(bad_link_value("view"))
    if num_classes:
        cls = url_int("cls", 0, num_classes - 1)
        if cls is not None:
            st.session_state.lm_class = cls


def current_focus(n_test: int) -> dict | None:
    """The selection, with indices another model's data set does not have dropped."""
    focus = state().focus
    if focus and "indices" in focus:
        kept = [i for i in focus["indices"] if 0 <= i < n_test]
        focus = {"indices": kept} if kept or not focus["indices"] else None
    return focus


def set_focus(focus: dict | None) -> None:
    """Select test images or a spot, and move the hand-pick inputs along (run in callbacks, before they draw)."""
    state().focus = focus
    if focus and len(focus.get("indices", [])) == 1:
        st.session_state.lm_idx = focus["indices"][0]
    if focus and "spot" in focus:
        st.session_state.lm_x, st.session_state.lm_y = (round(v, 3) for v in focus["spot"])


def on_map_select(n_test: int, decodable: bool) -> None:
    """A click, box or lasso on the map (see map_selection for what each means)."""
    event = st.session_state.get("lm_chart")
    picked = map_selection(event["selection"] if event else None)
    if picked is None:
        return
    if "spot" in picked:
        if decodable:  # a t-SNE view has no spot to decode (it has no click grid either)
            set_focus(picked)
        return
    set_focus({"indices": [i for i in picked["indices"] if 0 <= i < n_test]})


def write_link(focus: dict | None, method: str, num_classes: int) -> None:
    indices = (focus or {}).get("indices", [])
    spot = (focus or {}).get("spot")
    set_url_exact(idx=indices[0] if len(indices) == 1 else None, pt=list(spot) if spot else None,
                     view=method if method != "identity" else None,
                     cls=st.session_state.get("lm_class") if num_classes else None)


# -- cached work ------------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Decoding the background…", max_entries=64, ttl=3600)
def background(sha: str, method: str, extent: tuple, cls: int | None, _model, _view) -> tuple[str, tuple]:
    """The decoded grid over the map as an inline PNG (thin white lines between the tiles, so neighbours do not
    merge into a wallpaper), upscaled without blur to about the plot's size, and the box to stretch it over so
    each tile sits on its code."""
    n = background_n(_model)
    images, _, _ = manifold_grid(_model, n, view=_view, extent=extent, y=cls)
    picture = image_grid(images, nrow=n, padding=1)
    scale = max(1, round(600 / picture.shape[1]))
    return data_uri(picture.repeat(scale, axis=0).repeat(scale, axis=1)), background_box(extent, _model)


@st.cache_data(show_spinner="Measuring how far real images are from the training set…", max_entries=32)
def typical_copy_distance(sha: str, _data) -> float:
    """The median pixel distance of test images to their nearest training image: the yardstick for "is a decoded
    image a copy?"."""
    return typical_nearest_distance(_data.test.x, _data.train.x, max_points=COPY_REFERENCE_SAMPLE)


@st.cache_data(show_spinner="Searching the training images…", max_entries=256)
def spot_neighbours(sha: str, method: str, spot: tuple[float, float], cls: int | None, _model, _view, _data):
    """The image decoded at a spot of the map and its NEIGHBOURS nearest training images by pixels and by code:
    (image, (indices, distances), (indices, distances)). Cached per model, view, spot and class: against MNIST's
    60,000 training images the two searches take 0.2-0.6 s, which every rerun of the page (a toggle, a release
    of the pad below) would otherwise pay again while the spot stays selected."""
    z = _view.inverse_transform(torch.tensor([spot], dtype=torch.float32))  # (1, D)
    image = decode(_model, z, cls)
    train_mu = torch.from_numpy(encode_split(sha, "train", _model, _data)["mu"])
    pixel = nearest_training_images(_model, image, _data.train.x, k=NEIGHBOURS, space="pixel")
    code = nearest_training_images(_model, image, _data.train.x, k=NEIGHBOURS, space="latent", train_mu=train_mu,
                                   y=cls)
    return image, pixel, code


# -- controls --------------------------------------------------------------------------------------------------------
def controls(entry, data, methods: list[str]) -> tuple[str, int | None]:
    """The view, the CVAE's class and the option toggles; returns (view method, class or None)."""
    config = entry.config
    cols = st.columns([2, 2, 3])
    with cols[0]:
        if len(methods) > 1:
            if st.session_state.get("lm_view") not in methods:
                st.session_state.lm_view = methods[0]
            method = st.selectbox("2-D view", methods, key="lm_view", format_func=VIEW_LABELS.get,
                                  help=f"This model's codes have {config.latent_dim} numbers, so the map shows a "
                                       "2-D view of them. PCA shows the two directions along which the codes vary "
                                       "most, and any spot of it can be decoded. t-SNE arranges the points so "
                                       "neighbours stay neighbours, but its axes mean nothing and it cannot be "
                                       "decoded: it is for looking only.")
        else:
            method = methods[0]
            st.markdown("**2-D view:** the latent plane itself")
            st.caption("This model's codes have two numbers, so the map shows them directly: z[0] across, z[1] up."
                       if config.latent_dim == 2 else
                       "This model's codes have one number: z[0] runs across, and the up axis is unused.")
    cls = None
    with cols[1]:
        if config.is_conditional:
            cls = class_picker(data.label_names, key="lm_class",
                               help="A conditional VAE is told the label, so its code keeps only the style. "
                                    "Decoded spots and the background are drawn as this class; the points are "
                                    "each encoded with their own true label.")
    with cols[2]:
        option_toggles(entry, method)
    return method, cls


def option_toggles(entry, method: str) -> None:
    tsne = method == "tsne"
    no_map = "Not available in a t-SNE view: it has no way back from the plane to the codes."
    variational = entry.config.is_variational
    st.toggle("Encoder uncertainty (μ ± σ)", key="lm_sigma", disabled=tsne or not variational,
              help=no_map if tsne else
              "This model (an AE or a WAE) gives one exact code per image: it has no uncertainty to draw."
              if not variational else
              f"For {ELLIPSE_SAMPLE} of the images, an ellipse one standard deviation (σ) around the code (μ): "
              "the encoder is unsure where in it the image belongs. Big ellipses mean a vague code. In a PCA "
              "view the ellipse is the encoder's spread within the view's plane; spread along the directions "
              "the view hides is not shown.")
    st.toggle("Prior circles (1σ, 2σ, 3σ)", key="lm_prior", disabled=tsne,
              help=no_map if tsne else
              "Dashed circles 1, 2 and 3 standard deviations from the centre of the prior, the bell-shaped "
              "distribution a VAE pulls its codes towards (and samples new images from). A VAE's points should "
              "mostly sit inside; an autoencoder has no such pull, so its points can be anywhere.")
    st.toggle("Decoded images behind the points", key="lm_background", disabled=tsne,
              help=no_map if tsne else
              f"Decodes a {BACKGROUND_N} × {BACKGROUND_N} grid of codes spread over the map and draws the "
              "images behind the points: what each region of the latent space generates.")


# -- the map ----------------------------------------------------------------------------------------------------------
def view_points(view, test: dict) -> tuple[np.ndarray, np.ndarray]:
    """(points (M, 2) in the view, their test indices (M,)): t-SNE embeds only a sample of the points."""
    if view.method == "tsne":
        return view.embedding_.numpy(), view.indices_.numpy()
    return view.transform(torch.from_numpy(test["mu"])).numpy(), np.arange(len(test["mu"]))


def map_figure(entry, model, data, test, view, extent, cls, focus) -> go.Figure:
    points, indices = view_points(view, test)
    fig = figures.latent_scatter(points, test["y"][indices], data.label_names, view.axis_labels, indices=indices,
                                 height=700, marker_size=7 if len(points) <= 1000 else 4)
    # Below the plot, the legend leaves the square map its full width; a white rim keeps points readable on the
    # decoded background.
    fig.update_layout(legend=dict(title_text="label", orientation="h", y=-0.12, yanchor="top"),
                      uirevision="latent-map", margin=dict(t=40))
    if len(points) <= 1000:  # on thousands of small points the rims would be all one sees
        fig.update_traces(marker_line=dict(width=0.6, color="white"), selector=dict(type="scattergl"))
    # A decodable map is framed by the background's box (half a tile beyond the extent), shown or not, so the map
    # does not jump when the background is toggled.
    frame = background_box(extent, model) if view.decodable else extent
    if view.decodable:
        figures.click_grid(fig, frame, CLICK_GRID_N)
    if st.session_state.get("lm_background") and view.decodable:
        uri, box = background(entry.sha256, view.method, extent, cls, model, view)
        figures.background_image(fig, uri, box)
    if st.session_state.get("lm_sigma") and view.decodable and test["logvar"] is not None:
        sample = np.unique(np.linspace(0, len(points) - 1, min(len(points), ELLIPSE_SAMPLE)).round().astype(int))
        mu, logvar = torch.from_numpy(test["mu"][sample]), torch.from_numpy(test["logvar"][sample])
        shapes = posterior_ellipses(view, mu, logvar)
        figures.outlines(fig, shapes.numpy(), f"μ ± σ ({len(sample)} images)")
    if st.session_state.get("lm_prior") and view.decodable:
        center, scale = view.prior_center_and_scale()
        figures.prior_contours(fig, tuple(center.tolist()), tuple(scale.tolist()))
        # Darker than the shared default: the circles must show over the decoded background too.
        fig.update_traces(line=dict(color="rgba(17,24,39,0.85)", width=1.5), selector=dict(legendgroup="prior"))
    mark_focus(fig, focus, points, indices)
    fig.update_xaxes(range=[frame[0], frame[1]])
    fig.update_yaxes(range=[frame[2], frame[3]])
    return fig


def background_n(model) -> int:
    """Decoded images per side of the background: BACKGROUND_N, fewer for a model with large images (budget)."""
    return grid_side_limit(model, BACKGROUND_N)


def background_box(extent: tuple, model) -> tuple:
    _, height, width = model.config.input_shape
    return grid_picture_box(extent, background_n(model), (width, height), padding=1)


def mark_focus(fig: go.Figure, focus: dict | None, points: np.ndarray, indices: np.ndarray) -> None:
    if not focus:
        return
    if "spot" in focus:
        figures.highlight(fig, np.array([focus["spot"]]), "decoded spot", symbol="x-thin-open", color="#e11d48")
        return
    shown = np.isin(indices, focus["indices"][:GROUP_SHOWN])
    if shown.any():
        figures.highlight(fig, points[shown], "selected")


# -- the selection panel -----------------------------------------------------------------------------------------------
def show_points(model, data, test, view, indices: list[int]) -> None:
    if not indices:
        st.info("No images inside that box or lasso: try a bigger one.", icon=":material/info:")
        return
    x = data.test.x[indices[:GROUP_SHOWN]]
    y = data.test.y[indices[:GROUP_SHOWN]]
    recon = reconstruct(model, x, y)  # a CVAE decodes with each image's own label
    names = data.label_names
    if len(indices) == 1:
        i = indices[0]
        where = view_points(view, test)
        pos = np.flatnonzero(where[1] == i)
        at = (f" · at ({where[0][pos[0], 0]:.2f}, {where[0][pos[0], 1]:.2f})" if len(pos)
              else " · not in this t-SNE sample")
        st.markdown(f"**Test image #{i}** · label **{plain(names[int(y[0])], 40)}**{at}")
        left, right = st.columns(2)
        with left:
            picture(x, 1, "Input", "lm_input", tile_px=160)
        with right:
            picture(recon, 1, "Reconstruction", "lm_recon", tile_px=160)
        st.caption("The reconstruction is the decoder's image of this point's code: the closer to the input, "
                   "the more the code keeps.")
        return
    labels, counts = np.unique(test["y"][indices], return_counts=True)
    summary = ", ".join(f"{plain(names[int(k)], 40)} ({c})"
                        for k, c in sorted(zip(labels, counts), key=lambda t: -t[1]))
    shown = min(len(indices), GROUP_SHOWN)
    st.markdown(f"**{len(indices)} test images selected**" + (f" (the first {shown} shown)" if len(indices) > shown
                                                                else "") + f" · labels: {summary}")
    picture(x, 4, "Inputs", "lm_inputs", tile_px=72)
    picture(recon, 4, "Their reconstructions", "lm_recons", tile_px=72)


def joined(distances: torch.Tensor) -> str:
    return " · ".join(f"{d:.2f}" for d in distances.tolist())


def show_spot(entry, model, data, view, spot, cls) -> None:
    if not view.decodable:
        st.info("A t-SNE view cannot be decoded: switch to the PCA view to decode a spot.", icon=":material/info:")
        return
    image, (pix_idx, pix_dist), (lat_idx, lat_dist) = spot_neighbours(entry.sha256, view.method, tuple(spot), cls,
                                                                       model, view, data)
    st.markdown(f"**Decoded spot** ({spot[0]:.2f}, {spot[1]:.2f})"
                + (f" as class **{plain(data.label_names[cls], 40)}**" if cls is not None else ""))
    picture(image, 1, "What the decoder makes of this spot", "lm_spot", tile_px=160)
    st.markdown("**Is it just copying?** Its nearest training images:")
    picture(data.train.x[pix_idx[0]], NEIGHBOURS, f"By pixels · distance {joined(pix_dist[0])}", "lm_near_pixels",
            tile_px=60)
    picture(data.train.x[lat_idx[0]], NEIGHBOURS, f"By code · distance {joined(lat_dist[0])}", "lm_near_codes",
            tile_px=60)
    typical = typical_copy_distance(entry.sha256, data)
    st.caption(f"A pixel distance near 0 would be a copy. For comparison, a real test image is typically "
               f"{typical:.2f} from its nearest training image. The code distance compares the encoder's codes "
               "of this image and of each training image.")


def take_index() -> None:
    set_focus({"indices": [int(st.session_state.lm_idx)]})


def take_spot() -> None:
    set_focus({"spot": (float(st.session_state.lm_x), float(st.session_state.lm_y))})


def hand_pick(n_test: int, decodable: bool) -> None:
    """Number inputs for choosing without the mouse (and for exact spots)."""
    with st.expander("Choose by number", expanded=state().focus is None):
        st.session_state.lm_idx = min(int(st.session_state.get("lm_idx", 0)), n_test - 1)
        st.number_input("Test image number", 0, n_test - 1, key="lm_idx", on_change=take_index,
                        help=f"Show one of the {n_test} test images by its number (0 to {n_test - 1}).")
        if not decodable:
            return
        st.session_state.setdefault("lm_x", 0.0)
        st.session_state.setdefault("lm_y", 0.0)
        a, b = st.columns(2)
        a.number_input("Spot: across", -1000.0, 1000.0, key="lm_x", step=0.1, format="%.3f", on_change=take_spot,
                       help="The horizontal position, in the map's units, of a spot to decode.")
        b.number_input("Spot: up", -1000.0, 1000.0, key="lm_y", step=0.1, format="%.3f", on_change=take_spot,
                       help="The vertical position, in the map's units, of a spot to decode.")


@st.fragment
def explore(entry, model, data, test, view, extent, cls) -> None:
    """The map and the selection panel: a click reruns only this part."""
    n_test = len(test["mu"])
    focus = current_focus(n_test)
    left, right = st.columns([3, 2], gap="medium")
    with left, friendly_errors("Drawing the map"):  # a fragment rerun is not inside main()'s guard
        fig = map_figure(entry, model, data, test, view, extent, cls, focus)
        st.plotly_chart(fig, key="lm_chart", on_select=lambda: on_map_select(n_test, view.decodable),
                        selection_mode=("points", "box", "lasso"), width="stretch")
        st.caption("Hover a point for its label and number. Plotly cannot show pictures in a hover box, so click "
                   "the point: its image appears on the right." + (" Click empty space to decode that spot."
                                                                    if view.decodable else ""))
    with right:
        st.subheader("Selection")
        with friendly_errors("Showing the selection"):
            if focus is None:
                st.info("Nothing selected yet: click a point, drag a box or lasso around some, or click empty "
                        "space.", icon=":material/touch_app:")
            elif "spot" in focus:
                show_spot(entry, model, data, view, focus["spot"], cls)
            else:
                show_points(model, data, test, view, focus["indices"])
        hand_pick(n_test, view.decodable)
    write_link(focus, view.method, entry.config.num_classes if entry.config.is_conditional else 0)


# -- the real-time pad -------------------------------------------------------------------------------------------------
@st.fragment
def walk(entry, model, data, test, method: str, cls: int | None) -> None:
    """The latent pad over the map's view of the test codes (a release reruns only this part)."""
    st.subheader("Walk the map in real time")
    with friendly_errors("The real-time pad"):
        view, about = lp.plane_view(entry, test["mu"])  # the map's view: identity up to 2-D, else PCA
        if method == "tsne":
            st.caption("A t-SNE map has no way back from the plane to the codes, so the pad below shows the PCA view "
                       "of the same codes instead.")
        st.caption(about + " Drag the point across the map and the decoder draws the image of every spot you pass, "
                   "at once, because it runs in your browser; the sliders move single numbers of the code.")
        z = y = None
        if cls is not None:  # the map's "Class to decode with" moves the pad's class too, when it changes
            if state().pad_class not in (None, cls):
                z, y = lp.starting_point(entry, view).z, cls
            state().pad_class = cls
        points = view.transform(torch.from_numpy(test["mu"])).numpy()
        lp.latent_pad(model, entry, view, points, test["y"], list(data.label_names), key="lm_pad", z=z, y=y,
                      mu=test["mu"])


# -- the page ----------------------------------------------------------------------------------------------------------
def main() -> None:
    page_header(
        "Latent map",
        "The encoder turns every image into a short list of numbers, its **code**. This map puts each test image "
        "at its code, coloured by its true label: images the model finds alike land close together. **Click** a "
        "point to see the image and how the model rebuilds it, **drag a box or lasso** (buttons at the top right "
        "of the map) to look at a group, or **click empty space** to see what the decoder makes of that spot.",
    )
    entry, model = current_model()
    data = require_data(entry)
    with friendly_errors("Drawing the latent map"):
        test = encode_split(entry.sha256, "test", model, data)
        methods = view_methods(entry.config.latent_dim)
        load_link(len(test["mu"]), methods, entry.config.num_classes if entry.config.is_conditional else 0)
        pop_notice()
        method, cls = controls(entry, data, methods)
        view = latent_view(entry.sha256, method, test["mu"])
        extent = view_extent(view, torch.from_numpy(test["mu"]))
        explore(entry, model, data, test, view, extent, cls)
        walk(entry, model, data, test, method, cls)
        draw(entry, model, test)


def draw(entry, model, test) -> None:
    """Draw a digit and watch where the encoder puts it on this map (28x28 greyscale models)."""
    where = "" if entry.config.latent_dim == 2 else "; shown in the two dimensions that carry the most information"
    if draw_digit.section_heading(
            entry, "Draw a digit and watch it land",
            "Draw in the black square: on every stroke the encoder, running in your browser, places your drawing on "
            f"the map (the red ellipse: its mean μ and one standard deviation σ{where}) and the decoder redraws it "
            "from μ. Let go and the pad above moves to your code."):
        draw_digit.draw_digit(model, entry, key="lm_draw", mu=test["mu"], labels=test["y"])


if __name__ == "__main__":
    main()
