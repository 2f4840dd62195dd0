"""Welcome: the first minute of a demo. The latent pad of the model in use, front and centre, with one sentence
saying what to do (click or drag on the square, and the network draws the image of that point); below it the
model's card in brief and a few images it made up from random codes.

The pad is the shared component of ui/latent_point.py (the decoder runs in the browser, so the image follows the
pointer at frame rate); its released point is the session's latent point, so the other pages follow it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ui import draw_digit
from ui import latent_point as latent_pad
from ui.catalogue import available_models, current_model
from ui.datasets import model_data
from ui.images import show_images
from ui.latent_space import encode_split
from ui.page import friendly_errors, page_header
from ui.state import page_state
from ui.text import plain
from vae_core.latent import sample_prior

PAD_KEY = "home_pad"
IMAGE_PX = 280  # the decoded image on this page: big enough to read across a classroom (10x for 28x28 digits)
N_SAMPLES, SAMPLE_COLUMNS, SAMPLE_PX = 16, 8, 56
@dataclass
class HomeState:
    """The page's own state: whether it ran before in this session (a link's point is read on the first run)."""

    ran: bool = False


NEXT_LINKS = [  # "Where to go next": (column, page file, label, icon)
    (0, "lessons.py", "Lessons for a class", "cast_for_education"),
    (0, "latent_map.py", "Every test image on the map", "scatter_plot"),
    (1, "train.py", "Train a model and watch it learn", "model_training"),
    (1, "library.py", "Browse, upload and download models", "inventory_2"),
]
DIGIT_SETS = {"mnist", "digits"}  # data sets whose images are handwritten digits


def things(entry) -> tuple[str, str]:
    """(singular, plural) of what the model draws: digits for the digit sets, images otherwise."""
    return ("digit", "digits") if str(entry.dataset).lower() in DIGIT_SETS else ("image", "images")


KINDS = {"vae": "a variational autoencoder (VAE)", "ae": "a plain autoencoder (a VAE without its bell-curve prior)",
         "cvae": "a conditional VAE: it is also told which {one} to draw"}


def lead(entry) -> str:
    """One paragraph for a newcomer: what the network does, in words, for this model."""
    one, many = things(entry)
    d = entry.config.latent_dim
    count = "just **two numbers**" if d == 2 else "**one number**" if d == 1 else f"**{d} numbers**"
    where = ("a point on the square below" if d == 2 else
             "the square below is a flat slice through them" if d > 2 else "across the square below")
    kind = KINDS.get(entry.config.kind, "an autoencoder").format(one=one)
    return (f"A neural network that learnt to draw {many}. It squeezes every {one} it sees into {count}, its "
            f"**latent code** ({where}), and draws a {one} back from any such code. That is {kind}.")


def instruction(entry, model) -> str:
    """The one thing to do, in one sentence (and the class buttons of a model that is told the class)."""
    one, _ = things(entry)
    where = "of its 2-D latent space" if entry.config.latent_dim == 2 else "of its latent space"
    text = (f":material/touch_app: **Click or drag anywhere on the square:** the network draws the {one} at that "
            f"point {where}.")
    if model.config.is_conditional:
        text += f" The buttons beside it choose which {one} to draw."
    return text


@st.cache_data(show_spinner=False, max_entries=64)
def prior_samples(model_key: str, sha: str, n: int = N_SAMPLES) -> torch.Tensor:
    """A few images decoded from random latent codes (cached per model file)."""
    _, m = available_models()[model_key]
    y = torch.arange(n) % m.config.num_classes if m.config.is_conditional else None
    return sample_prior(m, n, seed=0, y=y)[1]


def typical_code(mu: np.ndarray, labels: np.ndarray, model) -> tuple[list[float], int | None]:
    """Where the pad starts on a first visit: the median code of the test images of the first test image's class (a
    typical digit of that class, drawn clearly), rather than the centre of the plane, which for a 2-D VAE of digits
    often lies between classes and decodes to a blur of several."""
    cls = labels[0]
    z = np.median(mu[labels == cls], axis=0)
    return [float(v) for v in z], int(cls) if model.config.is_conditional else None


@st.fragment
def pad(entry, model) -> None:
    """The latent pad over the test images' codes; a release reruns only this part."""
    with friendly_errors("The latent pad"):
        data = model_data(entry)
        mu = labels = names = None
        if data is not None:
            encoded = encode_split(entry.sha256, "test", model, data)
            mu, labels, names = encoded["mu"], encoded["y"], list(data.label_names)
        view, _ = latent_pad.plane_view(entry, mu)
        points = None if mu is None else view.transform(torch.from_numpy(mu)).numpy()
        # No point chosen yet for this model in this session (and no link's point, read on the session's first run
        # only): start on a clear digit, not between classes.
        state = page_state(HomeState)
        link_point = "z" in st.query_params and not state.ran
        state.ran = True
        z = y = None
        if mu is not None and latent_pad.shared_point(entry) is None and not link_point:
            z, y = typical_code(mu, labels, model)
        latent_pad.latent_pad(model, entry, view, points, labels, names, key=PAD_KEY, mu=mu, z=z, y=y,
                              image_px=IMAGE_PX)
        one, many = things(entry)
        if points is None:
            dots = ""
        elif model.config.is_conditional:  # its code holds the style only: the class comes from the buttons
            dots = (f"Each faint dot is a real test {one}, placed at its code: here the code holds only the style "
                    f"(slant, width, stroke), so every kind of {one} is everywhere. ")
        else:
            dots = (f"Each faint dot is a real test {one}, placed at its code and coloured by what it shows: drag "
                    f"onto a colour and the network draws that kind of {one}. ")
        st.caption(f"{dots}Between the dots it draws {many} nobody wrote: that is what makes it a generator.")


