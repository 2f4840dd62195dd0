"""Decode: pick a latent code and the decoder draws its image; below, the traversal (one dimension at a time) or
the manifold grid (two dimensions at once) around the same point.

The point moves with the latent pad (ui/latent_point.py), the one latent-point component of the app. By default
("Decode in the browser") a 2-D pad over the test codes plus sliders, decoded in the browser at frame rate; the
point it is released at becomes the page's point. With the toggle off, with `?decoder=server` in the link, or for a
model whose decoder the browser cannot run: the pad's server path, one Streamlit slider per dimension, each move
decoded on the server. Both take their slider ranges from the one rule, latent_point.slider_ranges.

The controls, the image and the grid form one fragment: a slider move or a release reruns only that, and only the
grid on show is drawn. The point and the class live in the URL with full float32 precision, so a copied link
shows the same image. Run by st.navigation (as __main__); importing the module (the tests do) defines functions,
runs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from ui import figures
from ui import latent_point as lp
from ui.catalogue import class_names, current_model
from ui.datasets import model_data
from ui.images import data_uri, scale_for
from ui.latent_space import encode_split, grid_side_limit
from ui.page import friendly_errors, page_header, queue_notice
from ui.state import bad_link_value, page_state, set_url_exact, url_floats, url_int
from ui.text import plain
from vae_core.latent import encode_dataset, image_grid, manifold_grid, nearest_index, sample_prior, traverse

MAX_SLIDERS = 6  # larger latents get this many sliders at first, and a multiselect for the others
MAX_TRAVERSAL_ROWS = 10  # up to this latent size the traversal shows every dimension
SPANS = [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 10, 20]  # traversal span / manifold extent, in prior σ
DECODED_PX = 256  # the decoded image is shown about this big
GRID_PX = 540  # the grids are drawn about this wide
GRIDS = ("Traversal", "Manifold grid")
AE_HELP = " An autoencoder has no prior, so here the range is set to where its test images' codes lie."
CONFIG = {"displayModeBar": False}
BROWSER_KEY = "decode_in_browser"  # the toggle; DecodeState.browser_choice keeps it while other pages show
PAD_KEY = "decode_pad"
BROWSER_HELP = ("On: drag a point over a map of the test images' codes (or move the sliders beside it) and the "
                "image follows at once, because the decoder runs right here in your browser. Off: one slider per "
                "number of the code; every move goes to the server, which decodes the image and sends it back, so "
                "each picture takes a moment.")


# -- pure helpers --------------------------------------------------------------------------------------------------
def fmt_point(z) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in z) + ")"


@dataclass
class DecodeState:
    """The page's own state. point: {"z": D floats, "y": class, "gen": generation}, the code on show (None before
    the first visit); pad_synced: the (model, generation, in the browser) the pad was last moved to;
    browser_choice: the toggle's last value, kept while other pages show (Streamlit forgets a widget's key when its
    page is left)."""

    point: dict | None = None
    pad_synced: tuple | None = None
    browser_choice: bool = True


def state() -> DecodeState:
    return page_state(DecodeState)


# -- the point: kept per session (for any model of its size), first read from a shared link -------------------------
def current_point(entry, model) -> dict:
    """{"z": D floats, "y": class, "gen": generation}; gen changes when a start button moves the point."""
    d, k = model.config.latent_dim, model.config.num_classes
    point = state().point
    if point is None:  # the first visit: a shared link's point (garbage: defaults and a notice), else the point
        z = url_floats("z", d)  # another page of this session left (the latent pad's), else the centre
        y = url_int("class", 0, k - 1) if k else None
        shared = lp.shared_point(entry) if z is None else None
        if shared is not None:
            z, y = shared.z, shared.y
        point = {"z": z or [0.0] * d, "y": y or 0, "gen": 0}
    elif len(point["z"]) != d:  # another model of another latent size: back to the centre
        point = {"z": [0.0] * d, "y": point["y"], "gen": point["gen"] + 1}
    if k and not 0 <= point["y"] < k:
        point["y"] = 0
    state().point = point
    return point


def move_point(z, y: int | None = None) -> None:
    """Callback of the start buttons: a new point, and new sliders that start there."""
    point = state().point
    point["z"] = [float(v) for v in z]
    if y is not None:
        point["y"] = int(y)
    point["gen"] += 1


def to_random_point(model) -> None:
    seed = int(st.session_state.get("decode_seed", 0))
    y = state().point["y"] if model.config.is_conditional else None
    z, _ = sample_prior(model, 1, seed=seed, y=y)
    move_point(z[0].tolist())
    st.session_state.decode_seed = (seed + 1) % 2**31  # the next press draws another point


def to_test_image(key: str, model, data) -> None:
    """Callback: the point goes to a test image's code (its posterior mean), a CVAE's class to its label."""
    i = int(st.session_state.get(key, 0))
    label = data.test.y[i:i + 1]
    mu = encode_dataset(model, data.test.x[i:i + 1], label).mu[0]  # one image: no need to encode the whole set
    move_point(mu.tolist(), int(label[0]) if model.config.is_conditional else None)


# -- browser or server: the toggle, first set from the link (?decoder=server) or this session's last choice ---------
def init_decoder_choice() -> None:
    if BROWSER_KEY in st.session_state:
        return
    raw = st.query_params.get("decoder")
    if raw not in (None, "server", "browser"):
        queue_notice(bad_link_value("decoder"))
    st.session_state[BROWSER_KEY] = (raw == "browser" if raw in ("server", "browser")
                                     else state().browser_choice)


def decoder_choice(entry, model) -> bool:
    """The toggle; True when the latent pad decodes in the browser. The link says `decoder=server` when off."""
    on = st.toggle("Decode in the browser", key=BROWSER_KEY, help=BROWSER_HELP)
    state().browser_choice = on
    set_url_exact(decoder=None if on else "server")
    return on and lp.browser_support(model, entry) is None  # if not, the pad's server path says why


# -- start points and the slider range (full reruns: they change the sliders) ------------------------------------------
def start_controls(entry, model, data, encoded, in_browser: bool) -> int:
    """One row: where to start and (server sliders) how far the sliders go; returns the slider range (σ)."""
    st.caption("Start from the centre of the prior, from a random code or from the code of a test image; then "
               + ("drag the point on the pad or move the sliders." if in_browser else "move the sliders."))
    centre, random, test, span = st.columns([1.2, 2.4, 3.4, 2.4], vertical_alignment="bottom", gap="medium")
    centre.button("Centre", icon=":material/center_focus_strong:", on_click=move_point,
                  args=([0.0] * model.config.latent_dim,), width="stretch",
                  help="The point to 0 in every dimension: the centre of the prior, its most typical code.")
    with random:
        seed, draw = st.columns([1, 1], vertical_alignment="bottom")
        seed.number_input("Seed", 0, 2**31 - 1, key="decode_seed",
                          help="Numbers the random draw: the same seed gives the same code. Each draw moves it on.")
        draw.button("Random", icon=":material/casino:", on_click=to_random_point, args=(model,),
                    width="stretch", help="The point goes to a code drawn at random from the prior N(0, I), as "
                                          "on the Generate page.")
    with test:
        test_image_start(entry, model, data)
    mu = None if encoded is None else encoded["mu"]
    if in_browser:  # the pad's sliders keep the default reach; the manifold grid's extent starts from it too
        return lp.reach_to(lp.default_reach(entry, mu), state().point["z"])
    with span:
        chosen = range_control(entry, model, mu)
        rng = lp.reach_to(chosen, state().point["z"])
        if rng > chosen:
            st.caption(f"Widened to ±{rng} to reach your point.")
        return rng


def test_image_start(entry, model, data) -> None:
    number, picture, go = st.columns([4, 2, 3], vertical_alignment="bottom")
    if data is None:
        number.number_input("Test image", 0, 0, disabled=True,
                            help="Needs the data the model was trained on, which this session does not have.")
        go.button("Encode", disabled=True, icon=":material/input:", width="stretch",
                  help="Needs the model's data set, which this session does not have.")
        st.caption(f"A test image's code is off: this session does not have the data **{plain(entry.title, 80)}** "
                   f"was trained on ({plain(entry.dataset, 80)}). Upload it on the Train page.")
        return
    n = len(data.test)
    key = f"decode_index_{n}"  # per test-set size: a number kept from a larger set could be out of range
    index = number.number_input(
        "Test image", 0, n - 1, key=key,
        help=f"Which of the {n:,} test images (never seen in training) to encode, 0 to {n - 1}; shown next to "
             "this box with its label. Its code is the encoder's mean, so the decoded image is its reconstruction.")
    image = data.test.x[index:index + 1]
    label = data.label_names[int(data.test.y[index])] if len(data.label_names) else ""
    picture.image(data_uri(image_grid(image, nrow=1, scale=scale_for(image, 40))), width="content",
                  caption=plain(label, 80) or None)
    go.button("Encode", icon=":material/input:", on_click=to_test_image, width="stretch",
              args=(key, model, data),
              help="The point goes to this image's code (and, for a CVAE, the class to its label).")


def range_control(entry, model, mu) -> int:
    """The slider range the user picks (σ), from the latent pad's reaches and its default."""
    return st.select_slider(
        "Slider range (± σ)", lp.REACHES, value=lp.default_reach(entry, mu), key=f"decode_range_{entry.sha256[:10]}",
        help="How far the sliders reach either side of 0, in prior standard deviations (σ). A VAE's codes rarely "
             "go beyond ±3, so its decoder has seldom seen codes out there." +
             (AE_HELP if not model.config.is_generative else ""))


