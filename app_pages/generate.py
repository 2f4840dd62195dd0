"""Generate: new images decoded from random latent codes drawn from the prior, with a temperature, a seed and a
count (for a CVAE, one row per class with the same codes); on request each sample's nearest training image and
its pixel distance ("is it just copying?"); the grid downloads as a PNG. Settings live in the URL.

Run by st.navigation (as __main__); importing the module (the tests do) defines the functions and runs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ui import figures
from ui.catalogue import class_names, current_model
from ui.datasets import model_data
from ui.images import TILE_PX, data_uri, scale_for
from ui.page import friendly_errors, page_header
from ui.state import page_state, set_url, url_float, url_int
from ui.text import plain
from vae_core.latent import (image_grid, nearest_training_images, png_bytes, sample_prior, samples_per_class,
                             typical_nearest_distance)

COLUMNS = 8  # samples per row of a plain grid
MAX_COUNT, MAX_PER_CLASS = 64, 16
ALL = -1  # the class choice "every class, one row each"
TEMPERATURE_HELP = (
    "How spread out the random codes are: each code is drawn from N(0, T²·I). At 1 it is the prior the model was "
    "trained with. Below 1 the codes stay near the centre: cleaner, more typical, less varied images. At 0 every "
    "code is the centre, so every sample is the same image. Above 1 the codes reach places the decoder rarely "
    "saw: stranger images.")


# -- sampling (cached by model and settings; also called by the tests) ------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=128)
def draw(sha: str, n: int, temperature: float, seed: int, cls: int, _model) -> tuple[torch.Tensor, int]:
    """(images (N, C, H, W), columns): n prior samples in rows of COLUMNS, or for a CVAE with cls == ALL one row per
    class of the same n codes."""
    if _model.config.is_conditional and cls == ALL:
        images, _ = samples_per_class(_model, n, temperature=temperature, seed=seed)  # (K, n, C, H, W)
        return images.reshape(-1, *images.shape[2:]), n
    y = cls if _model.config.is_conditional else None
    _, images = sample_prior(_model, n, temperature=temperature, seed=seed, y=y)
    return images, min(n, COLUMNS)


def sample_picture(images: torch.Tensor, columns: int, tile_px: int = TILE_PX) -> np.ndarray:
    """The grid of samples as shown and downloaded: (H, W, 3) uint8, each tile ~tile_px, crisp."""
    return image_grid(images, nrow=columns, scale=scale_for(images, tile_px))


@st.cache_data(show_spinner="Searching the training set…", max_entries=64)
def nearest(sha: str, n: int, temperature: float, seed: int, cls: int, _model, _data) -> tuple[np.ndarray, np.ndarray]:
    """Index (N,) and pixel distance (N,) of each sample's nearest training image."""
    images, _ = draw(sha, n, temperature, seed, cls, _model)
    index, dist = nearest_training_images(_model, images, _data.train.x, k=1)
    return index[:, 0].numpy(), dist[:, 0].numpy()


@st.cache_data(show_spinner="Measuring the training set…", max_entries=16)
def copy_yardstick(fingerprint: str, _data) -> float:
    """How far a test image (never trained on) typically is from its nearest training image, in pixel distance."""
    return typical_nearest_distance(_data.test.x, _data.train.x, max_points=100)


def in_rows(images: torch.Tensor, columns: int) -> torch.Tensor:
    """(R, columns, C, H, W): the grid's rows, the last one filled up with blank (white) tiles."""
    blanks = (-len(images)) % columns
    filler = torch.ones(blanks, *images.shape[1:])
    return torch.cat([images, filler]).reshape(-1, columns, *images.shape[1:])


@dataclass
class GenerateState:
    """The page's own state: whether the link's settings were read (on the page's first run in a session)."""

    link_read: bool = False


