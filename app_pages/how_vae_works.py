"""How a VAE works: one real test image followed through the picked model, step by step. The encoder gives a
mean μ and a spread σ per latent dimension, one noise vector ε is drawn, the code z = μ + σ·ε is decoded, and the
loss is written out with this image's own numbers, summed or averaged over the pixels.

Run by st.navigation (as __main__); importing the module (the tests do) defines the functions and runs nothing.
The numbers come from vae_core.explain; this file only draws them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from ui import draw_digit
from ui.catalogue import current_model
from ui.datasets import model_data, require_data
from ui.images import data_uri, scale_for
from ui.latent_space import encode_split
from ui.page import friendly_errors, page_header
from ui.state import page_state, set_url, url_int
from ui.text import WAE_NO_ELBO, plain
from vae_core.explain import explain_example
from vae_core.latent import image_grid

IMAGE_PX = 160  # the input and the decoded image, side by side: big enough to compare pixel by pixel
UNUSED_KL = 0.05  # nats: a dimension this close to the prior carries (almost) nothing about the image
MAX_WRITTEN_DIMS = 3  # dimensions spelled out in the z = μ + σ·ε formula; the table has them all
INTRO = (
    "Follow **one real image** through the model in the sidebar. The **encoder** turns it into a small cloud of "
    "possible codes (a mean μ and a spread σ per latent dimension). One code z is drawn from that cloud, and the "
    "**decoder** turns z back into an image. The **loss** then scores how well that went. Every number below is "
    "computed live from the model."
)
UNITS = ("Loss numbers are in **nats**, the unit of information measured with natural logarithms (1 nat ≈ 1.44 "
         "bits), for this one image.")


# -- the numbers (cached per model file, image and draw) --------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=256)
def explained(sha: str, index: int, seed: int, _model, _data) -> dict:
    """explain_example for test image `index`, ε drawn with `seed`; the CVAE is told the image's own label."""
    x, y = _data.test.x[index], int(_data.test.y[index])
    return explain_example(_model, x, y if _model.config.is_conditional else None, seed=seed)


def picture(image: torch.Tensor) -> str:
    """One (C, H, W) image as a crisp inline PNG about IMAGE_PX a side."""
    return data_uri(image_grid(image[None], nrow=1, padding=0, scale=scale_for(image[None], IMAGE_PX)))


# -- settings ---------------------------------------------------------------------------------------------------------
def init_state(n_test: int) -> None:
    """The image index from a shared link on the first visit (clamped to this data set's test images later)."""
    if "hvw_index" not in st.session_state:
        st.session_state.hvw_index = url_int("i", 0, n_test - 1) or 0
    st.session_state.hvw_index = min(int(st.session_state.hvw_index), n_test - 1)


@dataclass
class HowVaeWorksState:
    """The page's own state: how many times ε was resampled (each draw is a new seed)."""

    draw: int = 0


def resample() -> None:
    page_state(HowVaeWorksState).draw += 1


# -- the steps --------------------------------------------------------------------------------------------------------
def step_input(ex: dict, data, index: int, conditional: bool, names: list[str]) -> None:
    st.markdown("##### 1 · The input")
    label = plain(names[int(data.test.y[index])], 40)  # a label name can come from an uploaded file
    st.image(picture(data.test.x[index]), caption=f"Test image {index} (a “{label}”)", width="content")
    if conditional:
        st.caption(f"This is a conditional VAE: the label “{label}” is an input too. The encoder and the decoder "
                   "are both told it, so the code only has to hold the style.")