def draw(entry, model) -> None:
    """Draw a digit: the encoder places it on the map as you draw (28x28 greyscale models)."""
    if not draw_digit.drawable(entry):
        return
    st.markdown("##### Or draw one yourself")
    st.caption("Draw a digit in the black square. On every stroke the **encoder** turns your drawing into a code: "
               "the red ellipse is where it lands on the map (its centre is the mean μ, its size one standard "
               "deviation σ: how unsure the encoder is), and the **decoder** redraws the digit from μ. Let go and "
               "the latent pad above moves to your code.")
    with friendly_errors("The drawing box"):
        data = model_data(entry)
        encoded = encode_split(entry.sha256, "test", model, data) if data is not None else None
        draw_digit.draw_digit(model, entry, key="home_draw", mu=None if encoded is None else encoded["mu"],
                              labels=None if encoded is None else encoded["y"])


def card(entry) -> None:
    """The model in brief: its name, what it is for and three numbers."""
    st.subheader(plain(entry.title, 80))  # an uploaded checkpoint's name and text are the user's: never Markdown
    st.markdown(plain(entry.about, 400) if entry.about else entry.config.label)
    facts = entry.card
    cols = st.columns(3)
    elbo = facts.get("test_elbo")
    cols[0].metric("ELBO (nats)", f"{elbo:.1f}" if elbo is not None else "n/a",
                   help="Evidence lower bound per test image, in nats: higher is better. It is minus "
                        "(reconstruction + KL).")
    cols[1].metric("Latent size", entry.config.latent_dim, help="How many numbers describe each image.")
    recognised = (facts.get("samples") or {}).get("recognised")
    if recognised is not None:
        cols[2].metric("Recognised", f"{recognised:.0%}",
                       help="Share of the images it makes from random codes that a digit classifier, trained on "
                            "real MNIST, names with confidence.")
    else:
        cols[2].metric("Active units", facts.get("active_units", "n/a"),
                       help="Latent dimensions the encoder really uses (their mean varies across images).")


# -- the page ---------------------------------------------------------------------------------------------------------


def main() -> None:
    entry, model = current_model()
    page_header("Latent Lab", lead(entry))
    st.markdown(f"##### {instruction(entry, model)}")
    pad(entry, model)
    draw(entry, model)

    st.divider()
    left, right = st.columns([1, 1], gap="large")
    with left:
        card(entry)
    with right:
        _, many = things(entry)
        st.markdown(f"**{N_SAMPLES} {many} it made up** from random codes (prior samples)")
        show_images(prior_samples(entry.key, entry.sha256), nrow=SAMPLE_COLUMNS, tile_px=SAMPLE_PX)

    st.subheader("Where to go next")
    columns = st.columns(2)
    for column, page, label, icon in NEXT_LINKS:
        columns[column].page_link(f"app_pages/{page}", label=label, icon=f":material/{icon}:")


if __name__ == "__main__":
    main()
