"""Anomaly detection: a model trained on one kind of image scores how surprising any image is; compare the scores of
its own test images with another set (the other bundled data set, altered test images, or an upload), set a
threshold, and read off what it catches and what it flags by mistake (rates, ROC curve, AUROC), with the most and
least anomalous images of each set.

The other-set choice, the score and the threshold live in the URL (vs, score, t).
Run by st.navigation (as __main__); importing the module (the tests do) defines the functions and runs nothing.
"""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui.catalogue import current_model
from ui.datasets import bundled_data, model_data, require_data
from ui.images import scale_for
from ui.page import friendly_errors, page_header, queue_notice
from ui.state import bad_link_value, page_state, set_url_exact
from ui.text import plain
from vae_core.anomaly import (anomaly_scores, anomaly_scores_best_class, auroc, extremes, rates_at_threshold,
                              resize_images, roc_curve, threshold_at_false_positive_rate, transform_images)
from vae_core.data import load_image_folder, load_npz
from vae_core.errors import DataError, UserInputError

MAX_IMAGES = 500  # per set: enough for a steady AUROC (±0.01), small enough to score a conv model in seconds
N_SAMPLES = 8  # posterior samples per −ELBO: measured AUROC digits vs shapes 0.975 with 8 against 0.960 with 1
START_FALSE_ALARMS = 0.05  # the threshold starts where 5% of the model's own test images are flagged
SHOWN = 6  # most and least anomalous images shown per set (one row in a half-width column)
THUMB_PX = 64
CHART_CONFIG = {"displayModeBar": False}
SCORES = {"neg_elbo": "−ELBO (8 samples)", "recon": "Reconstruction error"}
SCORE_HELP = (
    "How surprising the model finds an image, in nats (information measured with the natural logarithm): higher "
    "means more anomalous. **−ELBO** is the model's bound on −log p(x): how badly the image is rebuilt plus how "
    "far its code is from the prior (the KL), averaged over 8 random codes. **Reconstruction error** only counts "
    "how badly the image is rebuilt from its most likely code.")
TRANSFORM_CHOICES = {  # choice -> (label in the list, how the altered images are called in a sentence)
    "invert": ("Inverted test images (black and white swapped)", "inverted {}"),
    "rotate90": ("Test images turned a quarter turn", "turned {}"),
    "flip": ("Test images upside down", "upside-down {}"),
    "noise": ("Test images with strong noise (σ = 0.3)", "noisy {}"),
    "shuffle_pixels": ("Test images with their pixels shuffled", "pixel-shuffled {}"),
}
NOUNS = {"digits": "digits", "shapes": "shapes", "shapes64": "shapes", "mnist": "MNIST digits",
         "fashion-mnist": "Fashion-MNIST clothes"}
UPLOAD_HELP = ("A NumPy .npz with an array x of images shaped (N, H, W) or (N, H, W, C), uint8 0–255 or float "
               "0–1; or a .zip with one folder of images per kind, at least two (any names). At least 10 images; the "
               f"first {MAX_IMAGES} are used, resized to the model's input.")


# -- the sets (cached: nothing is rebuilt or rescored on a rerun) ----------------------------------------------------
def data_source(data) -> str:
    return str(data.spec.get("source") or data.name)


def other_source(data) -> str:
    """The other bundled data set: shapes for a digits model, digits for everything else."""
    return "shapes" if data_source(data) == "digits" else "digits"


def noun(data) -> str:
    """How the model's own images are called in a sentence ("digits"), for any data set."""
    return NOUNS.get(data_source(data), f"images of {data.name}")


def set_choices(data, model) -> dict[str, str]:
    """Every other set offered for this model, by choice key: its label in the list."""
    c, h, w = model.config.input_shape
    other = other_source(data)
    choices = {"other": f"{other.capitalize()} resized to {h}×{w} (the other bundled data set)"}
    for key, (label, _) in TRANSFORM_CHOICES.items():
        if key != "rotate90" or h == w:  # a quarter turn keeps the shape of square images only
            choices[key] = label
    choices["upload"] = "My own images (upload a .npz or .zip)"
    return choices


