"""AE, VAE, β-VAE and WAE: two to four models trained on the same images, side by side (two to a row). Their latent
maps on shared axes with the prior's circles, random samples from the same prior draws (and numbers that rank the
models and say whose samples are worse), the same interpolation through each, and every model of that data set on
the rate-distortion plane, with the test numbers each model has (a WAE or an AE has no KL and no ELBO; the page
says why). On MNIST the samples are judged by the digit classifier shipped with the zoo (share recognised, FID); on
other data by distances in pixel space.

Run by st.navigation (as __main__); importing the module (the tests do) defines the functions and runs nothing.
The numbers come from vae_core.compare; this file only draws them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from ui import figures
from ui.catalogue import available_models
from ui.datasets import model_data, require_data
from ui.images import scale_for, show_images
from ui.latent_space import encode_split, latent_view
from ui.page import friendly_errors, page_header, pop_notice, queue_notice
from ui.state import page_state, set_url
from ui.text import WAE_NO_ELBO, plain
from vae_core import judge
from vae_core.compare import (JUDGE_REAL, JUDGE_SAMPLES, SAME_FID_RELATIVE, SAME_RELATIVE, SAME_SHARE,
                              compare_quality, interpolation_images, iso_elbo_levels, judge_applies, judged_quality,
                              prior_samples, rank_models, rate_distortion_points, real_digits, real_features,
                              real_reference, sample_quality, shared_extent)
from vae_core.errors import CheckpointError
from vae_core.latent import image_grid, view_extent

# Each set: the same network, seed and budget; only the loss differs. The first whose data set is here opens, with
# as many models as the set has (the 8x8 digits have no WAE twin: three).
DEFAULT_SET = ("zoo/mnist-ae-2d", "zoo/mnist-vae-2d", "zoo/mnist-betavae-2d", "zoo/mnist-wae-2d")
FALLBACK_SETS = (("zoo/digits-ae-2d", "zoo/digits-vae-2d", "zoo/digits-betavae-2d"),)
SLOTS = ("Top left", "Top right", "Bottom left", "Bottom right")  # where each model shows: two to a row
COUNTS = (2, 3, 4)  # how many models the page compares
PER_ROW = 2  # maps and sample grids two to a row: four in a row would be too narrow to read
N_SAMPLES = 512  # prior draws the numbers are measured on: enough that another seed moves them little
N_SHOWN, SHOWN_COLUMNS = 20, 5
SEED = 0
STEPS = 8
TILE_PX = 72  # the interpolation's images
SAMPLE_TILE_PX = 84  # the prior samples: five across fill half the page
INTRO = (
    "Models that learnt from the **same images**, side by side. By default: a plain **autoencoder (AE)**, a "
    "**VAE**, a **β-VAE** (a VAE whose KL term counts β times over) and a **Wasserstein autoencoder (WAE)**, "
    "which keeps one exact code per image like the AE but pulls the cloud of all codes towards the prior. All have "
    "the same network and the same random start: only the loss differs, and it shows in the maps, the samples and "
    "the numbers."
)


# -- which models -----------------------------------------------------------------------------------------------------
def data_group(entry, model) -> str:
    """The data set a model learnt from, as offered in the data set choice (name and image size)."""
    c, h, w = model.config.input_shape
    return f"{entry.dataset} ({h}×{w}{'' if c == 1 else ', colour'})"


def groups(models: dict) -> dict[str, list[str]]:
    """Model keys by data set, in the picker's order."""
    out: dict[str, list[str]] = {}
    for key, (entry, model) in models.items():
        out.setdefault(data_group(entry, model), []).append(key)
    return out


def short_names(keys: list[str], models: dict) -> list[str]:
    """AE, VAE, β-VAE, CVAE, WAE, β-TCVAE; β-VAE (β = 2) when two β-VAEs differ by β; a model's title where two
    still match."""
    configs = [models[k][0].config for k in keys]
    betas = {c.beta for c in configs if c.kind == "vae" and c.beta != 1}

    def family(config):
        if config.kind == "vae" and config.beta != 1:
            return "β-VAE" if len(betas) == 1 else f"β-VAE (β = {config.beta:g})"
        return {"ae": "AE", "vae": "VAE", "cvae": "CVAE", "wae": "WAE", "tcvae": "β-TCVAE"}[config.kind]

    names = [family(c) for c in configs]
    return [models[k][0].title if names.count(n) > 1 else n for k, n in zip(keys, names)]


@dataclass
class CompareState:
    """The page's own state: the `models` value of the address it last followed (read from a link, or written)."""

    models_in_url: str | None = None