# -- the decoder (a fragment: a slider move or a release of the pad reruns this alone) --------------------------------
@st.fragment
def decoder(entry, model, rng: int, in_browser: bool, data, encoded) -> None:
    with friendly_errors("Decoding"):  # inside: a fragment rerun does not pass through main()
        pad_body(entry, model, rng, in_browser, data, encoded)


def pad_body(entry, model, rng: int, in_browser: bool, data, encoded) -> None:
    """The latent pad (in the browser, or its server path) over the Latent map's view of the test codes; the point
    it is released at, or its sliders moved to, is the page's point."""
    point = state().point
    conditional = model.config.is_conditional
    dims = slider_dims(entry, model)
    mu = None if encoded is None else encoded["mu"]
    view, about = lp.plane_view(entry, mu)
    if in_browser:
        points = None if mu is None else view.transform(torch.from_numpy(mu)).numpy()
        labels = None if encoded is None else encoded["y"]
        names = None if data is None else list(data.label_names)
        st.caption(about + " Drag the point (or use the arrow keys on the pad) and the image follows as you move; "
                   "the grids below follow when you let go.")
    else:
        points = labels = names = None
    # Move the pad to the page's point when a start button changed it (gen), the model or the way of decoding
    # changed, or the pad was not on show; otherwise the pad keeps the point it was released at (also on another
    # page: it is shared).
    synced = (entry.sha256, point["gen"], in_browser)
    push = state().pad_synced != synced
    got = lp.latent_pad(model, entry, view, points, labels, names, key=PAD_KEY,
                        z=point["z"] if push else None, y=point["y"] if push and conditional else None,
                        slider_dims=dims, mu=mu, reach=rng, browser=in_browser, url=False, image_px=DECODED_PX,
                        own_fragment=False,  # this fragment: the grids below follow the server's sliders
                        image_key="decoded")  # .st-key-decoded: where the benches and browser tests wait
    state().pad_synced = synced
    point["z"] = [float(v) for v in got.z]
    y = None
    if conditional:
        point["y"] = y = int(got.y)
    label = f", class {plain(class_names(entry, model)[y], 80)}" if conditional else ""
    st.caption(f"z = {fmt_point(point['z'])}{label}. The page address holds this point: copy it to share the view.")
    set_url_exact(z=point["z"], **{"class": y})
    grids(entry, model, point["z"], y, rng, dims)


