"""Disentanglement lab: on the shapes data set, whose images are made from known factors (shape, scale, orientation,
position), or a file of one's own with a `factors` array, see whether each latent dimension of a model tracks one
factor: its traversal grid with each row labelled by the factor it tells most about, beside a factor x dimension heat
map of normalised mutual information (which dimension holds which factor) and what the whole code knows of each factor
against chance; under the grid, for the shapes sets, the generator's own five factor rows (the target); its MIG and
DCI scores, the bundled models compared, and a new β trained in the background and added to the comparison.

Run by st.navigation (as __main__); importing the module (the tests do) defines the functions and runs nothing.
"""
from __future__ import annotations

import dataclasses

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from ui import figures
from ui.catalogue import available_models, current_model, select_model
from ui.datasets import bundled_data, model_data
from ui.images import scale_for
from ui.page import friendly_errors, page_header
from ui.text import plain
from ui.job_view import job_status
from ui.training import TrainingRun, current_job, current_run, start_training_job, training_refusal
from vae_core.config import TrainConfig, model_config_for
from vae_core.data import SHAPE_FACTOR_NAMES, SHAPE_FACTOR_SIZES, SHAPE_NAMES, factor_sweeps
from vae_core.disentanglement import (
    OWN_ROW_NMI, evaluate_disentanglement, factor_rows, inactive_dimensions, mutual_information,
)
from vae_core.latent import encode_dataset, image_grid, traverse
from vae_core.zoo import SHAPES_CONV, SHAPES_TRAIN

PAGE = "disentanglement"  # the name its training runs carry (ui.training.TrainingRun.started_on)
BUNDLED = ("zoo/shapes-vae", "zoo/shapes-betavae", "zoo/shapes-tcvae")  # the models the lab compares, VAE first
SHOWCASE = "zoo/shapes-tcvae"  # the bundled model that disentangles best (β-TCVAE): what the lab opens on
FACTOR_SOURCES = ("shapes", "shapes64")  # bundled data sets with ground-truth factors
SCORE_KEYS = ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factor_per_dim",
              "factor_accuracy", "factor_chance")
# A factor whose forest gets under this share of the way from chance to always right is not in the code at all.
IN_THE_CODE = 0.1
EVAL_SAMPLES = 4000  # as the zoo's cards (vae_core.zoo.disentanglement_card), so new models compare fairly
SPAN, VALUES = 3.0, 7  # traversal columns: -3, -2, ..., 3 prior standard deviations
TILE_PX = 64
# The target's sprite when the rows are centred on the prior: an ellipse (whose turn shows) mid-frame, mid-size, 45°.
REFERENCE_SPRITE = (1, 3, 5, 16, 16)
QUICK_IMAGES = 2000  # a quick try trains 1 epoch on this many images: seconds, not minutes
QUICK_TEST_IMAGES = 1000  # and follows its progress on this many test images
DEFAULT_EPOCHS = 3  # about a minute on a free 2-core machine (the bundled models trained 12)
POLL_SECONDS = 1.0
CHART_CONFIG = {"displayModeBar": False}
SCORE_TEXT = {  # (label, one plain line, help)
    "mig": ("MIG", "For each factor, how much more the best dimension knows about it than the runner-up.",
            "Mutual information gap (Chen et al. 2018), 0 to 1. 1: each factor lives in exactly one dimension. "
            "0: every factor is spread over several dimensions (or none)."),
    "dci_disentanglement": ("DCI disentanglement", "Does each dimension capture at most one factor?",
                            "Eastwood & Williams 2018, 0 to 1, from the feature importances of a random forest "
                            "predicting each factor from the code. 1: every dimension matters for a single factor."),
    "dci_completeness": ("DCI completeness", "Is each factor captured by a single dimension?",
                         "0 to 1. 1: each factor is predicted from one dimension only."),
    "dci_informativeness": ("DCI informativeness", "How well the code predicts the factors at all.",
                            "The random forests' accuracy on held-out test images, averaged over the factors "
                            "(0 to 1). Disentangled or not, a useless code scores low here."),
}