def init_from_url(by_group: dict[str, list[str]]) -> None:
    """The data set and its two to four models from a link (?models=a,b,c,d): on the first visit, and whenever the
    address names other models than the page last showed (a lesson's step opens the page with its own set)."""
    state = page_state(CompareState)
    raw = st.query_params.get("models")
    if raw is None and state.models_in_url is not None:
        return
    if raw == state.models_in_url and "cmp_data" in st.session_state:
        # Followed already, and its choices still stand. (Streamlit drops a widget's state after a run that did not
        # draw it, e.g. when a lesson's next step switches to this page: then the link is followed again.)
        return
    state.models_in_url = raw
    wanted = raw.split(",") if raw else []
    for group, keys in by_group.items():
        if len(wanted) in COUNTS and all(k in keys for k in wanted):
            st.session_state.cmp_data = group
            st.session_state[f"cmp_count_{group}"] = len(wanted)
            for slot, key in enumerate(wanted):
                st.session_state[f"cmp_model_{slot}_{group}"] = key
            return
    if raw:
        queue_notice("The link's models could not all be found here, so the default ones are shown.")


def default_set(keys: list[str]) -> tuple[str, ...] | None:
    """The default set among these models (one data set's), or None."""
    return next((chosen for chosen in (DEFAULT_SET, *FALLBACK_SETS) if chosen[0] in keys), None)


def default_group(by_group: dict[str, list[str]]) -> str:
    for chosen in (DEFAULT_SET, *FALLBACK_SETS):
        for group, keys in by_group.items():
            if chosen[0] in keys:
                return group
    return next(iter(by_group))


def slot_defaults(keys: list[str]) -> list[str]:
    """The model each slot starts with: the data set's default set first, then its other models in the picker's
    order (repeating only when the data set has fewer models than slots)."""
    preferred = [k for k in (default_set(keys) or ()) if k in keys]
    ordered = preferred + [k for k in keys if k not in preferred]
    return [ordered[slot % len(ordered)] for slot in range(len(SLOTS))]


def default_count(keys: list[str]) -> int:
    """As many models as the data set's default set has (within COUNTS), else as many as fit."""
    wanted = len(default_set(keys) or ()) or len(keys)
    return min(max(wanted, COUNTS[0]), COUNTS[-1])


def choose_models(models: dict) -> list[str]:
    """The data set choice, how many models, and one model choice per slot (models of that data set only); returns
    the chosen keys, in slot order."""
    by_group = groups(models)
    init_from_url(by_group)
    if st.session_state.get("cmp_data") not in by_group:
        st.session_state.cmp_data = default_group(by_group)
    c1, c2 = st.columns([3, 1])
    group = c1.selectbox("Data set", list(by_group), key="cmp_data",
                         help="The models must have learnt from the same images: only then can their maps, "
                              "samples and numbers be compared.")
    keys = by_group[group]
    count_key = f"cmp_count_{group}"
    if st.session_state.get(count_key) not in COUNTS:
        st.session_state[count_key] = default_count(keys)
    count = c2.radio("Models", COUNTS, key=count_key, horizontal=True, help="How many models to compare.")
    defaults = slot_defaults(keys)
    chosen = []
    for slot, column in zip(range(count), st.columns(count)):
        state = f"cmp_model_{slot}_{group}"
        if st.session_state.get(state) not in keys:
            st.session_state[state] = defaults[slot]
        chosen.append(column.selectbox(
            f"{SLOTS[slot]} model", keys, key=state, format_func=lambda k: models[k][0].label,
            help=f"Any model trained on {plain(group, 80)}: bundled, trained by you or uploaded."))
    note = "This page uses these models, not the one in the sidebar."
    if len(set(chosen)) < count:
        note += " The same model is picked more than once: its maps and samples are identical."
    st.caption(note)
    page_state(CompareState).models_in_url = ",".join(chosen)
    set_url(models=",".join(chosen))
    return chosen


# -- cached work (keyed by the models' sha256) -------------------------------------------------------------------------
def judge_stamp() -> int | None:
    """The shipped classifier file's version (its mtime), the key of everything it computed; None when missing."""
    try:
        return judge.JUDGE_PATH.stat().st_mtime_ns
    except OSError:
        return None


@st.cache_resource(show_spinner=False, max_entries=2)
def sample_judge(stamp: int | None) -> tuple[judge.DigitClassifier | None, str | None]:
    """(the shipped digit classifier, None), loaded once per file version, or (None, why not)."""
    try:
        return judge.load_judge(), None
    except CheckpointError as exc:
        return None, str(exc)


def judged(data) -> bool:
    """Whether this data's samples are judged by the classifier (MNIST digits, and the classifier is here)."""
    return judge_applies(data) and sample_judge(judge_stamp())[0] is not None


@st.cache_resource(show_spinner="Reading real digits with the classifier…", max_entries=4)
def real_digit_features(data_key: str, stamp: int, _data) -> torch.Tensor:
    """The classifier's features of JUDGE_REAL test digits (real_digits): every model is judged against them."""
    return real_features(sample_judge(stamp)[0], real_digits(_data.test.x, JUDGE_REAL))