def grids(entry, model, z, y, rng: int, dims) -> None:
    grid = st.segmented_control(
        "Around your point", GRIDS, default=GRIDS[0], key="decode_grid", required=True,
        help="Traversal: each dimension on its own, the others held at your point. Manifold grid: two "
             "dimensions at once over a square.")
    if grid == GRIDS[1]:
        manifold_section(entry, model, z, y, rng)
    else:
        traversal_section(entry, model, z, y, dims)


def slider_dims(entry, model) -> list[int]:
    """Which dimensions get a slider: all of a small latent; of a larger one, those the user picks."""
    d = model.config.latent_dim
    if d <= MAX_SLIDERS:
        return list(range(d))
    default = lp.default_slider_dims(entry, limit=MAX_SLIDERS)
    chosen = st.multiselect(
        "Dimensions with sliders", range(d), default=default, format_func=lambda i: f"z[{i}]",
        key=f"decode_dims_{entry.sha256[:10]}",
        help=f"This model has {d} latent dimensions. The ones carrying the most information (KL) come first; "
             "the others stay where the point is. Dimensions carrying almost none barely change the image.")
    if not chosen:
        st.caption("Pick at least one dimension to get a slider.")
    return sorted(chosen)


# -- grids around the point (computed once per model, point and settings; the figure itself is cheap) ----------------
def traversal_section(entry, model, z, y, dims) -> None:
    d = model.config.latent_dim
    rows = list(range(d)) if d <= MAX_TRAVERSAL_ROWS else (dims or list(range(MAX_SLIDERS)))
    st.caption("Each row changes one dimension from −span to +span while the others stay at your point. The red "
               "frame marks the tile nearest your point. A row that does not change is a dimension the model "
               "does not use.")
    c1, c2, _ = st.columns([2, 2, 3])
    n = c1.slider("Values per row", 3, 15, 9, step=2, key="decode_trav_n",
                  help="How many values of each dimension are decoded, from −span to +span.")
    span = c2.select_slider("Span (± σ)", SPANS, value=3, key="decode_trav_span",
                            help="How far each row reaches either side of 0, in prior standard deviations (σ).")
    grid = traversal_grid(entry.sha256, tuple(z), tuple(rows), n, float(span), y, _model=model)
    st.plotly_chart(figures.tile_figure(**grid), width="content", config=CONFIG)