def code_chart(ex: dict) -> go.Figure:
    """μ per dimension with ±σ error bars, and the drawn z on top (the AE: its code point only)."""
    dims = [f"z[{i}]" for i in range(ex["latent_dim"])]
    fig = go.Figure()
    sigma = ex["sigma"]
    fig.add_trace(go.Bar(
        x=dims, y=ex["mu"].tolist(), name="μ (the mean)" if sigma is not None else "the code (a point)",
        marker_color="#c7d2fe",
        error_y=None if sigma is None else dict(type="data", array=sigma.tolist(), color="#4f46e5", thickness=2),
        hovertemplate="%{x}: μ = %{y:.3f}<extra></extra>"))
    if sigma is not None:
        fig.add_trace(go.Scatter(x=dims, y=ex["z"].tolist(), mode="markers", name="z, the drawn code",
                                 marker=dict(symbol="diamond", size=12, color="#e11d48"),
                                 hovertemplate="%{x}: z = %{y:.3f}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="latent dimension",
                      yaxis_title="value in the latent space", legend=dict(orientation="h", y=1.12))
    return fig


def step_intro(ex: dict, heading: str, *, autoencoder: str, vae: str) -> None:
    """A step's heading and what it does, said for an autoencoder (no σ: one exact code) or for a VAE."""
    st.markdown(heading)
    st.markdown(autoencoder if ex["sigma"] is None else vae)


def step_encoder(ex: dict) -> None:
    step_intro(ex, "##### 2 · The encoder: a cloud of codes",
               autoencoder="An **autoencoder**'s encoder gives one exact point per image: no spread σ, nothing "
                           "random. The bars are that point's coordinates.",
               vae="For each latent dimension the encoder gives a **mean μ** (the bar) and a **spread σ** (the "
                   "error bar): the image's code is *somewhere around μ, give or take σ*. The red diamond is the "
                   "code z drawn in step 3.")
    st.plotly_chart(code_chart(ex), width="stretch", config={"displayModeBar": False})
    if ex["sigma"] is not None:
        unused = [i for i, kl in enumerate(ex["kl_per_dim"].tolist()) if kl < UNUSED_KL]
        if unused and len(unused) < ex["latent_dim"]:
            st.caption(f"{len(unused)} of the {ex['latent_dim']} dimensions sit at μ ≈ 0, σ ≈ 1 (KL under "
                       f"{UNUSED_KL} nats in the table): the prior itself. The model does not use them for this image.")


def z_formula(ex: dict) -> str:
    """LaTeX of z = μ + σ·ε with this image's numbers, for the first MAX_WRITTEN_DIMS dimensions."""
    rows = []
    for i in range(min(ex["latent_dim"], MAX_WRITTEN_DIMS)):
        mu, sigma, eps, z = (float(ex[k][i]) for k in ("mu", "sigma", "eps", "z"))
        rows.append(rf"z_{{{i}}} &= \mu_{{{i}}} + \sigma_{{{i}}}\,\varepsilon_{{{i}}} = {mu:.3f} + {sigma:.3f}"
                    rf"\times ({eps:.3f}) = {z:.3f}")
    return r"\begin{aligned}" + r"\\".join(rows) + r"\end{aligned}"


def code_table(ex: dict) -> pd.DataFrame:
    if ex["sigma"] is None:
        return pd.DataFrame({"dimension": range(ex["latent_dim"]), "z (the code)": ex["z"].numpy()})
    return pd.DataFrame({"dimension": range(ex["latent_dim"]), "μ (mean)": ex["mu"].numpy(),
                         "σ (spread)": ex["sigma"].numpy(), "ε (noise)": ex["eps"].numpy(),
                         "z = μ + σ·ε": ex["z"].numpy(), "KL (nats)": ex["kl_per_dim"].numpy()})


def step_trick(ex: dict, draw: int) -> None:
    step_intro(ex, "##### 3 · The reparameterisation trick: z = μ + σ·ε",
               autoencoder="An autoencoder has **no σ and no ε**: its code is the point itself, z = μ, the same "
                           "every time. There is nothing to resample.",
               vae="To draw a code, the VAE draws a noise vector **ε** from the standard bell curve N(0, I) and "
                   "computes **z = μ + σ·ε**. Why this detour? Training must know how nudging μ and σ changes the "
                   "loss, and a plain random draw has no such slope; with ε drawn aside, z moves smoothly with μ "
                   "and σ.")
    if ex["sigma"] is not None:
        st.latex(z_formula(ex))
        if ex["latent_dim"] > MAX_WRITTEN_DIMS:
            st.caption(f"…and the same for all {ex['latent_dim']} dimensions: see the table.")
    st.button("Resample ε", icon=":material/casino:", on_click=resample, disabled=ex["sigma"] is None,
              help="Draw a new noise vector ε from N(0, I): a new code z near μ, a new decoded image and a new "
                   "reconstruction term. μ, σ and the KL stay, since they depend on the image only.")
    if ex["sigma"] is not None:
        st.caption(f"Draw number {draw}.")
    table = code_table(ex)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
                                if c != "dimension"})