@st.cache_data(show_spinner="Drawing and measuring prior samples…", max_entries=64)
def samples_and_quality(sha: str, data_key: str, stamp: int | None, _model, _data) -> tuple[torch.Tensor, dict]:
    """The first N_SHOWN prior samples, and the quality numbers of all the samples drawn: JUDGE_SAMPLES judged by
    the shipped classifier where it applies (stamp: its version), else N_SAMPLES measured in pixel space."""
    classifier = sample_judge(stamp)[0] if stamp is not None and judge_applies(_data) else None
    if classifier is not None:
        _, images = prior_samples(_model, JUDGE_SAMPLES, SEED)
        quality = judged_quality(_model, classifier, seed=SEED, images=images,
                                 real_feats=real_digit_features(data_key, stamp, _data))
    else:
        _, images = prior_samples(_model, N_SAMPLES, SEED)
        quality = sample_quality(_model, _data.train.x, N_SAMPLES, SEED, train_y=_data.train.y, test_x=_data.test.x)
        quality.pop("nearest_train_each")  # not shown: keep the cache small
    return images[:N_SHOWN], quality


@st.cache_data(show_spinner=False, max_entries=8)
def real_quality(data_key: str, stamp: int, _data) -> dict | None:
    """The classifier's numbers for real test digits measured like the samples: the scale to read them on."""
    return real_reference(sample_judge(stamp)[0], _data.train.x, n=JUDGE_REAL,
                          real_feats=real_digit_features(data_key, stamp, _data))


@st.cache_data(show_spinner=False, max_entries=256)
def interpolation(sha: str, data_key: str, start: int, end: int, _model, _data) -> torch.Tensor:
    test = _data.test
    y0, y1 = (int(test.y[start]), int(test.y[end])) if _model.config.is_conditional else (None, None)
    return interpolation_images(_model, test.x[start], test.x[end], y0, y1, steps=STEPS)


def data_key(data) -> str:
    return data.spec.get("fingerprint") or data.name


def grid_cells(count: int) -> list:
    """One cell per model, in slot order, PER_ROW to a row (SLOTS names them): each map and sample grid gets half
    the page's width, where four side by side would be too small to read."""
    cells = []
    for _ in range(0, count, PER_ROW):
        cells.extend(st.columns(PER_ROW, gap="medium"))
    return cells[:count]


# -- latent maps ------------------------------------------------------------------------------------------------------
def map_of(entry, model, data) -> dict:
    """A model's test-set codes in its 2-D view: points (N, 2), labels, axis titles, the prior's place, the extent."""
    enc = encode_split(entry.sha256, "test", model, data)
    method = "identity" if model.config.latent_dim <= 2 else "pca"
    view = latent_view(entry.sha256, method, enc["mu"])
    mu = torch.from_numpy(enc["mu"])
    center, scale = view.prior_center_and_scale()
    return {"points": view.transform(mu).numpy(), "y": enc["y"], "axes": view.axis_labels, "method": method,
            "center": tuple(center.tolist()), "scale": tuple(scale.tolist()), "extent": view_extent(view, mu)}


def map_figure(m: dict, label_names, extent, title: str) -> go.Figure:
    fig = figures.latent_scatter(m["points"], m["y"], label_names, m["axes"], height=470, title=title,
                                 marker_size=4, opacity=0.7)
    figures.prior_contours(fig, m["center"], m["scale"])
    # The ranges stay as given (the plot area shrinks instead), so the maps really share their axes.
    fig.update_xaxes(range=[extent[0], extent[1]], constrain="domain")
    fig.update_yaxes(range=[extent[2], extent[3]], constrain="domain")
    fig.update_layout(legend=dict(orientation="h", y=-0.18, yanchor="top", font=dict(size=10)))
    return fig


def show_maps(picks, names, data) -> None:
    st.subheader("Where each model puts the test images")
    maps = [map_of(entry, model, data) for entry, model in picks]
    extent = shared_extent([m["extent"] for m in maps], square=True)
    for slot, (m, name, column) in enumerate(zip(maps, names, grid_cells(len(maps)))):
        column.plotly_chart(map_figure(m, data.label_names, extent, name), width="stretch", key=f"cmp_map_{slot}",
                            config={"displayModeBar": False})
    note = ("Each dot is a test image's code (its μ), coloured by its class. The dashed circles are the prior "
            "N(0, I) at 1, 2 and 3σ: where random codes are drawn from. **All the maps share the same axes.**")
    if any(m["method"] == "pca" for m in maps):
        note += (" A model with more than 2 latent dimensions is shown in its own PCA view (the flat slice "
                 "through its codes with the most spread), so its axes are not the same directions as the others'.")
    st.caption(note)