# -- scores (the zoo's cards, or measured once per checkpoint) --------------------------------------------------------
@st.cache_data(show_spinner=f"Measuring MIG and DCI on {EVAL_SAMPLES:,} test images (about half a minute)…",
               max_entries=32)
def measured_scores(sha: str, _model, _dataset) -> dict:
    d = evaluate_disentanglement(_model, _dataset, max_samples=EVAL_SAMPLES, seed=0)
    return {k: d[k] for k in SCORE_KEYS}


@st.cache_data(show_spinner="Measuring what each dimension knows about each factor…", max_entries=32)
def measured_information(sha: str, _model, _dataset) -> dict:
    return mutual_information(_model, _dataset, max_samples=EVAL_SAMPLES, seed=0)


def information(entry, model, data) -> dict:
    """{"mi" (D, K) nats, "entropies" (K,) nats, "factor_names"}: from the model's card when it carries them, else
    measured on the same EVAL_SAMPLES test images (seed 0) as the scores, without the forests of DCI."""
    card = entry.card
    mi, entropies = card.get("mi"), card.get("entropies")
    if (isinstance(mi, list) and len(mi) == model.config.latent_dim and isinstance(entropies, list)
            and len(entropies) == len(data.test.factor_names) and all(len(row) == len(entropies) for row in mi)):
        return {"mi": mi, "entropies": entropies, "factor_names": list(data.test.factor_names)}
    return measured_information(entry.sha256, model, data.test)


def scores(entry, model, data) -> dict:
    """MIG, DCI and the factor each dimension tells most about: from the model's card when it has them (the
    bundled models), else measured the same way the cards were."""
    card = entry.card
    if all(k in card for k in SCORE_KEYS) and len(card["factor_accuracy"]) == len(data.test.factor_names):
        return {k: card[k] for k in SCORE_KEYS}
    return measured_scores(entry.sha256, model, data.test)


@st.cache_data(show_spinner="Measuring the information in each dimension…", max_entries=32)
def measured_kl(sha: str, _model, _dataset) -> list[float]:
    from vae_core.metrics import evaluate_elbo

    return evaluate_elbo(_model, _dataset.x, _dataset.y)["kl_per_dim"]


def kl_per_dim(entry, model, data) -> list[float] | None:
    """Test KL of each latent dimension, nats (None for an autoencoder, which has no KL)."""
    if not model.config.is_variational:
        return None
    kl = entry.card.get("kl_per_dim") or entry.meta.get("kl_per_dim")  # the card's, as its active units
    if kl and len(kl) == model.config.latent_dim:
        return list(kl)
    return measured_kl(entry.sha256, model, data.test)


def has_factors(entry) -> bool:
    spec = entry.meta.get("data_spec") or {}
    return spec.get("source") in FACTOR_SOURCES or "mig" in entry.card


# -- the traversal grid -------------------------------------------------------------------------------------------------
def row_labels(score: dict, inactive: list[bool] | None) -> list[str]:
    """'z[4] · pos_y 0.53' (the factor the dimension tells most about, normalised MI), or 'z[0] · inactive'."""
    labels = []
    for i, (factor, nmi) in enumerate(score["factor_per_dim"]):
        labels.append(f"z[{i}] · inactive" if inactive and inactive[i] else f"z[{i}] · {factor} {nmi:.2f}")
    return labels


@st.cache_data(show_spinner=False, max_entries=64)
def traversal_figure(sha: str, base: tuple, y: int | None, labels: tuple, faded: tuple, _model) -> go.Figure:
    images, values = traverse(_model, torch.tensor(base), n=VALUES, span=SPAN, y=y)  # (D, n, C, H, W)
    images = images.clone()
    for row, fade in enumerate(faded):
        if fade:  # greyed out but still visible: a flat row is the lesson
            images[row] = 0.3 * images[row] + 0.55
    flat = images.reshape(-1, *images.shape[2:])
    scale = scale_for(flat, TILE_PX)
    picture = image_grid(flat, nrow=VALUES, scale=scale)
    columns = [f"{v:g}" for v in values.tolist()]
    hover = [[f"{labels[r]}<br>z[{r}] = {v}" for v in columns] for r in range(len(labels))]
    tile = (flat.shape[-2] * scale, flat.shape[-1] * scale)
    return figures.tile_figure(picture, len(labels), VALUES, tile, row_labels=list(labels), col_labels=columns,
                               x_title="value of the dimension (σ)",
                               y_title="dimension · factor it tells most about", hover=hover)