def step_decoder(ex: dict) -> None:
    st.markdown("##### 4 · The decoder")
    st.image(picture(ex["image"]), caption="Decoded from z", width="content")
    st.caption("The decoder turns the code back into an image. Compare it with the input: the difference is what "
               "the reconstruction term below measures.")


# -- the loss -----------------------------------------------------------------------------------------------------------
def loss_formula(ex: dict, reduction: str) -> str:
    """LaTeX of the loss with this image's numbers, under the 'sum' or 'mean' reduction over pixels."""
    part = ex[reduction]
    n = ex["n_pixels"]
    recon = (rf"\underbrace{{{ex['recon']:.2f} / {n}}}_{{\text{{reconstruction, mean}}}}" if reduction == "mean"
             else rf"\underbrace{{{ex['recon']:.2f}}}_{{\text{{reconstruction}}}}")
    if ex["kind"] == "wae":  # the MMD is a batch's, not one image's: only its place in the loss is shown
        return rf"\text{{loss}} = {recon} + \lambda \times \text{{MMD}}(\text{{a batch's codes}}, \text{{prior}})"
    if ex["sigma"] is None:
        return rf"\text{{loss}} = {recon} = {part['loss']:.3f}\ \text{{nats}}"
    return (rf"\text{{loss}} = {recon} + \underbrace{{{ex['beta']:g}}}_{{\beta}} \times "
            rf"\underbrace{{{part['kl']:.2f}}}_{{\text{{KL}}}} = {part['loss']:.3f}\ \text{{nats}}")


def elbo_formula(ex: dict) -> str:
    return (rf"\text{{ELBO}} = -(\text{{reconstruction}} + \text{{KL}}) = -({ex['recon']:.2f} + {ex['kl']:.2f}) "
            rf"= {ex['elbo']:.2f}\ \text{{nats}}")


def share_text(part: dict) -> str:
    share = part["kl_share"]
    return f"{100 * share:.0f}%" if part["recon"] > 0 and math.isfinite(share) else "n/a"


def step_loss(ex: dict) -> None:
    st.markdown("##### 5 · The loss")
    variational = ex["sigma"] is not None  # the AE and the WAE give one exact code: no σ, no KL, no ELBO
    if ex["kind"] == "wae":
        st.markdown("A **WAE** lowers the **reconstruction** term (how badly the decoded image matches the input, "
                    "−log p(x|z) added up over the pixels) plus λ times an **MMD**: how far the codes of a whole "
                    "batch are from samples of the prior N(0, I). One image has a reconstruction but no MMD of its "
                    "own, so only the first term has a number here.")
        st.markdown(WAE_NO_ELBO)
    elif variational:
        st.markdown("Training lowers **reconstruction + β·KL**. The **reconstruction** term says how badly the "
                    "decoded image matches the input (−log p(x|z), added up over the pixels). The **KL** term "
                    "(Kullback–Leibler divergence) says how far this image's cloud N(μ, σ²) is from the **prior** "
                    "N(0, I), the bell curve every code is meant to follow. Minus their sum (with β = 1) is the "
                    "**ELBO**, the evidence lower bound: a floor under how likely the model finds the image.")
    else:
        st.markdown("An autoencoder only lowers the **reconstruction** term: how badly the decoded image matches "
                    "the input (−log p(x|z), added up over the pixels). There is **no KL**, so nothing keeps its "
                    "codes near a bell curve, and its loss is not a bound on anything.")
    mean = st.toggle("Average over the pixels instead of summing", key="hvw_mean",
                     help="Many code bases average the reconstruction over the pixels (reduction='mean') but still "
                          "sum the KL over the latent dimensions. See how that shifts the balance between the two.")
    reduction = "mean" if mean else "sum"
    st.latex(loss_formula(ex, reduction))
    if variational and not mean:
        st.latex(elbo_formula(ex))
    st.caption(UNITS)
    part, n = ex[reduction], ex["n_pixels"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Reconstruction term", f"{part['recon']:.3f}",
              help="−log p(x|z) of this image at the drawn z, in nats: summed over the pixels, or averaged.")
    c2.metric("β·KL term", f"{ex['beta'] * part['kl']:.3f}",
              help="β times the KL, in nats, summed over the latent dimensions under both choices.")
    c3.metric("KL's share of the loss", share_text(part) if variational else "none",
              help="The part of the loss the KL term makes up: how hard training pulls the code towards the prior.")
    if not variational:
        st.caption("With a single term, averaging only rescales the whole loss: there is no balance to upset.")
    elif mean:
        st.info(f"Averaged, the reconstruction is divided by the {n} pixels (C·H·W) but the KL is not: the KL "
                f"weighs **{n} times more** than when summed, as if β were {ex['beta'] * n:g}. Here it goes from "
                f"{share_text(ex['sum'])} to **{share_text(ex['mean'])}** of the loss. A model trained like this "
                "pushes its codes onto the prior: blurry images, or a code that carries nothing (posterior "
                "collapse).", icon=":material/balance:")
    else:
        st.caption(f"Summed over the {n} pixels, as this model was trained: the KL is {share_text(ex['sum'])} of "
                   "the loss. Switch the toggle to see the other convention.")