# -- prior samples and their numbers ----------------------------------------------------------------------------------
def show_samples(picks, names, data) -> list[dict]:
    st.subheader("Random samples from the prior")
    same_size = len({model.config.latent_dim for _, model in picks}) == 1
    codes = "the same random codes" if same_size else "random codes (of its own latent size)"
    stamp = judge_stamp() if judged(data) else None
    qualities, shown = [], []
    for entry, model in picks:
        images, quality = samples_and_quality(entry.sha256, data_key(data), stamp, model, data)
        shown.append(images)
        qualities.append(quality)
    st.markdown(f"Each model decodes {codes}, drawn from the prior N(0, I) with seed {SEED}. Here are {N_SHOWN} of "
                f"the {qualities[0]['n']:,} samples the numbers below are measured on.")
    for images, name, column in zip(shown, names, grid_cells(len(shown))):
        with column:
            st.markdown(f"**{plain(name, 80)}**")
            show_images(images, nrow=SHOWN_COLUMNS, tile_px=SAMPLE_TILE_PX)
    return qualities


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def _top(q, label_names) -> str:
    return "n/a" if q["top_class"] is None else f"“{label_names[q['top_class']]}” ({_percent(q['top_share'])})"


def _percent_or_none(v):
    return None if v is None else 100 * v


def quality_table(names, qualities, label_names, real: dict | None = None) -> pd.DataFrame:
    """The numbers per model: the classifier's (judged qualities) or the pixel ones; `real`: a row of real test
    digits measured the same way, for scale (judged only)."""
    if qualities and qualities[0].get("fid") is not None:
        rows = list(zip(names, qualities)) + ([(REAL_ROW, real)] if real else [])
        return pd.DataFrame({
            "model": [n for n, _ in rows],
            "recognised as a digit (%)": [100 * q["recognised"] for _, q in rows],
            "FID": [q["fid"] for _, q in rows],
            "most drawn digit": [_top(q, label_names) for _, q in rows],
        })
    return pd.DataFrame({
        "model": names,
        "to the nearest training image": [q["nearest_train"] for q in qualities],
        "from a test image to the nearest sample": [q["coverage"] for q in qualities],
        "mix off by (%)": [_percent_or_none(q["class_mix_gap"]) for q in qualities],
        "most drawn class": [_top(q, label_names) for q in qualities],
    })


REAL_ROW = "real digits (for scale)"
# One sentence per measure, for a newcomer (the table's column help and the text above it).
JUDGE_HELP = {
    "recognised as a digit (%)": "The share of samples that a digit classifier, trained on real handwriting, calls "
                                 "one digit with at least 90% confidence; a smudge no digit claims does not count. "
                                 "Higher is better.",
    "FID": "How far the samples as a whole are from real test digits, as the classifier sees them (the Fréchet "
           "distance between its features of both): it grows when samples look unreal and when they lack variety. "
           "Lower is better.",
    "most drawn digit": "The digit the classifier sees most often among the samples, and its share (real digits: "
                        "about 10% each).",
}
TABLE_HELP = {
    "to the nearest training image": "Mean pixel distance from a sample to the most similar training image: is "
                                     "each sample, on its own, like a real image? Lower is better.",
    "from a test image to the nearest sample": "Mean pixel distance from a real test image to the most similar "
                                               "sample: do the samples cover all kinds of real images? Lower is "
                                               "better.",
    "mix off by (%)": "Give each sample the class of its nearest training image. This is the share of samples that "
                      "would have to change class for their mix to match the training images' mix. Lower is better.",
    "most drawn class": "The class most samples look like, and its share (a fair mix of 10 classes is about 10% each).",
}


# One measure on which `worse`'s samples lose, in plain words with both numbers (w: worse's, b: better's; wp, bp: the
# same as percentages).
WORSE_PHRASES = {
    "recognised": "the digit classifier recognises {wp} of the {worse}'s samples as a digit, against {bp} of the "
                  "{better}'s",
    "fid": "the {worse}'s samples are further from real digits: FID {w:.1f} against {b:.1f} for the {better}'s "
           "(lower is better)",
    "class_mix_gap": "{wp} of the {worse}'s samples would have to change class to match the real mix, against {bp} "
                     "of the {better}'s",
    "coverage": "a real test image lies on average {w:.2f} from the nearest {worse} sample, {b:.2f} from the nearest "
                "{better} one",
    "nearest": "the {worse}'s samples lie on average {w:.2f} from the nearest training image, the {better}'s {b:.2f}",
}


def _worse_phrase(key: str, worse: str, better: str, w: float, b: float) -> str:
    """One measure on which `worse`'s samples lose, in plain words with both numbers."""
    template = WORSE_PHRASES.get(key, WORSE_PHRASES["nearest"])
    return template.format(worse=worse, better=better, w=w, b=b, wp=_percent(w), bp=_percent(b))


SAME_WHAT = {"class_mix_gap": "the class mix", "coverage": "how well they cover the test images",
             "nearest_train": "how close each sample is to a training image",
             "recognised": "the share recognised as a digit", "fid": "the FID"}
ORDER = ("recognised", "fid", "class_mix_gap", "coverage", "nearest_train")  # the verdict's order of measures