HEATMAP_NOTE = ("Each cell: how much knowing this dimension tells you about that factor, 0 to 1 (the mutual "
                "information over the factor's entropy). A disentangled model has one bright cell per factor, each in "
                "its own column.")


def information_heatmap(entry, model, data, key: str) -> None:
    """The factor x latent-dimension heat map of normalised mutual information, with its one-line explanation."""
    info = information(entry, model, data)
    fig = figures.factor_heatmap(info["mi"], info["entropies"], info["factor_names"])
    st.plotly_chart(fig, width="stretch", config=CHART_CONFIG, key=key)
    st.caption(HEATMAP_NOTE)
    st.markdown(factor_rows_text(factor_rows(info["mi"], info["entropies"], info["factor_names"])))
    score = scores(entry, model, data)
    st.markdown(known_at_all_text(info["factor_names"], score["factor_accuracy"], score["factor_chance"]))


def factor_rows_text(rows: list[dict]) -> str:
    """One plain paragraph: the factors with a traversal row of their own, then those spread over several."""
    own = [f"**{plain(r['factor'], 40)}** (z[{r['dim']}], {r['nmi']:.2f})" for r in rows if r["own_row"]]
    spread = [f"**{plain(r['factor'], 40)}** (at most {r['nmi']:.2f}, in z[{r['dim']}])"
              for r in rows if not r["own_row"]]
    parts = [f"A row of its own (its top factor, at least {OWN_ROW_NMI:g}): " + (", ".join(own) if own else "none")
             + f", {len(own)} of {len(rows)} factors."]
    if spread:
        parts.append("Not in any one row yet: " + ", ".join(spread) + ".")
    return " ".join(parts)


def known_at_all_text(names, accuracy, chance) -> str:
    """What the whole code knows of each factor (DCI's per-factor forests) against chance, naming the factors
    that are not in the code at all: no row, however the code is turned, can show those."""
    known = [f"**{plain(n, 40)}** {a:.0%} (chance {c:.0%})" for n, a, c in zip(names, accuracy, chance) if a is not None]
    absent = [f"**{plain(n, 40)}**" for n, a, c in zip(names, accuracy, chance)
              if a is not None and c < 1 and (a - c) / (1 - c) < IN_THE_CODE]
    text = ("Known at all (a random forest guessing the factor from the whole code on held-out images, against "
            "always guessing its commonest value): " + ", ".join(known) + ".")
    if absent:
        them = "it" if len(absent) == 1 else "them"
        text += (f" Not in the code at all: {', '.join(absent)}. No traversal row can show {them}; the model "
                 f"has to learn {them} first.")
    return text


def traversal(entry, model, data, score: dict, base: tuple, y: int | None, key: str) -> None:
    kl = kl_per_dim(entry, model, data)
    inactive = inactive_dimensions(kl) if kl is not None else None
    faded = tuple(inactive) if inactive else (False,) * model.config.latent_dim
    fig = traversal_figure(entry.sha256, base, y, tuple(row_labels(score, inactive)), faded, _model=model)
    st.plotly_chart(fig, width="content", config=CHART_CONFIG, key=key)


@st.cache_data(show_spinner=False, max_entries=256)
def encoded_image(sha: str, index: int, _model, _dataset) -> tuple:
    y = _dataset.y[index:index + 1]
    return tuple(encode_dataset(_model, _dataset.x[index:index + 1], y).mu[0].tolist())