def out_noun(choice: str, data, model) -> str:
    c, h, w = model.config.input_shape
    if choice == "other":
        return f"{NOUNS[other_source(data)]} (resized to {h}×{w})"
    if choice == "upload":
        return "images you uploaded"
    return TRANSFORM_CHOICES[choice][1].format(noun(data))


@st.cache_resource(show_spinner=False, max_entries=32)
def other_images(set_key: str, shape: tuple[int, int, int], _in_x: torch.Tensor) -> torch.Tensor:
    """The out-of-distribution images of a choice ("other:<source>" or "<transform>:<data fingerprint>"), fitted
    to the model's input shape."""
    kind, _, source = set_key.partition(":")
    if kind == "other":
        return resize_images(bundled_data(source).test.x[:MAX_IMAGES], shape)
    return transform_images(_in_x, kind, seed=0)


# Server-wide: at most 4 entries, each at most MAX_IMAGES images of the model's shape and at most UPLOAD_KEEP_BYTES
# (64 MB: 500 MNIST images are 1.6 MB; a model with 3x256x256 inputs keeps 85 of them), so at most 4 x 64 MB =
# 256 MB, dropped after 30 minutes unused. The file's full load (bounded by the one-file budget) is not kept. A
# refused file is cached as its message: it costs once.
UPLOAD_KEEP_BYTES = 64 * 2**20