@st.cache_data(show_spinner=False, max_entries=256)
def traversal_grid(sha: str, base: tuple, rows: tuple, n: int, span: float, y: int | None, _model) -> dict:
    """The tile_figure arguments of a traversal: rows = dimensions, columns = values, the base point framed."""
    images, values = traverse(_model, torch.tensor(base), dims=list(rows), n=n, span=span, y=y)  # (R, n, C, H, W)
    flat = images.reshape(-1, *images.shape[2:])
    labels = [f"{v:.2f}" for v in values.tolist()]
    return dict(picture=image_grid(flat, nrow=n), n_rows=len(rows), n_cols=n, tile=tuple(flat.shape[-2:]),
                scale=scale_for(flat, min(64, GRID_PX // n)), row_labels=[f"z[{i}]" for i in rows],
                col_labels=labels, x_title="value of the dimension (σ)", y_title="latent dimension",
                frames=[(r, nearest_index(values, base[i])) for r, i in enumerate(rows)],
                hover=[[f"z[{i}] = {v}" for v in labels] for i in rows])


def manifold_section(entry, model, z, y, rng: int) -> None:
    d = model.config.latent_dim
    if d < 2:
        st.info("This model has a single latent dimension: there is no plane to tile. The traversal shows its "
                "whole line.", icon=":material/info:")
        return
    st.caption("The decoder's images over a square of two dimensions, the others staying at your point: how the "
               "images change across that plane. The red frame marks the tile nearest your point.")
    order = lp.dims_by_information(entry)
    c1, c2, c3, c4 = st.columns(4)
    key = entry.sha256[:10]
    dx = c1.selectbox("Across", range(d), index=order[0], format_func=lambda i: f"z[{i}]", key=f"decode_mx_{key}",
                      help="The dimension that changes from left to right.")
    dy = c2.selectbox("Up", range(d), index=order[1], format_func=lambda i: f"z[{i}]", key=f"decode_my_{key}",
                      help="The dimension that changes from bottom to top.")
    top = max(3, grid_side_limit(model, 25))  # a model with large images decodes a smaller grid (budget)
    if st.session_state.get("decode_grid_n", 0) > top:
        st.session_state.decode_grid_n = top
    n = c3.slider("Tiles per side", 3, top, min(15, top), key="decode_grid_n",
                  help="The grid has this many images a side." + ("" if top == 25 else
                       f" At most {top} for this model: its images are large."))
    extent = c4.select_slider("Extent (± σ)", SPANS, value=min(3, rng) if model.config.is_generative else rng,
                              key=f"decode_extent_{key}",
                              help="How far the square reaches either side of 0, in prior standard deviations (σ).")
    if dx == dy:
        st.warning("Pick two different dimensions for the two axes.", icon=":material/warning:")
        return
    grid = manifold_tiles(entry.sha256, tuple(z), (dx, dy), n, float(extent), y, _model=model)
    st.plotly_chart(figures.tile_figure(**grid), width="content", config=CONFIG)


@st.cache_data(show_spinner=False, max_entries=256, ttl=3600)  # each within grid_side_limit's budget
def manifold_tiles(sha: str, base: tuple, dims: tuple, n: int, extent: float, y: int | None, _model) -> dict:
    """The tile_figure arguments of an n x n manifold grid over dims (x, y), top row the largest y."""
    box = (-extent, extent, -extent, extent)
    n = max(1, min(n, grid_side_limit(_model, n)))  # whatever the caller asked, within the budget
    images, _, plane = manifold_grid(_model, n, dims=dims, extent=box, base=torch.tensor(base), y=y)
    xs, ys = plane[:n, 0].tolist(), plane[::n, 1].tolist()  # column values; row values, top row first
    row, col = divmod(nearest_index(plane, [base[dims[0]], base[dims[1]]]), n)
    return dict(picture=image_grid(images, nrow=n), n_rows=n, n_cols=n, tile=tuple(images.shape[-2:]),
                scale=scale_for(images, GRID_PX // n), row_labels=[f"{v:.2f}" for v in ys],
                col_labels=[f"{x:.2f}" for x in xs], x_title=f"z[{dims[0]}] (σ)", y_title=f"z[{dims[1]}] (σ)",
                frames=[(row, col)],
                hover=[[f"z[{dims[0]}] = {x:.2f}, z[{dims[1]}] = {v:.2f}" for x in xs] for v in ys])


# -- the page ---------------------------------------------------------------------------------------------------------
def main() -> None:
    entry, model = current_model()
    current_point(entry, model)  # before the header: a bad link's notice shows at the top
    init_decoder_choice()
    page_header(
        "Decode",
        "The decoder turns a short list of numbers, the **latent code**, into an image. Drag the point on the pad "
        "(or move the sliders) to change the code and watch the image follow: you are walking through the latent "
        "space yourself. The **traversal** and the **manifold grid** below show many codes around your point at "
        "once.",
    )
    in_browser = decoder_choice(entry, model)
    data = model_data(entry)
    encoded = None  # the pad draws the test codes; the server sliders need them only for an AE (to size them)
    with friendly_errors("Encoding the test images"):
        if data is not None and (in_browser or not model.config.is_generative):
            encoded = encode_split(entry.sha256, "test", model, data)
    with friendly_errors("Setting up the start points"):
        rng = start_controls(entry, model, data, encoded, in_browser)
        decoder(entry, model, rng, in_browser, data, encoded)


if __name__ == "__main__":
    main()