def _fmt(key: str):
    if key in ("class_mix_gap", "recognised"):
        return _percent
    return (lambda x: f"{x:.1f}") if key == "fid" else (lambda x: f"{x:.2f}")


def pair_sentence(name_a: str, name_b: str, qa: dict, qb: dict, label_names) -> str:
    """One bullet: whose samples are worse, a's or b's, in words and numbers (or that it depends on the measure).
    The verdict follows the numbers: the side that loses on every measure that differs is called worse."""
    verdict = compare_quality(qa, qb)
    m = verdict["measures"]
    names = {"a": name_a, "b": name_b}
    other = {"a": "b", "b": "a"}
    worse_sides = {v["worse"] for v in m.values() if v["worse"] in ("a", "b")}
    if not worse_sides:
        head = f"**{name_a} vs {name_b}: about the same** by these numbers."
    elif len(worse_sides) == 1:
        w = next(iter(worse_sides))
        head = f"**The {names[w]}'s samples are worse than the {names[other[w]]}'s:**"
    else:
        head = f"**{name_a} vs {name_b}: it depends on what you ask:**"
    losses, same = [], []
    for key in (k for k in ORDER if k in m):
        v = m[key]
        if v["worse"] in ("a", "b"):
            w = v["worse"]
            losses.append(_worse_phrase(key, names[w], names[other[w]], v[w], v[other[w]]))
        elif v["worse"] == "same":
            fmt = _fmt(key)
            same.append(f"{SAME_WHAT[key]} ({name_a} {fmt(v['a'])}, {name_b} {fmt(v['b'])})")
    text = f"- {head} " + "; ".join(losses) + ("." if losses else "")
    lopsided = m["fid" if verdict["judged"] else "class_mix_gap"]["worse"]
    if lopsided in ("a", "b"):
        q = qa if lopsided == "a" else qb
        if q["top_share"] is not None and q["top_share"] >= 0.25:
            seen = " to the classifier" if verdict["judged"] else ""
            text += (f" {_percent(q['top_share'])} of the {names[lopsided]}'s samples look like a "
                     f"“{label_names[q['top_class']]}”{seen}.")
    if same:
        text += " About the same: " + "; ".join(same) + "."
    return text


RANK_BY = {"recognised": "the share recognised as a digit", "fid": "the FID", "class_mix_gap": "the class mix",
           "coverage": "how well they cover the test images", "nearest_train": "the distance to a training image"}
RANK_FMT = {"recognised": lambda x: f"{_percent(x)} recognised", "fid": lambda x: f"FID {x:.1f}",
            "class_mix_gap": lambda x: f"mix off by {_percent(x)}", "coverage": lambda x: f"{x:.2f} to a test image",
            "nearest_train": lambda x: f"{x:.2f} to a training image"}


def _chain(names, qualities, order: list[int], ties: list[bool], measures) -> str:
    """'VAE (68% recognised, FID 288.9) › AE (...) ≈ β-VAE (...)': best first, ≈ where two are within the noise."""
    parts = []
    for place, i in enumerate(order):
        numbers = ", ".join(RANK_FMT[m](qualities[i][m]) for m in measures)
        link = "" if place == 0 else (" ≈ " if ties[place - 1] else " › ")
        parts.append(f"{link}{names[i]} ({numbers})")
    return "".join(parts)


def ranking_lines(names, qualities, picks) -> list[str]:
    """The verdict's head for three or more different models: the models from best samples to worst, by every
    measure at once when the measures agree on the order, else one line per measure (vae_core.compare.rank_models:
    the order is the numbers' order). Each model is counted once, however often it is picked."""
    unique = [i for i, (entry, _) in enumerate(picks) if entry.key not in {e.key for e, _ in picks[:i]}]
    if len(unique) < 3:
        return []  # one pair: its sentence says it all
    names, qualities = [names[i] for i in unique], [qualities[i] for i in unique]
    ranking = rank_models(qualities)
    orders, ties = ranking["measures"], ranking["ties"]
    complete = [m for m, order in orders.items() if len(order) == len(qualities)]  # every model has the number
    if ranking["agree"] and complete:
        together = [all(ties[m][place] for m in complete) for place in range(len(qualities) - 1)]  # ≈ on all
        return [f"- **From best samples to worst, by every measure:** "
                f"{_chain(names, qualities, orders[complete[0]], together, complete)}."]
    return [f"- **From best samples to worst, by {RANK_BY[m]}:** {_chain(names, qualities, order, ties[m], [m])}."
            for m, order in orders.items() if order]