# -- settings (the URL fills them on the first visit) -----------------------------------------------------------------
def init_from_url(model) -> None:
    """Widget values from a shared link the first time the page is drawn in a session (garbage: defaults and a
    notice); later a missing value (another model's widgets) starts at its default, not at what the URL held for
    the model before."""
    state = page_state(GenerateState)
    first, state.link_read = not state.link_read, True
    conditional, k = model.config.is_conditional, model.config.num_classes
    wanted = {"gen_seed": (lambda: url_int("seed", 0, 2**31 - 1), 0),
              "gen_temp": (lambda: url_float("temp", 0.0, 2.0), 1.0)}
    if conditional:
        wanted[f"gen_per_class_{k}"] = (lambda: url_int("n", 1, MAX_PER_CLASS), 8)
        wanted[f"gen_class_{k}"] = (lambda: url_int("class", 0, k - 1), ALL)
    else:
        wanted["gen_count"] = (lambda: url_int("n", 1, MAX_COUNT), 16)
    for key, (read, default) in wanted.items():
        if key not in st.session_state:
            value = read() if first else None
            st.session_state[key] = default if value is None else value


def next_seed() -> None:
    st.session_state.gen_seed = (int(st.session_state.gen_seed) + 1) % 2**31


def controls(entry, model) -> dict:
    conditional, k = model.config.is_conditional, model.config.num_classes
    c1, c2, c3 = st.columns([4, 3, 4], gap="large")
    temperature = c1.slider("Temperature", 0.0, 2.0, step=0.05, format="%.2f", key="gen_temp",
                            help=TEMPERATURE_HELP)
    seed = c2.number_input("Seed", 0, 2**31 - 1, key="gen_seed",
                           help="Numbers the random draw: the same seed and settings give the same images, "
                                "on any computer.")
    c2.button("New samples", icon=":material/casino:", on_click=next_seed,
              help="Draw another set of codes (the seed goes up by one).")
    cls = None
    if conditional:
        names = class_names(entry, model)
        count = c3.slider("Samples per class", 1, MAX_PER_CLASS, key=f"gen_per_class_{k}",
                          help="How many codes are drawn; each is decoded once per class.")
        cls = c3.selectbox("Class", [ALL, *range(k)], key=f"gen_class_{k}",
                           format_func=lambda c: "every class, one row each" if c == ALL else names[c],
                           help="A conditional VAE is told which class to draw. With every class, a column shows "
                                "one code drawn as each class: the same style, different classes.")
    else:
        count = c3.slider("How many samples", 1, MAX_COUNT, key="gen_count",
                          help="How many random codes are drawn and decoded.")
    return {"temperature": round(float(temperature), 2), "seed": int(seed), "n": int(count),
            "cls": ALL if cls is None else int(cls)}


# -- display ----------------------------------------------------------------------------------------------------------
def show_samples(entry, model, images: torch.Tensor, columns: int, settings: dict, picture: np.ndarray) -> None:
    per_class = model.config.is_conditional and settings["cls"] == ALL
    with st.container(key="samples"):
        if per_class:
            names = class_names(entry, model)
            fig = figures.tile_figure(image_grid(images, nrow=columns), len(names), columns, tuple(images.shape[-2:]),
                                      scale=scale_for(images), row_labels=names,
                                      col_labels=[str(i + 1) for i in range(columns)],
                                      x_title="code number (one random code per column)", y_title="class")
            st.plotly_chart(fig, width="content", config={"displayModeBar": False})
        else:
            st.image(data_uri(picture), width="content",
                     caption=f"{len(images)} samples · seed {settings['seed']} · temperature "
                             f"{settings['temperature']:g}")