def traversal_centre(entry, model, data) -> tuple[tuple, int | None, int | None]:
    """(the code the rows start from, the class for a CVAE, the test image's number or None for the prior mean),
    from the user's choice."""
    d = model.config.latent_dim
    c1, c2 = st.columns([2, 1])
    around = c1.radio("Centre the rows on", ["prior", "image"], horizontal=True, key="dl_around",
                      format_func={"prior": "the prior mean (all zeros)", "image": "a test image"}.get,
                      help="Every row starts from this code and changes one dimension from −3 to 3. The prior "
                           "mean is the centre of the code space; a test image shows the changes around a real "
                           "shape.")
    if around == "prior":
        if model.config.is_conditional:
            st.caption(f"This CVAE draws every row as the class “{plain(data.label_names[0], 40)}”; centre the "
                       "rows on a "
                       "test image to use its class.")
        return (0.0,) * d, 0 if model.config.is_conditional else None, None
    index = int(c2.number_input("Test image number", 0, len(data.test) - 1, 0, key="dl_image",
                                help=f"One of the {len(data.test):,} test images; its code is the centre."))
    c2.image(image_grid(data.test.x[index:index + 1], nrow=1, scale=scale_for(data.test.x, TILE_PX)),
             caption=f"Test image {index}", width="content")
    y = int(data.test.y[index]) if model.config.is_conditional else None
    return encoded_image(entry.sha256, index, model, data.test), y, index


# -- the target: the generator's own factor rows ----------------------------------------------------------------------
TARGET_NOTE = ("Drawn by the shapes generator, not by the model: row by row, one factor moves from its first value to "
               "its last and the others stay as in the centre sprite. A perfectly disentangled model has one traversal "
               "row like each of these; compare them with the model's rows above.")


def drawn_by_the_generator(entry, data) -> bool:
    """Whether the model's data is a bundled shapes set, whose sprites the lab can draw from any factors."""
    spec = entry.meta.get("data_spec") or {}
    return spec.get("source") in FACTOR_SOURCES and tuple(data.test.factor_names) == SHAPE_FACTOR_NAMES


def factor_value_text(k: int, index: int) -> str:
    """A factor's value as a student reads it: the shape's name, the turn in degrees, else the index of the values."""
    if SHAPE_FACTOR_NAMES[k] == "shape":
        return SHAPE_NAMES[index]
    if SHAPE_FACTOR_NAMES[k] == "orientation":
        return f"{360 * index / SHAPE_FACTOR_SIZES[k]:.0f}°"
    return f"{index + 1} of {SHAPE_FACTOR_SIZES[k]}"


@st.cache_data(show_spinner=False, max_entries=64)
def target_figure(sprite: tuple, image_size: int) -> go.Figure:
    images, factors = factor_sweeps(sprite, n_values=VALUES, image_size=image_size)  # (K, n, S, S), (K, n, K)
    flat = torch.from_numpy(images).float().reshape(-1, 1, image_size, image_size)  # (K n, 1, S, S)
    scale = scale_for(flat, TILE_PX)
    hover = [[f"{name} = {factor_value_text(k, int(factors[k, j, k]))}" for j in range(VALUES)]
             for k, name in enumerate(SHAPE_FACTOR_NAMES)]
    return figures.tile_figure(image_grid(flat, nrow=VALUES, scale=scale), len(SHAPE_FACTOR_NAMES), VALUES,
                               (image_size * scale, image_size * scale), row_labels=list(SHAPE_FACTOR_NAMES),
                               col_labels=["first"] + [""] * (VALUES - 2) + ["last"],
                               x_title="the factor's value, first to last", y_title="the one factor that moves",
                               hover=hover)


def target(data, index: int | None) -> None:
    """The five factor rows a perfectly disentangled model would show, around the centre sprite (or a fixed one)."""
    sprite = REFERENCE_SPRITE if index is None else tuple(int(v) for v in data.test.factors[index].tolist())
    st.markdown("**The target: each factor on a row of its own**")
    st.caption(TARGET_NOTE)
    st.plotly_chart(target_figure(sprite, int(data.test.x.shape[-1])), width="content", config=CHART_CONFIG,
                    key="dl_target")


# -- the chosen model ---------------------------------------------------------------------------------------------------
def score_metrics(score: dict, source: str) -> None:
    """The four scores in a row, each with its one plain line."""
    for column, (key, (label, line, help_text)) in zip(st.columns(len(SCORE_TEXT)), SCORE_TEXT.items()):
        column.metric(label, f"{score[key]:.3f}", help=help_text)
        column.caption(line)
    st.caption(source)