# -- the page -----------------------------------------------------------------------------------------------------------
@st.fragment
def walkthrough(entry, model, data) -> None:
    """Everything below the header: a click (resample, toggle, index) reruns only this part."""
    n_test = len(data.test)
    index = st.columns([1, 3])[0].number_input(
        "Test image", 0, n_test - 1, step=1, key="hvw_index",
        help=f"Which of the {n_test} test images (never seen in training) to follow, by number.")
    set_url(i=int(index))
    draw = page_state(HowVaeWorksState).draw
    with friendly_errors("Explaining this image"):
        ex = explained(entry.sha256, int(index), draw, model, data)
        names = list(data.label_names)
        left, right = st.columns([1, 2], gap="large")
        with left:
            step_input(ex, data, int(index), model.config.is_conditional, names)
        with right:
            step_encoder(ex)
        left, right = st.columns([2, 1], gap="large")
        with left, st.container(key="hvw_trick"):  # keys: the browser tests find the parts by them
            step_trick(ex, draw)
        with right, st.container(key="hvw_decoded"):
            step_decoder(ex)
        with st.container(key="hvw_loss"):
            step_loss(ex)


def your_own_digit(entry, model, data) -> None:
    """The same steps on a digit the reader draws: the encoder runs in the browser on every stroke."""
    if not draw_digit.section_heading(
            entry, "Try it with a digit of your own",
            "Draw a digit in the black square. On every stroke the encoder (running in your browser) gives its μ and "
            "σ: the red ellipse on the map is μ ± σ, the cloud of codes your drawing could have; the decoder redraws "
            "the digit from μ. Let go and the numbers below are computed for your drawing."):
        return
    with friendly_errors("The drawing box"):
        test = encode_split(entry.sha256, "test", model, data)
        code = draw_digit.draw_digit(model, entry, key="hvw_draw", mu=test["mu"], labels=test["y"])
        if code is None:
            return
        mu = torch.tensor(code.mu, dtype=torch.float64)
        shown = ", ".join(f"{v:.2f}" for v in code.mu[:MAX_WRITTEN_DIMS]) + (", …" if len(code.mu) > MAX_WRITTEN_DIMS
                                                                              else "")
        if code.logvar is None:
            st.markdown(f"Your drawing's code: z = ({shown}). This model (an AE or a WAE) gives one exact code: no cloud.")
            return
        logvar = torch.tensor(code.logvar, dtype=torch.float64)
        sigma = ", ".join(f"{v:.2f}" for v in torch.exp(0.5 * logvar)[:MAX_WRITTEN_DIMS].tolist())
        kl = float(0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum())
        st.markdown(f"Your drawing: μ = ({shown}), σ = ({sigma}{', …' if len(code.mu) > MAX_WRITTEN_DIMS else ''}). "
                    f"Its KL term, the price of this cloud against the prior N(0, I), is **{kl:.2f} nats**.")


def main() -> None:
    entry, model = current_model()
    data = model_data(entry)
    if data is not None:
        init_state(len(data.test))  # before the header: a bad link's notice shows at the top
    page_header("How a VAE works", INTRO)
    data = require_data(entry)
    if len(data.test) == 0:
        st.info("This model's data set has no test images to follow.", icon=":material/info:")
        return
    walkthrough(entry, model, data)
    your_own_digit(entry, model, data)


if __name__ == "__main__":
    main()