def show_quality(picks, names, qualities, data) -> None:
    is_judged = qualities[0].get("fid") is not None
    real = real_quality(data_key(data), judge_stamp(), data) if is_judged else None
    table = quality_table(names, qualities, data.label_names, real)
    if is_judged:
        accuracy = (judge.judge_meta(judge.JUDGE_PATH).get("card") or {}).get("test_accuracy")
        right = f", right on {100 * accuracy:.1f}% of the test digits" if accuracy else ""
        scale = (f" Real handwritten digits ({real['n']:,} from MNIST's training set) measured the same way score "
                 f"{_percent(real['recognised'])} recognised and FID {real['fid']:.1f} (the last row): what a perfect "
                 "generator would reach." if real else "")
        st.markdown(f"**How good are the samples?** A digit classifier trained on real MNIST (shipped with the app"
                    f"{right}; separate from the models it judges) looks at {qualities[0]['n']:,} samples of each "
                    f"model and at {JUDGE_REAL:,} real test digits.\n"
                    f"- **Recognised as a digit**: {JUDGE_HELP['recognised as a digit (%)']}\n"
                    f"- **FID** (Fréchet distance, the usual score for generated images; here on the classifier's view): "
                    f"{JUDGE_HELP['FID']}{scale}")
        help_of, formats = JUDGE_HELP, {"recognised as a digit (%)": "%.0f", "FID": "%.1f"}
    else:
        if judge_applies(data):  # MNIST, but the classifier file is missing or unreadable
            st.caption(f"The digit classifier that judges MNIST samples is not available "
                       f"({sample_judge(judge_stamp())[1]}), so the samples are measured in pixel space.")
        st.markdown("**How good are the samples?** Distances are in pixel units (the straight-line distance between "
                    "two images' pixel values, each pixel from 0 to 1); lower is better everywhere.")
        help_of = TABLE_HELP
        formats = {c: "%.0f" if "%" in c else "%.3f" for c in TABLE_HELP if c != "most drawn class"}
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "model": st.column_config.TextColumn("model"),
        **{c: st.column_config.NumberColumn(c, help=help_of[c], format=f) for c, f in formats.items()},
        **{c: st.column_config.TextColumn(c, help=help_of[c]) for c in help_of if c not in formats},
    })
    safe_labels = [plain(n, 40) for n in data.label_names]  # names and labels may come from users' files
    lines = [pair_sentence(plain(names[i], 80), plain(names[j], 80), qualities[i], qualities[j], safe_labels)
             for i, j in itertools.combinations(range(len(picks)), 2) if picks[i][0].key != picks[j][0].key]
    lines = ranking_lines([plain(n, 80) for n in names], qualities, picks) + lines
    if any(model.config.is_conditional for _, model in picks):
        lines.append("- A **CVAE** is told which class to draw (here each class in turn), so its mix is even by design.")
    with st.container(key="cmp_verdict"):
        st.markdown("\n".join(lines) if lines else "Pick different models to compare their samples.")
    if is_judged:
        st.caption(f"Differences under {100 * SAME_SHARE:.0f} points (recognised) or {100 * SAME_FID_RELATIVE:.0f}% "
                   "(FID) are called *about the same* (≈ in the ranking): another random seed moves the numbers "
                   "that much.")
    else:
        st.caption(f"Differences under {100 * SAME_RELATIVE:.0f}% (or {100 * SAME_SHARE:.0f} points for the mix) are "
                   "called *about the same* (≈ in the ranking): another random seed moves the numbers that much.")


# -- interpolation ----------------------------------------------------------------------------------------------------
def other_class_index(data) -> int:
    """The first test image of another class than test image 0: a default walk that crosses classes."""
    y = data.test.y
    others = (y != y[0]).nonzero()
    return int(others[0, 0]) if len(others) else min(1, len(y) - 1)


@st.fragment
def show_interpolation(picks, names, data) -> None:
    st.subheader("The same walk through each model")
    n_test = len(data.test)  # the inputs' keys name the data set: each has its own range of test images
    c1, c2, c3 = st.columns([1, 1, 3])
    start = c1.number_input("Start: test image", 0, n_test - 1, value=0, step=1, key=f"cmp_start_{data_key(data)}",
                            help="The test image the walk starts from, by number.")
    end = c2.number_input("End: test image", 0, n_test - 1, value=other_class_index(data), step=1,
                          key=f"cmp_end_{data_key(data)}", help="The test image the walk ends at, by number.")
    with c3:
        ends = torch.stack([data.test.x[int(start)], data.test.x[int(end)]])
        show_images(ends, nrow=2, tile_px=TILE_PX,
                       caption=f"start ({plain(data.label_names[int(data.test.y[int(start)])], 40)}) and "
                               f"end ({plain(data.label_names[int(data.test.y[int(end)])], 40)})")
    with friendly_errors("The interpolation"):
        rows = [interpolation(entry.sha256, data_key(data), int(start), int(end), model, data) for entry, model in picks]
        images = torch.cat(rows)  # (models * STEPS, C, H, W), one row per model
        scale = scale_for(images, TILE_PX)
        picture = image_grid(images, nrow=STEPS, scale=scale)
        fig = figures.tile_figure(picture, len(rows), STEPS, (images.shape[-2] * scale, images.shape[-1] * scale),
                                  row_labels=names, col_labels=[f"{t:.2f}" for t in np.linspace(0, 1, STEPS)],
                                  x_title="position along the straight line from start (0) to end (1)",
                                  y_title="model")
        st.plotly_chart(fig, width="content", config={"displayModeBar": False})
    note = ("Each row encodes the two test images, walks in a straight line from one code to the other in "
            f"{STEPS} steps, and decodes every step.")
    if any(model.config.is_conditional for _, model in picks):
        note += " A CVAE is told the start image's class for the first half of the walk and the end's for the rest."
    st.caption(note)