def chosen_model(entry, model, data) -> None:
    score = scores(entry, model, data)
    names = ", ".join(f"{n} ({k} values)" for n, k in zip(data.test.factor_names, data.test.factor_sizes))
    st.subheader(f"{plain(entry.title, 80)}: one row per latent dimension")
    st.caption(f"The factors that made each image: {names}. Each row is labelled with the factor its dimension "
               "tells most about and the **normalised mutual information** (0 to 1: the share of that factor's "
               "uncertainty the dimension removes). A greyed-out row is an **inactive** dimension: it carries "
               "under 0.1 nats of information, so the decoder ignores it.")
    if not model.config.is_variational:
        st.caption("A WAE has no KL (one exact code per image): no row is marked inactive." if model.config.is_generative
                   else "An autoencoder has no KL and no prior: no row is marked inactive, and ±3 may reach past "
                        "where its codes lie.")
    base, y, index = traversal_centre(entry, model, data)
    left, right = st.columns([4, 3], gap="large")
    with left:
        traversal(entry, model, data, score, base, y, key="dl_traversal")
        if drawn_by_the_generator(entry, data):
            target(data, index)
    with right:
        st.markdown("**Which dimension holds which factor**")
        information_heatmap(entry, model, data, key="dl_heatmap")
    source = ("From the model card (measured on 4,000 test images)." if "mig" in entry.card else
              f"Measured on {EVAL_SAMPLES:,} test images, as the bundled models' cards.")
    score_metrics(score, source)


def needs_factors(entry, data) -> None:
    if data is None and has_factors(entry):
        st.info(f"This page needs the data **{plain(entry.title, 80)}** was trained on "
                f"({plain(entry.dataset, 80)}), which this session "
                "does not have. Upload that file on the Train page, or pick a bundled model.", icon=":material/info:")
    else:
        st.info(f"**{plain(entry.title, 80)}** was trained on {plain(entry.dataset, 80)}, which has no "
                "ground-truth factors: there is "
                "nothing to check its dimensions against. To measure disentanglement, use the **shapes** set "
                "(every image made from known factors: shape, scale, orientation, position) or upload an .npz with "
                "a **factors** array (N, K) and, optionally, **factor_names**, and train a model on it.",
                icon=":material/info:")
    if SHOWCASE in available_models():
        st.button("Switch to the bundled shapes β-TCVAE", icon=":material/swap_horiz:", on_click=select_model,
                  args=(SHOWCASE,), help="Pick the shapes β-TCVAE, the best-disentangled bundled model, in the "
                                         "sidebar's model picker.")


# -- the comparison -----------------------------------------------------------------------------------------------------
def compared_models() -> list[tuple]:
    """(entry, model, data) of the bundled VAE, β-VAE and β-TCVAE, then this session's models trained on shapes."""
    models = available_models()
    keys = [k for k in BUNDLED if k in models]
    keys += [k for k, (e, _) in models.items() if e.source != "zoo" and has_factors(e)]
    out = []
    for key in keys:
        entry, model = models[key]
        data = model_data(entry)
        if data is not None and data.test.factors is not None:
            out.append((entry, model, data))
    return out


def comparison_table(rows: list[tuple]) -> pd.DataFrame:
    records = []
    for entry, model, data in rows:
        s = scores(entry, model, data)
        kl = kl_per_dim(entry, model, data)
        records.append({"Model": entry.title, "β": model.config.beta, "MIG": s["mig"],
                        "DCI disentanglement": s["dci_disentanglement"], "DCI completeness": s["dci_completeness"],
                        "DCI informativeness": s["dci_informativeness"],
                        "Active dimensions": inactive_dimensions(kl).count(False) if kl else model.config.latent_dim})
    return pd.DataFrame.from_records(records)