@st.cache_resource(show_spinner="Reading your images…", max_entries=4, ttl=30 * 60)
def _uploaded_images(sha: str, file_name: str, shape: tuple[int, int, int], _blob: bytes) -> torch.Tensor | str:
    try:
        if file_name.lower().endswith(".npz"):
            split = load_npz(io.BytesIO(_blob), name=file_name)
        else:
            split = load_image_folder(io.BytesIO(_blob), image_size=max(shape[1:]), name=file_name)
    except UserInputError as exc:
        return str(exc)
    keep = max(10, min(MAX_IMAGES, UPLOAD_KEEP_BYTES // (4 * math.prod(shape))))
    x = torch.cat([split.train.x[:keep], split.test.x[:keep]])[:keep]
    return resize_images(x, shape)


def uploaded_images(sha: str, file_name: str, shape: tuple[int, int, int], _blob: bytes) -> torch.Tensor:
    """The first MAX_IMAGES images of an uploaded .npz or .zip, resized to the model's input shape; DataError with
    the loader's one-line message if the file is refused."""
    images = _uploaded_images(sha, file_name, shape, _blob)
    if isinstance(images, str):
        raise DataError(images)
    return images


@st.cache_data(show_spinner=False, max_entries=128)
def scores_of(sha: str, set_key: str, score: str, _model, _x: torch.Tensor, _y: torch.Tensor | None) -> np.ndarray:
    """(N,) anomaly scores, nats, of one set under one model: with the labels _y when given (the model's own test
    set), else for a CVAE with the class that explains each image best."""
    if _y is not None:
        return anomaly_scores(_model, _x, _y, score=score, n_samples=N_SAMPLES)
    return anomaly_scores_best_class(_model, _x, score=score, n_samples=N_SAMPLES)


# -- state from and to the URL ----------------------------------------------------------------------------------------
@dataclass
class AnomalyState:
    """The page's own state (the widgets keep theirs). written: what the page last wrote to the URL, by name (see
    url_news); link_threshold: a threshold a link asked for, applied by the threshold slider once its range is
    known (then None)."""

    written: dict[str, str] = field(default_factory=dict)
    link_threshold: float | None = None


def state() -> AnomalyState:
    return page_state(AnomalyState)


def url_news(name: str) -> str | None:
    """The URL's value of `name` if it is not the one this page last wrote there: a shared link, a lesson step or
    a hand-edited address asks for it. Otherwise (the page's own value, or none) None: the widgets rule."""
    raw = st.query_params.get(name)
    if raw is None or raw == state().written.get(name):
        return None
    return raw


def bad_link(name: str) -> None:
    queue_notice(bad_link_value(name))


def init_from_url(choices: dict) -> None:
    """Widget values from the URL when it asks for new ones; defaults on a first visit without any."""
    vs, score, t = url_news("vs"), url_news("score"), url_news("t")
    if vs is not None:
        if vs in choices:
            st.session_state.an_vs = vs
        else:
            bad_link("vs")
    if score is not None:
        if score in SCORES:
            st.session_state.an_score = score
        else:
            bad_link("score")
    if t is not None:
        try:
            value = float(t)
            if not math.isfinite(value):
                raise ValueError
            state().link_threshold = value  # applied by the threshold slider, once its range is known
        except ValueError:
            bad_link("t")
    st.session_state.setdefault("an_vs", "other")
    st.session_state.setdefault("an_score", "neg_elbo")
    if st.session_state.an_vs not in choices:  # the new model does not offer the old choice
        st.session_state.an_vs = "other"


def write_url(**values: str) -> None:
    """Put the page's state in the URL (a shareable link), remembering what was written (see url_news)."""
    set_url_exact(**values)
    state().written.update(values)


# -- controls ---------------------------------------------------------------------------------------------------------
def controls(data, model, choices: dict) -> tuple[str, str]:
    c1, c2 = st.columns([3, 2], gap="large")
    choice = c1.selectbox("Compare the test images with", list(choices), format_func=choices.get, key="an_vs",
                          help=f"The model's own test images (up to {MAX_IMAGES}) are the normal set. The other "
                               "set should look unusual to it: another data set, the same images altered, or "
                               "images of your own.")
    score = c2.radio("Anomaly score", list(SCORES), format_func=SCORES.get, key="an_score", horizontal=True,
                     help=SCORE_HELP)
    if not model.config.is_variational:
        what = "a WAE" if model.config.kind == "wae" else "a plain autoencoder"
        st.caption(f"This is {what}: one exact code per image, no KL term and no random code, so its −ELBO is "
                   "just its reconstruction error and both scores agree.")
    if model.config.is_conditional:
        st.caption(f"This CVAE is told each image's class. The {plain(noun(data), 80)} are scored with their true "
                   "class; the "
                   f"other images are scored with the class that explains each best (the lowest score over all "
                   f"{model.config.num_classes} classes), since they have no true class.")
    return choice, score


def upload_control(model) -> tuple[str, torch.Tensor] | None:
    """(set key, images) of an uploaded file, or None with a note on what to upload."""
    upload = st.file_uploader("Your images", type=["npz", "zip"], key="an_upload", help=UPLOAD_HELP)
    if upload is None:
        st.info(f"Upload your images to score them. {UPLOAD_HELP}", icon=":material/upload_file:")
        return None
    blob = upload.getvalue()
    sha = hashlib.sha256(blob).hexdigest()
    return f"upload:{sha[:16]}", uploaded_images(sha, upload.name, tuple(model.config.input_shape), blob)


def the_other_set(choice: str, data, model, in_x: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """(set key, images fitted to the model) of the chosen other set; None while an upload is awaited."""
    if choice == "upload":
        return upload_control(model)
    key = f"other:{other_source(data)}" if choice == "other" else f"{choice}:{data.spec.get('fingerprint', data.name)}"
    return key, other_images(key, tuple(model.config.input_shape), in_x)


# -- threshold --------------------------------------------------------------------------------------------------------
def nice_step(span: float) -> float:
    """A round slider step giving about 200 positions over `span`."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0):
        if span / step <= 200:
            return step
    return 100.0


def threshold_slider(slider_key: str, s_in: np.ndarray, s_out: np.ndarray) -> float:
    both = np.r_[s_in, s_out]
    step = nice_step(float(both.max() - both.min()))
    lo = round(math.floor(both.min() / step) * step, 6)
    hi = round(math.ceil(both.max() / step) * step, 6)
    hi = hi if hi > lo else lo + step
    from_url, state().link_threshold = state().link_threshold, None
    if from_url is not None:
        st.session_state[slider_key] = round(min(max(from_url, lo), hi), 6)
    elif slider_key not in st.session_state:
        start = math.ceil(threshold_at_false_positive_rate(s_in, START_FALSE_ALARMS) / step) * step
        st.session_state[slider_key] = round(min(max(start, lo), hi), 6)
    return float(st.slider(
        "Threshold (nats)", lo, hi, step=step, key=slider_key, format="%.2f" if step < 0.1 else "%.1f",
        help="Images scoring above the threshold are flagged as anomalous. Higher: fewer false alarms, more "
             "anomalies missed. It starts where 5% of the model's own test images are flagged."))


# -- figures ----------------------------------------------------------------------------------------------------------
def histogram_figure(s_in, s_out, in_name: str, out_name: str, threshold: float) -> go.Figure:
    """The two sets' score distributions on shared bins, each as a share of its set, and the threshold."""
    both = np.r_[s_in, s_out]
    size = max(float(both.max() - both.min()) / 40, 1e-6)
    bins = dict(start=float(both.min()), end=float(both.max()) + size, size=size)
    fig = go.Figure()
    for values, name, color in ((s_in, in_name, "#4f46e5"), (s_out, out_name, "#f59e0b")):
        fig.add_trace(go.Histogram(x=values, name=name, xbins=bins, histnorm="percent", opacity=0.6,
                                   marker_color=color, hovertemplate="%{x} nats: %{y:.1f}% of the set<extra></extra>"))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#111827", annotation_text="threshold",
                  annotation_position="top")
    fig.update_layout(barmode="overlay", height=380, margin=dict(l=10, r=10, t=60, b=10),
                      xaxis_title="anomaly score (nats)", yaxis_title="share of the set (%)",
                      legend=dict(orientation="h", yanchor="bottom", y=1.1, x=0))  # above the threshold's label
    return fig


def roc_figure(s_in, s_out, tpr: float, fpr: float, auc: float) -> go.Figure:
    """The ROC curve with the chance diagonal and the current threshold's point."""
    fprs, tprs, _ = roc_curve(s_in, s_out)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance (AUROC 0.5)",
                             line=dict(color="rgba(60,60,60,0.5)", dash="dot")))
    fig.add_trace(go.Scatter(x=fprs, y=tprs, mode="lines", name=f"ROC curve (AUROC {auc:.3f})",
                             line=dict(color="#4f46e5", width=2.5),
                             hovertemplate="false alarms %{x:.0%}, caught %{y:.0%}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[fpr], y=[tpr], mode="markers", name="your threshold",
                             marker=dict(size=14, color="#f59e0b", line=dict(color="#111827", width=1.5)),
                             hovertemplate="false alarms %{x:.0%}, caught %{y:.0%}<extra></extra>"))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="false positive rate",
                      yaxis_title="true positive rate", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    fig.update_xaxes(range=[-0.02, 1.02], tickformat=".0%")
    fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%")
    return fig