# -- rate and distortion ----------------------------------------------------------------------------------------------
def rd_cards(models: dict, keys: list[str]) -> dict[str, dict]:
    """Each model's card (test numbers), with its config so the kind is known even for models trained here."""
    out = {}
    for key in keys:
        entry, model = models[key]
        out[entry.title] = {**entry.card, "config": model.config.to_dict()}
    return out


NO_KL_COLOURS = ("#e11d48", "#0d9488", "#d97706")  # the reference lines of models without a KL (AE, WAE)


def rd_figure(points: list[dict]) -> go.Figure:
    fig = go.Figure()
    plotted = [p for p in points if p["rate"] is not None]
    top = max([p["rate"] for p in plotted], default=1.0)
    x_max = top * 1.25 + 0.5
    distortions = [p["distortion"] for p in points]
    y_lo, y_hi = min(distortions) - 1.5, max(distortions) + 1.5
    for level in iso_elbo_levels(plotted):  # recon + KL = level: the lines of equal ELBO
        fig.add_trace(go.Scatter(x=[0, x_max], y=[level, level - x_max], mode="lines", showlegend=False,
                                 line=dict(color="rgba(100,100,100,0.45)", dash="dash", width=1), hoverinfo="skip"))
        x_label = min(max(level - y_hi, 0.0), x_max)  # where the line enters the plot at the top or the left
        fig.add_annotation(x=x_label, y=level - x_label, text=f"ELBO −{level:g}", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(size=10, color="#6b7280"))
    lines = [p for p in points if p["rate"] is None]
    for n, p in enumerate(lines):  # the AE and the WAE: no KL, so no point; their reconstruction as a reference line
        fig.add_hline(y=p["distortion"], line=dict(color=NO_KL_COLOURS[n % len(NO_KL_COLOURS)], dash="dot", width=1.5),
                      annotation_text=f"{p['name']}: no KL (reconstruction {p['distortion']:.1f})",
                      annotation_position="top right" if n % 2 == 0 else "bottom right", annotation_font_size=10)
    symbols = ["diamond" if p["kind"] == "cvae" else "circle" for p in plotted]
    fig.add_trace(go.Scatter(
        x=[p["rate"] for p in plotted], y=[p["distortion"] for p in plotted], mode="markers+text",
        text=[p["name"] for p in plotted], textposition="top right", showlegend=False,
        marker=dict(size=11, color="#4f46e5", symbol=symbols),
        customdata=[[p["elbo"]] for p in plotted],
        hovertemplate="%{text}<br>KL %{x:.2f} nats<br>reconstruction %{y:.2f} nats<br>ELBO %{customdata[0]:.2f}"
                      "<extra></extra>"))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="rate: KL, nats per image (how much the code says about the image)",
                                 range=[-0.3, x_max]),
                      yaxis=dict(title="distortion: reconstruction, nats per image", range=[y_lo, y_hi]))
    return fig


def show_rate_distortion(models: dict, group_keys: list[str], group: str) -> None:
    st.subheader("Rate and distortion: the β trade-off")
    points = rate_distortion_points(rd_cards(models, group_keys))
    if not points:
        st.info("None of these models carries its test numbers, so there is nothing to plot.", icon=":material/info:")
        return
    st.plotly_chart(rd_figure(points), width="stretch", config={"displayModeBar": False})
    st.caption(f"Every model trained on {plain(group, 80)}, from its test numbers. Left-right: how many nats the "
               "code carries "
               "(the KL, called the rate); up-down: how badly images are rebuilt (the reconstruction, called the "
               "distortion). Along a dashed line the ELBO is the same; lower-left lines are better ELBOs. Raising β "
               "moves a model up and to the left: a cheaper code, worse reconstructions. A CVAE (diamond) is also "
               "told the label, so its numbers are not quite comparable. A model without a KL (an autoencoder or a "
               "WAE) has no rate: it is a dotted line at its reconstruction.")


NUMBERS_HELP = {
    "reconstruction (nats)": "How badly test images are rebuilt: −log p(x|z) per image, lower is better.",
    "KL (nats)": "The rate: how much the code says about the image. Only models with a posterior q(z|x) have it.",
    "ELBO (nats)": "−(reconstruction + KL), higher is better; a lower bound on the log-likelihood. Not defined "
                   "without a KL.",
    "MMD to the prior": "The WAE's penalty: how far the cloud of all test codes is from N(0, I) (the squared "
                        "maximum mean discrepancy), lower is closer.",
}