def show_nearest(entry, model, data, images: torch.Tensor, columns: int, settings: dict) -> None:
    """Each row of samples, then the row of their nearest training images, with the pixel distance on each."""
    index, dist = nearest(entry.sha256, settings["n"], settings["temperature"], settings["seed"], settings["cls"],
                          model, data)
    found = data.train.x[torch.from_numpy(index)]
    rows_s, rows_n = in_rows(images, columns), in_rows(found, columns)
    both = torch.stack([rows_s, rows_n], dim=1).reshape(-1, *images.shape[1:])  # sample row, nearest row, ...
    r = len(rows_s)
    if model.config.is_conditional and settings["cls"] == ALL:
        names = class_names(entry, model)
        labels = [s for name in names for s in (f"{name}: samples", f"{name}: nearest")]
    else:
        labels = [s for _ in range(r) for s in ("samples", "nearest")]
    notes = {(2 * (i // columns) + 1, i % columns): f"{dist[i]:.1f}" for i in range(len(images))}
    fig = figures.tile_figure(image_grid(both, nrow=columns), 2 * r, columns, tuple(both.shape[-2:]),
                              scale=scale_for(both, 56), row_labels=labels,
                              col_labels=[str(i + 1) for i in range(columns)], x_title="sample",
                              y_title="row", notes=notes)
    st.plotly_chart(fig, width="content", config={"displayModeBar": False})
    yardstick = copy_yardstick(data.spec.get("fingerprint", entry.sha256), data)
    st.caption(f"Under each training image: its pixel distance to the sample above it (0 would be an exact copy). "
               f"For comparison, a test image the model never saw typically lies **{yardstick:.1f}** from its "
               f"nearest training image: samples much nearer than that would be copies.")


def nearest_toggle(entry, data) -> bool:
    if data is None:
        st.toggle("Show each sample's nearest training image", value=False, disabled=True,
                  help="Needs the images the model was trained on.")
        st.caption(f"Off: this session does not have the data **{plain(entry.title, 80)}** was trained on "
                   f"({plain(entry.dataset, 80)}). "
                   "Upload it on the Train page.")
        return False
    return st.toggle("Show each sample's nearest training image", key="gen_nearest",
                     help="Is the model just copying its training images? Under each sample, the training image "
                          "closest to it pixel by pixel, and how far it is.")


def download(entry, picture: np.ndarray, settings: dict) -> None:
    name = entry.key.split("/")[-1]
    st.download_button("Download the grid (PNG)", data=png_bytes(picture), mime="image/png", on_click="ignore",
                       file_name=f"{name}-samples-seed{settings['seed']}-t{settings['temperature']:g}.png",
                       icon=":material/download:", help="The samples as one PNG picture, at the size shown.")


# -- the page ---------------------------------------------------------------------------------------------------------
def main() -> None:
    entry, model = current_model()
    init_from_url(model)  # before the header: a bad link's notice shows at the top
    page_header(
        "Generate",
        "A VAE can make **new** images: draw a random latent code from the prior (the bell curve the codes were "
        "trained to follow) and decode it. Each tile below is one such code. Change the seed for other codes, "
        "the temperature for tamer or wilder ones.",
    )
    if not model.config.is_generative:  # a WAE is: its MMD pulls the codes towards the prior
        st.warning("An autoencoder is not trained to follow the prior, so random codes often land where it has "
                   "never put an image: one reason a plain autoencoder is not a generator.", icon=":material/info:")
    settings = controls(entry, model)
    set_url(seed=settings["seed"], temp=f"{settings['temperature']:g}", n=settings["n"],
               **{"class": None if settings["cls"] == ALL else settings["cls"]})
    data = model_data(entry)
    show = nearest_toggle(entry, data)
    with friendly_errors("Generating"):
        images, columns = draw(entry.sha256, settings["n"], settings["temperature"], settings["seed"],
                               settings["cls"], model)
        picture = sample_picture(images, columns)
        if show:  # the samples, each row followed by their nearest training images
            show_nearest(entry, model, data, images, columns, settings)
        else:
            show_samples(entry, model, images, columns, settings, picture)
        download(entry, picture, settings)


if __name__ == "__main__":
    main()