def comparison_figure(table: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for i, column in enumerate(("MIG", "DCI disentanglement", "DCI completeness", "DCI informativeness")):
        fig.add_trace(go.Bar(x=table["Model"], y=table[column], name=column, marker_color=figures.PALETTE[i],
                             hovertemplate=f"{column}: %{{y:.3f}}<extra></extra>"))
    fig.update_layout(barmode="group", height=340, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="model",
                      yaxis_title="score (0 to 1, higher is better)",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def bundled_verdict(table: pd.DataFrame) -> None:
    """The lab's headline: the β-VAE's MIG against the VAE's, then the β-TCVAE's against both (the table's first
    three rows, in the order of BUNDLED)."""
    vae, beta, tcvae = table.iloc[0], table.iloc[1], table.iloc[2]
    word = "higher" if beta["MIG"] > vae["MIG"] else "not higher"
    st.markdown(f"The bundled **β-VAE** (β = {beta['β']:g}) has a MIG of **{beta['MIG']:.3f}**, {word} than the "
                f"plain **VAE**'s **{vae['MIG']:.3f}**: weighting the KL more pushes each factor into fewer "
                "dimensions, at the cost of blurrier images.")
    best = "the highest of the three" if tcvae["MIG"] > max(beta["MIG"], vae["MIG"]) else "not the highest"
    st.markdown(f"The **β-TCVAE** (β = {tcvae['β']:g} on the total correlation only) has a MIG of "
                f"**{tcvae['MIG']:.3f}**, {best}: it penalises only the dependence between dimensions, not the "
                "information each one carries, so it can keep the factors apart without starving the code.")


def comparison() -> None:
    st.subheader("VAE, β-VAE and β-TCVAE")
    rows = compared_models()
    if not rows:
        st.info("The bundled shapes models are missing: run `python -m vae_core zoo build`.", icon=":material/info:")
        return
    table = comparison_table(rows)
    st.dataframe(table, width="stretch", hide_index=True, key="dl_table", column_config={
        "β": st.column_config.NumberColumn(help="The KL weight the model was trained with (1 = a plain VAE).",
                                           format="%g"),
        **{SCORE_TEXT[k][0]: st.column_config.NumberColumn(help=SCORE_TEXT[k][2], format="%.3f")
           for k in SCORE_TEXT},
        "Active dimensions": st.column_config.NumberColumn(help="Latent dimensions carrying at least 0.1 nats."),
    })
    if [e.key for e, _, _ in rows[:len(BUNDLED)]] == list(BUNDLED):
        bundled_verdict(table)
    st.plotly_chart(comparison_figure(table), width="stretch", config=CHART_CONFIG, key="dl_compare_chart")
    st.markdown("**Their traversals and heat maps** (rows centred on the prior mean)")
    tabs = st.tabs([plain(e.title, 60) for e, _, _ in rows])
    for tab, (entry, model, data) in zip(tabs, rows):
        with tab:
            left, right = tab.columns([4, 3], gap="large")
            with left:
                traversal(entry, model, data, scores(entry, model, data), (0.0,) * model.config.latent_dim,
                          0 if model.config.is_conditional else None, key=f"dl_trav_{entry.sha256[:12]}")
            with right:
                information_heatmap(entry, model, data, key=f"dl_heat_{entry.sha256[:12]}")


# -- training a new β in the background (as the Train page does) --------------------------------------------------------
def session_busy() -> bool:
    """One training run per session, whichever page started it."""
    job = current_job()
    return job is not None and job.is_active


def lab_run() -> TrainingRun | None:
    """The session's training run if this page started it."""
    run = current_run()
    return run if run is not None and run.started_on == PAGE else None


def head(dataset, n: int):
    """The first n examples of a Dataset (images, labels and factors)."""
    return dataclasses.replace(dataset, x=dataset.x[:n], y=dataset.y[:n], factors=dataset.factors[:n])


def quick_split(data):
    """The shapes split cut down for a quick try. The test part is cut too: the trainer scores it after every
    epoch, which would otherwise cost more than the epoch itself. The checkpoint still names the full data set,
    so the MIG and DCI are measured on the full test set, as for every model."""
    return dataclasses.replace(data, train=head(data.train, QUICK_IMAGES), test=head(data.test, QUICK_TEST_IMAGES))


def start_job(beta: float, epochs: int, quick: bool) -> None:
    data = bundled_data("shapes")
    config = model_config_for(data.input_shape, data.num_classes, kind="vae", beta=beta, **SHAPES_CONV)
    train_config = TrainConfig(**{**SHAPES_TRAIN, "epochs": epochs})
    name = f"Shapes β-VAE (β = {beta:g}, {epochs} epoch{'s' if epochs > 1 else ''}{', quick' if quick else ''})"
    start_training_job(config, train_config, quick_split(data) if quick else data, name, started_on=PAGE)


def training_controls() -> None:
    busy = session_busy()
    c1, c2, c3 = st.columns(3, gap="large")
    beta = c1.slider("β (KL weight)", 0.5, 12.0, 4.0, 0.5, key="dl_beta", disabled=busy,
                     help="1 is the plain VAE, the bundled β-VAE has 6. Larger β: more disentangled, blurrier; "
                          "too large and dimensions switch off (inactive).")
    quick = c3.toggle("Quick try", key="dl_quick", disabled=busy,
                      help=f"1 epoch on {QUICK_IMAGES:,} of the 16,000 training images: a few seconds on a free machine, but the "
                           "model is still rough, so its scores are low.")
    epochs = c2.slider("Epochs", 1, 12, DEFAULT_EPOCHS, key="dl_epochs", disabled=busy or quick,
                       help="Passes over the 16,000 training images. The bundled models trained 12 (about 4 "
                            f"minutes on a free 2-core machine); {DEFAULT_EPOCHS} take about a minute.")
    problem = None if busy else training_refusal()  # the student's quotas, before Start (issue 15)
    if problem:
        st.warning(plain(problem, 1000), icon=":material/block:")
    if st.button("Train this β", type="primary", icon=":material/play_arrow:", disabled=busy or bool(problem),
                 key="dl_start",
                 help="Train in the background with the bundled models' network and settings; you can keep "
                      "using the app. The result joins the comparison above and the model picker."):
        with friendly_errors("Starting training"):  # a ConfigError or QuotaError is shown as one clear message
            start_job(float(beta), 1 if quick else int(epochs), bool(quick))
            st.rerun()
    if busy and lab_run() is None:
        st.caption("A model of yours is training on the Train page: one run at a time per session.")


def run_status(run: TrainingRun) -> None:
    snap = job_status(run, name_in_text=True, done_note="It is in the comparison above and in the model picker.",
                      kept_note="compared above", select_new_model=False, key="dl")
    if snap.state == "done" and snap.checkpoint:
        st.button("Show it at the top of this page", on_click=select_model, args=(f"mine/{snap.checkpoint.stem}",),
                  key="dl_show_new", help="Pick the new model in the sidebar: its traversal and scores appear above.")


def training() -> None:
    st.subheader("Train your own β")
    st.caption("The same convolutional VAE as the bundled ones (8 latent dimensions), trained on shapes with the β "
               "you choose, in the background. When it is done, its MIG and DCI are measured and it joins the "
               "comparison above.")
    training_controls()
    run = lab_run()
    if run is not None:
        st.fragment(run_status, run_every=POLL_SECONDS if run.job.is_active else None)(run)


# -- the page -------------------------------------------------------------------------------------------------------------
def main() -> None:
    entry, model = current_model()
    page_header(
        "Disentanglement lab",
        "A code is **disentangled** when each of its numbers (latent dimensions) tracks one thing that made the "
        "image, such as its position or its size, and nothing else. The **shapes** images are drawn from known "
        "factors, so we can check: change one dimension at a time and watch which factor moves. A **β-VAE** "
        "weights the KL term more (β > 1), which tends to disentangle the code.",
    )
    data = model_data(entry)
    with friendly_errors("Measuring the model"):
        if data is None or data.test.factors is None:
            needs_factors(entry, data)
        else:
            chosen_model(entry, model, data)
    st.divider()
    with friendly_errors("Comparing the models"):
        comparison()
    st.divider()
    training()


if __name__ == "__main__":
    main()