def numbers_table(picks, names) -> pd.DataFrame:
    """The picked models' test numbers from their cards, each where it exists: no KL or ELBO for a model without a
    posterior (AE, WAE), an MMD only for a WAE."""
    rows = []
    for (entry, model), name in zip(picks, names):
        card, variational = entry.card or {}, model.config.is_variational
        rows.append({"model": name, "reconstruction (nats)": card.get("test_recon"),
                     "KL (nats)": card.get("test_kl") if variational else None,
                     "ELBO (nats)": card.get("test_elbo") if variational else None,
                     "MMD to the prior": card.get("test_mmd") if model.config.kind == "wae" else None})
    return pd.DataFrame.from_records(rows)


def show_numbers(picks, names) -> None:
    """The table beside the plot: what each picked model has, and why the rest is empty."""
    st.markdown("**The chosen models' test numbers**")
    unique = {entry.key: (entry, model, name) for (entry, model), name in zip(picks, names)}  # each model once
    chosen = [(e, m) for e, m, _ in unique.values()]
    st.dataframe(numbers_table(chosen, [n for _, _, n in unique.values()]), hide_index=True, width="stretch",
                 key="cmp_numbers", column_config={
                     c: st.column_config.NumberColumn(c, help=h, format="%.4f" if "MMD" in c else "%.2f")
                     for c, h in NUMBERS_HELP.items()})
    kinds = {m.config.kind for _, m in chosen}
    why = []
    if "ae" in kinds:
        why.append("An **autoencoder** has no KL and no ELBO: nothing ties its codes to a prior.")
    if "wae" in kinds:
        why.append(WAE_NO_ELBO)
    if why:
        st.caption("An empty cell is a number the model does not have. " + " ".join(why))


# -- what to notice ---------------------------------------------------------------------------------------------------
def show_notice(picks, names, is_judged: bool = False) -> None:
    kinds = [(model.config.kind, model.config.beta) for _, model in picks]
    points = []
    if any(k == "ae" for k, _ in kinds):
        where = ("fewer of them read as a digit and the mix is lopsided (the table's *recognised* and *FID*)"
                 if is_judged else "they come out as a lopsided mix of classes (the table's *mix off by*)")
        points.append("**The AE's map** spreads far beyond the prior's circles, with empty gaps between the "
                      "classes: nothing in its loss keeps codes near N(0, I). Random codes from the prior land in "
                      f"only part of its map, or in the gaps between its classes, so its samples suffer: {where}.")
    if any(k == "vae" and b == 1 for k, b in kinds):
        points.append("**The VAE's map** fills the prior's circles: the KL term pulls every code towards N(0, I), so "
                      "a random code usually lands where the decoder has learnt something.")
    if any(k == "wae" for k, _ in kinds):
        points.append("**The WAE's map** keeps one exact code per image, like the AE's, but its loss pulls the cloud "
                      "of all codes towards N(0, I) (the MMD term), so random codes from the prior land among real "
                      "codes more often than in the AE's map; its decoder never learns from a noisy code. Compare its "
                      "samples' numbers with the AE's and the VAE's above.")
    if any(k == "vae" and b > 1 for k, b in kinds):
        points.append("**The β-VAE's map** hugs the prior even more tightly and its classes overlap more; its samples "
                      "are blurrier. The heavier KL buys a cheaper code with worse "
                      "reconstructions: on the rate-distortion plot it sits up and to the left of the VAE.")
    points.append("**On the rate-distortion plot**, a model with too large a β slides to KL ≈ 0: its code carries "
                  "nothing and every input decodes to the same blur (posterior collapse).")
    st.subheader("What to notice")
    st.markdown("\n".join(f"- {p}" for p in points))


# -- the page ---------------------------------------------------------------------------------------------------------
def main() -> None:
    models = available_models()
    page_header("AE, VAE, β-VAE and WAE", INTRO)
    if not models:
        st.error("No models found: the bundled zoo is missing.", icon=":material/error:")
        return
    keys = choose_models(models)
    pop_notice()
    picks = [models[k] for k in keys]
    names = short_names(keys, models)
    data = next((d for d in (model_data(entry) for entry, _ in picks) if d is not None), None)
    if data is None:
        require_data(picks[0][0])  # stops the page with a note on how to get the data
    qualities = []
    with friendly_errors("Comparing the models"):
        show_maps(picks, names, data)
        qualities = show_samples(picks, names, data)
        show_quality(picks, names, qualities, data)
    show_interpolation(picks, names, data)
    group = data_group(*picks[0])
    with friendly_errors("The rate-distortion plot"):
        show_rate_distortion(models, groups(models)[group], group)
        show_numbers(picks, names)
    show_notice(picks, names, bool(qualities) and qualities[0].get("fid") is not None)


if __name__ == "__main__":
    main()