def thumbnails(images: torch.Tensor) -> list[np.ndarray]:
    """Each image as its own crisp picture about THUMB_PX a side (nearest-neighbour upscaling)."""
    from vae_core.latent import image_grid

    scale = scale_for(images, THUMB_PX)
    # A white margin after upscaling, so neighbouring images do not run into each other.
    return [np.pad(image_grid(img[None], nrow=1, scale=scale), ((0, 0), (3, 3), (0, 0)), constant_values=255)
            for img in images]


def show_extremes(title: str, x: torch.Tensor, scores: np.ndarray) -> None:
    most, least = extremes(scores, SHOWN)
    st.markdown(f"**{title}**")
    for label, idx in (("Most anomalous (highest scores)", most), ("Least anomalous (lowest scores)", least)):
        st.caption(label)
        st.image(thumbnails(x[torch.from_numpy(idx.copy())]), caption=[f"{scores[i]:.1f} nats" for i in idx],
                 width="content")


# -- the page ---------------------------------------------------------------------------------------------------------
def results(entry, model, data, choice: str, score: str, in_set, out_set) -> None:
    (in_x, in_y), (set_key, out_x) = in_set, out_set
    with st.spinner(f"Scoring {len(in_x) + len(out_x):,} images with the model…"):
        s_in = scores_of(entry.sha256, "test", score, model, in_x, in_y)
        s_out = scores_of(entry.sha256, set_key, score, model, out_x, None)
    in_name, out_name = noun(data), out_noun(choice, data, model)  # as they are, for the figures
    in_md, out_md = plain(in_name, 80), plain(out_name, 80)  # in Markdown (a data set's name is a file name)
    threshold = threshold_slider(f"an_t_{entry.sha256[:12]}_{set_key}_{score}", s_in, s_out)
    tpr, fpr = rates_at_threshold(s_in, s_out, threshold)
    auc = auroc(s_in, s_out)
    with st.container(key="an_rates"):
        st.markdown(f"At a threshold of **{threshold:g} nats** the model flags **{tpr:.0%} of the {out_md}** "
                    f"(anomalies caught) and **{fpr:.0%} of the {in_md}** (false alarms).")
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown(f"**Scores of {len(in_x):,} {in_md} and {len(out_x):,} {out_md}**")
        st.plotly_chart(histogram_figure(s_in, s_out, in_name, out_name, threshold), width="stretch",
                        config=CHART_CONFIG, key="an_hist")
    with right:
        st.metric("AUROC", f"{auc:.3f}", border=True,
                  help="Area under the ROC curve: the chance that a random anomalous image scores higher than a "
                       "random normal one. 0.5 is guessing, 1 is a perfect separation, below 0.5 is upside down.")
        st.plotly_chart(roc_figure(s_in, s_out, tpr, fpr, auc), width="stretch", config=CHART_CONFIG, key="an_roc")
    st.caption(f"**ROC curve**: every threshold at once, from flagging everything (top right) to nothing (bottom "
               f"left). The true positive rate is the share of the {out_md} flagged, the false positive rate the "
               f"share of the {in_md} flagged. AUROC {auc:.3f}: pick one of the {out_md} and one of the "
               f"{in_md} at random, and the first scores higher {auc:.0%} of the time.")
    if auc < 0.5:
        st.warning(f"The model finds the {out_md} *less* surprising than its own {in_md}. Likelihood scores can "
                   "rank simple images as more likely than the training data (Nalisnick et al. 2019): always check "
                   "the AUROC, not the idea.", icon=":material/warning:")
    write_url(t=f"{threshold:g}")
    st.subheader("The most and least anomalous images")
    c1, c2 = st.columns(2, gap="large")
    with c1:
        show_extremes(f"The model's own {in_md}", in_x, s_in)
    with c2:
        show_extremes(f"The {out_md}", out_x, s_out)


def main() -> None:
    entry, model = current_model()
    data = model_data(entry)
    choices = set_choices(data, model) if data is not None else {}
    if data is not None:
        init_from_url(choices)  # before the header: a bad link's notice shows at the top
    page_header(
        "Anomaly detection",
        "A model trained on one kind of image finds other kinds **surprising**: it rebuilds them badly and needs "
        "unusual codes for them. That surprise, measured in nats, is an **anomaly score**. Below, the model's own "
        "test images are compared with a set that should look odd to it. Pick a **threshold**: images above it "
        "are flagged. A good score flags most odd images and few normal ones.",
    )
    data = require_data(entry)
    choice, score = controls(data, model, choices)
    write_url(vs=choice, score=score)
    in_set = (data.test.x[:MAX_IMAGES], data.test.y[:MAX_IMAGES])
    with friendly_errors("Scoring the images"):
        out_set = the_other_set(choice, data, model, in_set[0])
        if out_set is not None:
            results(entry, model, data, choice, score, in_set, out_set)


if __name__ == "__main__":
    main()
