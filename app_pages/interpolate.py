"""Interpolate: pick two images (by number, by clicking the map, at random from two classes, or your own files),
walk from the code of one to the code of the other in a straight line or along a great circle, and watch the
decoded steps morph. The path is drawn on the latent map, each step's ELBO is charted, and the strip downloads as
a PNG or an animated GIF. The two ends, the method and the number of steps live in the URL."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from ui import figures
from ui.catalogue import current_model
from ui.class_picker import class_picker
from ui.datasets import require_data
from ui.figures import map_selection
from ui.images import picture, scale_for
from ui.latent_space import encode_split, latent_view
from ui.page import friendly_errors, page_header, pop_notice, queue_notice
from ui.state import bad_link_value, page_state, set_url_exact, url_floats, url_int
from ui.text import plain
from vae_core.errors import UserInputError
from vae_core.latent import (
    animated_gif, decode, encode_dataset, image_from_bytes, image_grid, interpolate, path_elbo, png_bytes,
    view_extent,
)

MAX_STEPS = 24
METHODS = {"linear": "Straight line (linear)", "slerp": "Great circle (slerp)"}
STRIP_PX = 1100  # the strip's width on screen: its tiles shrink as the steps grow
GIF_TILE_PX = 128
UPLOAD_TYPES = ["png", "jpg", "jpeg"]


# -- the page's state --------------------------------------------------------------------------------------------------
@dataclass
class InterpolateState:
    """The page's own state (the widgets keep theirs). ends: {"a": start, "b": end}, None until the link was read
    on the first visit; an end is {"idx": test index} or {"z": latent code (list), "name": str, "image": tensor |
    None} (your image, a spot of the map, or a code from a link). next_side: the end the next map click sets.
    upload_errors: per side, why the last uploaded picture could not be used."""

    ends: dict | None = None
    next_side: str = "a"
    upload_errors: dict[str, str] = field(default_factory=dict)


def state() -> InterpolateState:
    return page_state(InterpolateState)


# -- the two ends ------------------------------------------------------------------------------------------------------
def default_ends(y: np.ndarray) -> dict:
    """The first test images of the first two classes: a "0" and a "1" for the digits."""
    classes = np.unique(y)
    first = np.flatnonzero(y == classes[0])
    b = np.flatnonzero(y == classes[1])[0] if len(classes) > 1 else first[min(1, len(first) - 1)]
    return {"a": {"idx": int(first[0])}, "b": {"idx": int(b)}}


def end_from_link(side: str, n_test: int, d: int) -> dict | None:
    idx = url_int(side, 0, n_test - 1)
    if idx is not None:
        return {"idx": idx}
    z = url_floats(f"z{side}", d)
    return {"z": z, "name": "a code from the link", "image": None} if z is not None else None


def load_link(n_test: int, d: int, y: np.ndarray, num_classes: int) -> None:
    """On the first visit in a session, take the ends, the method, the steps and the class from the link."""
    if state().ends is not None:
        return
    ends = default_ends(y)
    for side in "ab":
        ends[side] = end_from_link(side, n_test, d) or ends[side]
    set_ends(ends)
    method = st.query_params.get("method")
    if method in METHODS:
        st.session_state.ip_method = method
    elif method is not None:
        queue_notice(bad_link_value("method"))
    n = url_int("n", 2, MAX_STEPS)
    if n is not None:
        st.session_state.ip_n = n
    if num_classes:
        cls = url_int("cls", 0, num_classes - 1)
        if cls is not None:
            st.session_state.ip_class = cls


def valid_ends(n_test: int, d: int, y: np.ndarray) -> dict:
    """The ends, each replaced by the default when it does not fit this model (another data set or latent size)."""
    ends = dict(state().ends)
    defaults = default_ends(y)
    changed = False
    for side in "ab":
        end = ends[side]
        if not (0 <= end["idx"] < n_test if "idx" in end else len(end["z"]) == d):
            ends[side], changed = defaults[side], True
    if changed:
        set_ends(ends)
    return ends


def set_ends(ends: dict) -> None:
    """Store the ends and move the number inputs along (called in callbacks, before the inputs are drawn)."""
    state().ends = ends
    for side in "ab":
        if "idx" in ends[side]:
            st.session_state[f"ip_{side}"] = ends[side]["idx"]


def set_end(side: str, end: dict) -> None:
    set_ends({**state().ends, side: end})


def end_code(end: dict, test: dict) -> np.ndarray:
    return test["mu"][end["idx"]] if "idx" in end else np.asarray(end["z"], dtype=np.float32)


def write_link(ends: dict, method: str, n: int, cls: int | None) -> None:
    values = {"method": method, "n": n, "cls": cls}
    for side in "ab":
        end = ends[side]
        values[side] = end.get("idx")
        values[f"z{side}"] = list(end["z"]) if "z" in end else None
    set_url_exact(**values)


# -- ways to choose the ends -------------------------------------------------------------------------------------------
def on_map_select(view) -> None:
    """A click on the map sets the start, the next one the end, and so on; a click on empty space takes that spot."""
    event = st.session_state.get("ip_chart")
    picked = map_selection(event["selection"] if event else None)
    if picked is None or (not picked.get("indices") and "spot" not in picked):
        return
    side = state().next_side
    if "spot" in picked:
        x, y = picked["spot"]
        z = view.inverse_transform(torch.tensor([[x, y]], dtype=torch.float32))[0]
        set_end(side, {"z": z.tolist(), "name": f"the map spot ({x:.2f}, {y:.2f})", "image": None})
    else:
        set_end(side, {"idx": picked["indices"][0]})
    state().next_side = "b" if side == "a" else "a"


def pick_at_random(y: np.ndarray) -> None:
    """Seeded: the same seed and classes give the same pair; the seed then moves on so a new press gives a new pair."""
    seed = int(st.session_state.ip_seed)
    rng = np.random.default_rng(seed)
    pool_a = np.flatnonzero(y == st.session_state.ip_rand_a)
    pool_b = np.flatnonzero(y == st.session_state.ip_rand_b)
    a = int(rng.choice(pool_a))
    pool_b = pool_b[pool_b != a] if len(pool_b) > 1 else pool_b  # the same class twice: two different images
    b = int(rng.choice(pool_b))
    set_ends({"a": {"idx": a}, "b": {"idx": b}})
    st.session_state.ip_seed = seed + 1


def take_upload(side: str, model, cls: int | None) -> None:
    """Encode an uploaded picture (resized to the model's input) and make it an end."""
    upload = st.session_state.get(f"ip_upload_{side}")
    state().upload_errors.pop(side, None)
    if upload is None:
        return
    try:
        image = image_from_bytes(upload.getvalue(), model.config.input_shape,
                                 invert=st.session_state.get("ip_invert", False))
        z = encode_dataset(model, image, cls).mu[0]
    except UserInputError as exc:
        state().upload_errors[side] = plain(f"{upload.name}: {exc}", 1000)
        return
    set_end(side, {"z": z.tolist(), "name": f"your image {plain(upload.name, 80)}", "image": image})  # Markdown


def random_picker(data, y: np.ndarray) -> None:
    names = data.label_names
    classes = [int(k) for k in np.unique(y)]
    st.session_state.setdefault("ip_rand_a", classes[0])
    st.session_state.setdefault("ip_rand_b", classes[min(1, len(classes) - 1)])
    st.session_state.setdefault("ip_seed", 0)
    c1, c2, c3 = st.columns([2, 2, 1])
    c1.selectbox("Start class", classes, key="ip_rand_a", format_func=lambda k: names[k],
                 help="The start is a random test image of this class.")
    c2.selectbox("End class", classes, key="ip_rand_b", format_func=lambda k: names[k],
                 help="The end is a random test image of this class (it may be the same class: two different "
                      "images of it).")
    c3.number_input("Seed", 0, 2**31 - 1, key="ip_seed",
                    help="The same seed and classes always pick the same pair; each press moves the seed on by one.")
    st.button("Pick at random", on_click=pick_at_random, args=(y,), icon=":material/casino:",
              help="Pick a start and an end at random from the chosen classes.")


def upload_boxes(model, cls: int | None) -> None:
    st.checkbox("My images are dark on a light background (invert them)", key="ip_invert",
                help=f"The model learnt from light shapes on a dark background. Tick this for, e.g., a digit "
                     f"drawn in black ink on white paper. Images are resized to {model.config.input_shape[2]} × "
                     f"{model.config.input_shape[1]} pixels.")
    cols = st.columns(2)
    for col, side, label in ((cols[0], "a", "Start image"), (cols[1], "b", "End image")):
        with col:
            st.file_uploader(label, type=UPLOAD_TYPES, key=f"ip_upload_{side}", on_change=take_upload,
                             args=(side, model, cls),
                             help="A PNG or JPEG picture; it is resized and converted to the model's colours, "
                                  "then encoded.")
            error = state().upload_errors.get(side)
            if error:
                st.error(error, icon=":material/error:")


# -- what an end looks like --------------------------------------------------------------------------------------------
def end_image(end: dict, data, model, cls: int | None) -> tuple[torch.Tensor, str]:
    if "idx" in end:
        i = end["idx"]
        return data.test.x[i:i + 1], f"test image #{i} (label {plain(data.label_names[int(data.test.y[i])], 40)})"
    if end.get("image") is not None:
        return end["image"], end["name"]
    return decode(model, torch.tensor([end["z"]], dtype=torch.float32), cls), f"{end['name']} (decoded)"


def take_number(side: str) -> None:
    set_end(side, {"idx": int(st.session_state[f"ip_{side}"])})


def end_column(side: str, end: dict, data, model, cls, n_test: int) -> None:
    title = "Start" if side == "a" else "End"
    image, caption = end_image(end, data, model, cls)
    st.markdown(f"**{title}:** {caption}")
    picture(image, 1, f"{title} image", f"ip_{side}_image", tile_px=112)
    st.session_state.setdefault(f"ip_{side}", end.get("idx", 0))
    st.session_state[f"ip_{side}"] = min(int(st.session_state[f"ip_{side}"]), n_test - 1)
    st.number_input(f"{title}: test image number", 0, n_test - 1, key=f"ip_{side}",
                    on_change=take_number, args=(side,),
                    help=f"Pick the {title.lower()} by its number among the {n_test} test images.")


# -- the path ----------------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Decoding the path…", max_entries=128)
def path_result(sha: str, za: tuple, zb: tuple, n: int, method: str, cls: int | None, _model) -> dict:
    """The path's codes, decoded images, each step's ELBO, and the strip as PNG and GIF files."""
    z = interpolate(torch.tensor(za), torch.tensor(zb), n, method)  # (n, D), both ends exact
    images = decode(_model, z, cls)
    elbo = path_elbo(_model, images, cls, seed=0)
    strip = image_grid(images, nrow=n, scale=scale_for(images, strip_tile_px(n)))
    return {"z": z, "images": images, "elbo": elbo.numpy(), "png": png_bytes(strip),
            "gif": animated_gif(images, scale=scale_for(images, GIF_TILE_PX))}


def strip_tile_px(n: int) -> int:
    return int(np.clip(STRIP_PX // n, 40, 112))


def path_settings(config, data) -> tuple[str, int, int | None]:
    st.session_state.setdefault("ip_method", "linear")
    st.session_state.setdefault("ip_n", 10)
    method = st.radio("Path", list(METHODS), key="ip_method", format_func=METHODS.get,
                      help="Straight line: equal steps from one code to the other. Great circle (slerp): keeps "
                           "the codes' length while turning from one to the other. Codes drawn from the prior sit "
                           "near a sphere in many dimensions, and the straight line cuts through its less "
                           "typical middle; slerp stays on it.")
    n = st.slider("Steps", 2, MAX_STEPS, key="ip_n",
                  help="How many images the path is decoded into, both ends included.")
    cls = None
    if config.is_conditional:
        cls = class_picker(data.label_names, key="ip_class",
                           help="A conditional VAE is told the label: the whole path is decoded as this class, "
                                "so it morphs the style (slant, thickness) and keeps the class.")
    return method, n, cls


def path_map(view, test: dict, data, path_xy: np.ndarray, extent):
    """The scatter of the test set with the path over it (identity or PCA view: both place new codes exactly)."""
    points = view.transform(torch.from_numpy(test["mu"])).numpy()
    fig = figures.latent_scatter(points, test["y"], data.label_names, view.axis_labels, height=520,
                                 marker_size=6 if len(points) <= 1000 else 3, opacity=0.5)
    fig.update_layout(legend=dict(title_text="label", orientation="h", y=-0.14, yanchor="top"),
                      uirevision="interpolate-map")
    figures.click_grid(fig, extent)
    figures.path_overlay(fig, path_xy)
    return fig


def results(entry, model, data, test, view, ends, method, n, cls) -> None:
    za, zb = (tuple(float(v) for v in end_code(ends[s], test)) for s in "ab")
    result = path_result(entry.sha256, za, zb, n, method, cls, model)
    st.subheader("The path, decoded")
    picture(result["images"], n, f"{n} steps from the start (left) to the end (right)", "ip_strip",
         tile_px=strip_tile_px(n))
    d1, d2, _ = st.columns([2, 2, 3])
    d1.download_button("Download the strip (PNG)", result["png"], file_name="interpolation.png", mime="image/png",
                       on_click="ignore", icon=":material/download:", help="The strip above as one PNG picture.")
    d2.download_button("Download the animation (GIF)", result["gif"], file_name="interpolation.gif",
                       mime="image/gif", on_click="ignore", icon=":material/animation:",
                       help=f"An animated GIF, one frame per step ({n} frames), looping; the bar under it shows "
                            "how far along the path it is.")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.markdown("**The path on the latent map**")
        path_xy = view.transform(result["z"]).numpy()
        fig = path_map(view, test, data, path_xy, view_extent(view, torch.from_numpy(test["mu"])))
        st.plotly_chart(fig, key="ip_chart", on_select=lambda: on_map_select(view), selection_mode="points",
                        width="stretch")
        next_end = "start" if state().next_side == "a" else "end"
        st.caption(f"Click a point to make it an end (the next click sets the **{next_end}**), or click empty "
                   "space to use that spot of the map."
                   + (" The map is a PCA view: the path is drawn in it exactly, but it also moves along "
                      "directions the view hides." if view.method == "pca" else ""))
    with right:
        st.markdown("**How plausible is each step?**")
        no_kl = not entry.config.is_variational
        st.plotly_chart(figures.elbo_along_path(result["elbo"], "−reconstruction error (nats)" if no_kl
                                                else "ELBO (nats)"), width="stretch", key="ip_elbo")
        st.caption("Each decoded image is fed back through the model and scored (one sample, fixed seed). A dip in "
                   "the middle means the path crosses a region whose images the model finds unlikely."
                   + (" This model gives one exact code per image (an AE or a WAE) and has no KL term, so this is "
                      "minus the reconstruction error only."
                      if no_kl else ""))


# -- the page ----------------------------------------------------------------------------------------------------------
def main() -> None:
    page_header(
        "Interpolate",
        "Pick two images. The page walks from the **code** of the first to the code of the second in small steps "
        "and decodes every step into an image. If the images morph smoothly, the space between the two codes is "
        "filled with sensible images; a sudden jump or a blur means the path crosses a hole the model never "
        "learnt. The chart shows how plausible the model finds each step (its ELBO: higher is better).",
    )
    entry, model = current_model()
    config = entry.config
    data = require_data(entry)
    with friendly_errors("Interpolating"):
        test = encode_split(entry.sha256, "test", model, data)
        n_test, num_classes = len(test["mu"]), config.num_classes if config.is_conditional else 0
        load_link(n_test, config.latent_dim, test["y"], num_classes)
        pop_notice()
        ends = valid_ends(n_test, config.latent_dim, test["y"])
        view = latent_view(entry.sha256, "identity" if config.latent_dim <= 2 else "pca", test["mu"])
        c1, c2, c3 = st.columns([2, 2, 3], gap="medium")
        with c3:
            method, n, cls = path_settings(config, data)
        with c1:
            end_column("a", ends["a"], data, model, cls, n_test)
        with c2:
            end_column("b", ends["b"], data, model, cls, n_test)
        with st.expander("Pick the two ends at random from two classes"):
            random_picker(data, test["y"])
        with st.expander("Use your own images as the ends"):
            upload_boxes(model, cls)
        results(entry, model, data, test, view, ends, method, n, cls)
        write_link(ends, method, n, cls)


if __name__ == "__main__":
    main()
