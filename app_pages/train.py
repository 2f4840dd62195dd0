"""Train a model live: pick the data and the settings, start, and watch the loss, the latent map and the
reconstructions form while the model learns in the background.

The page opens on real MNIST digits with a 2-D MLP VAE that trains in under a minute here (DATA_DEFAULTS); each data
set has its own first settings. Run by st.navigation (as __main__); importing the module (the tests and the bench
do) defines the functions and the defaults, runs nothing."""
from __future__ import annotations

import hashlib
import math

import streamlit as st
import torch

from ui import figures
from ui.datasets import bundled_data, remember_data_upload, user_data
from ui.images import show_images
from ui.page import friendly_errors, page_header
from ui.text import WAE_NO_ELBO, plain
from ui.job_view import job_status
from ui.training import TrainingRun, current_job, current_run, start_training_job, training_refusal
from vae_core.config import DEFAULT_MMD_WEIGHT, TrainConfig, model_config_for
from vae_core.data import load_data
from vae_core.errors import UserInputError
from vae_core.jobs import TrainingJob
from vae_core.latent import fit_view

DATA_CHOICES = {  # the first one is the page's default
    "mnist": "MNIST: 28×28 handwritten digits (bundled: 70,000)",
    "digits": "Digits: 8×8 handwritten digits (bundled; trains in seconds)",
    "shapes": "Shapes: 32×32 squares, ellipses, hearts (bundled)",
    "fashion-mnist": "Fashion-MNIST: 28×28 clothes (downloads once; needs a network)",
    "npz": "My own .npz file (array x, optional labels y)",
    "zip": "My own images: a .zip with one folder per class",
}
BUNDLED = ("mnist", "digits", "shapes")  # shipped with the app: no network needed
KINDS = {"VAE": ("vae", 1.0), "β-VAE": ("vae", None), "AE": ("ae", 1.0), "CVAE": ("cvae", 1.0),
         "WAE": ("wae", 1.0), "β-TCVAE": ("tcvae", None)}
# One line per kind for a newcomer, shown under the choice.
KIND_NOTES = {
    "VAE": "The variational autoencoder: each image becomes a small cloud of codes, kept near the prior N(0, I) by "
           "the KL term, so random codes decode to new images.",
    "β-VAE": "A VAE whose KL term counts β times: β > 1 gives a smoother, more prior-like code and blurrier images.",
    "AE": "A plain autoencoder: one code per image and no KL term, so nothing keeps the codes near the prior and "
          "it is not a generator.",
    "CVAE": "A VAE that is also told each image's label: the code keeps the style, the label chooses the class.",
    "WAE": "A Wasserstein autoencoder: one code per image like an AE, but a penalty λ × MMD pulls the cloud of all "
           "codes towards the prior, so it is a generator without a KL term.",
    "β-TCVAE": "A VAE whose KL is split into three parts; β weighs only the total correlation, pushing each latent "
               "dimension to hold a separate factor of the images.",
}
BETA_DEFAULTS = {"β-VAE": 2.0, "β-TCVAE": 6.0}
MMD_WEIGHTS = [1.0, 10.0, 30.0, 100.0, 300.0, 1000.0]  # the λ choices; DEFAULT_MMD_WEIGHT is one of them
TCVAE_SHIFT = ("The three parts are estimated from each mini-batch (minibatch-weighted sampling), which shifts each by "
               "a constant of about log N: read how they **change**, not how far they are from zero. β presses the "
               "total correlation down, so the dimensions become independent.")
HIDDEN_PRESETS = {"256, 128": (256, 128), "400 (the classic MNIST VAE)": (400,), "512, 256": (512, 256), "128": (128,)}
POLL_SECONDS = 1.0  # the progress bar and the numbers
CHARTS_SECONDS = 2.0  # the charts: measured, redrawing them every second took CPU from the training on 2 cores
COLLAPSE_NATS = 0.1  # total test KL below this after two epochs: the posterior has collapsed
# The first settings the page offers for a data set (a VAE with a 2-D latent, so the map needs no projection). MNIST:
# 3 epochs over all 60,000 training digits through a 256-128 MLP, batch 128: the job needs ~25 s of one core (test ELBO
# -154 nats), its map sorts the digits from epoch 1 and is redrawn after each. Measured from the page with
# bench/train_page_default.py: 30-35 s from Start to Finished at load 3.3-4.6 (README, "Performance"); 4 epochs took
# 52-66 s at load 4-6 on these 2 cores.
DATA_DEFAULTS = {
    "mnist": {"hidden": "256, 128", "epochs": 3, "batch_size": 128, "lr": 2e-3},
    "digits": {"hidden": "256, 128", "epochs": 30, "batch_size": 64, "lr": 2e-3},
}
OTHER_DEFAULTS = {"hidden": "256, 128", "batch_size": 64, "lr": 2e-3}  # epochs: 30 for a small set, else 10


def defaults_for(data) -> dict:
    """The first settings for this data set: DATA_DEFAULTS, else OTHER_DEFAULTS with epochs by its size."""
    source = (data.spec.get("source") if data is not None else None) or ""
    if source in DATA_DEFAULTS:
        return DATA_DEFAULTS[source]
    return {**OTHER_DEFAULTS, "epochs": 30 if data is not None and len(data.train) < 5000 else 10}


# -- data -------------------------------------------------------------------------------------------------------
# Bundled sets split by another seed than the bundled models' (seed 0 comes from bundled_data): at most 2 entries
# of at most 220 MB (MNIST as float32), dropped after an hour unused; a class trying seeds cannot grow the server.
@st.cache_resource(show_spinner="Loading the data set…", max_entries=2, ttl=3600)
def _builtin_data(source: str, seed: int):
    return load_data(source, seed=seed)


def builtin_data(source: str, seed: int):
    """A bundled data set split by `seed`. Seed 0 is the bundled models' split: the pages' copy of it is shared
    (MNIST as float32 is 220 MB; a second copy per server is memory a class's server does not have)."""
    if seed == 0 and source in BUNDLED:
        data = bundled_data(source)
        if data.spec.get("seed") == 0:
            return data
    return _builtin_data(source, seed)


def uploaded_data(sha: str, kind: str, name: str, seed: int, image_size: int, _data: bytes):
    """The uploaded file's split, from the pages' shared cache of users' files (user_data: bounded, expiring,
    failures cached, so a refused file costs once); DataError with the loader's one-line message if refused."""
    return user_data(_data, sha, kind, name, seed=seed, image_size=image_size)


def choose_data(seed: int, disabled: bool):
    """The data widgets; returns a DataSplit, or None with a message shown."""
    source = st.selectbox("Data", list(DATA_CHOICES), format_func=DATA_CHOICES.get, disabled=disabled,
                          help="The images the model learns from. Digits train in seconds on any laptop.")
    if source in ("npz", "zip"):
        kind_help = ("A NumPy .npz with x shaped (N, H, W) or (N, H, W, C), uint8 0-255 or float 0-1, and "
                     "optionally integer labels y." if source == "npz" else
                     "A .zip holding one sub-folder of images per class, e.g. cats/…png, dogs/…png.")
        upload = st.file_uploader("Your data file", type=[source], disabled=disabled, help=kind_help)
        image_size = 32
        if source == "zip":
            image_size = st.select_slider("Resize images to", [16, 28, 32, 64], value=32, disabled=disabled,
                                          help="Every image is resized to this many pixels a side.")
        if upload is None:
            st.info(kind_help)
            return None
        data = upload.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        split = uploaded_data(sha, source, upload.name, seed, image_size, data)
        # Keep the bytes (the latest file only) so other pages can reload this data for the model trained on it.
        remember_data_upload(sha, data)
        return split
    return builtin_data(source, seed)


def data_copy_note(data) -> str:
    """Which copy of a data set was loaded, where the loader says (MNIST: the bundled one)."""
    copy = data.spec.get("copy")
    return f" · copy used: {copy}" if copy else ""


# -- settings -------------------------------------------------------------------------------------------------------
def choose_settings(data, disabled: bool) -> tuple[dict, dict, str]:
    """Model and training widgets; returns (model settings, train settings, model name)."""
    c1, c2, c3 = st.columns(3)
    kind_label = c1.radio("Model", list(KINDS), horizontal=True, disabled=disabled,
                          help=" ".join(f"{k}: {v}" for k, v in KIND_NOTES.items()))
    c1.caption(KIND_NOTES[kind_label])
    kind, beta = KINDS[kind_label]
    first = defaults_for(data)
    beta = beta if beta is not None else beta_control(c1, kind_label, disabled)
    mmd_weight = mmd_control(c1, disabled) if kind == "wae" else DEFAULT_MMD_WEIGHT
    arch = c2.radio("Network", ["mlp", "conv"], horizontal=True, disabled=disabled,
                    format_func={"mlp": "fully connected (MLP)", "conv": "convolutional"}.get,
                    help="MLP: dense layers, fast on small images. Conv: convolutions, better on larger images.")
    latent_dim = c2.slider("Latent dimensions", 1, 32, 2, disabled=disabled,
                           help="How many numbers describe each image. 2 can be drawn as a map directly.")
    presets = list(HIDDEN_PRESETS)
    hidden = HIDDEN_PRESETS[c2.selectbox("Hidden layers (MLP)", presets, index=presets.index(first["hidden"]),
                                         disabled=disabled or arch != "mlp",
                                         help="Sizes of the encoder's hidden layers; the decoder mirrors them.")]
    epochs = c3.slider("Epochs", 1, 200, first["epochs"], disabled=disabled,
                       help="Passes over the training set.")
    lr = c3.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2], value=first["lr"], disabled=disabled,
                          help="Step size of the optimiser (Adam). Too large and the loss may blow up.")
    batch_size = c3.select_slider("Batch size", [16, 32, 64, 128, 256], value=first["batch_size"], disabled=disabled,
                                  help="Images per optimisation step.")
    with st.expander("More settings"):
        m1, m2, m3 = st.columns(3)
        warmup = m1.slider("KL warm-up (epochs)", 0, 50, 0, disabled=disabled or kind == "ae",
                           help="Raise the KL weight from 0 to β over this many epochs: helps avoid collapse. "
                                "For a WAE it raises the MMD's weight from 0 to λ.")
        likelihood = m2.radio("Likelihood", ["bernoulli", "gaussian"], disabled=disabled,
                              help="How reconstruction error is scored: Bernoulli (binary cross-entropy) suits "
                                   "images in [0, 1]; Gaussian uses squared error with σ = 0.1.")
        seed = m3.number_input("Seed", 0, 2**31 - 1, 0, disabled=disabled, key="train_seed",
                               help="Same seed, data and settings give the same run.")
    default_name = f"{data.name if data else 'data'} {kind_label} z={latent_dim}"
    name = st.text_input("Model name", default_name, max_chars=60, disabled=disabled,
                         help="How the model is listed in the picker.")
    model_settings = dict(kind=kind, arch=arch, latent_dim=latent_dim, hidden=hidden, beta=beta, likelihood=likelihood,
                          mmd_weight=mmd_weight)
    train_settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=int(seed), kl_warmup_epochs=float(warmup))
    return model_settings, train_settings, name


def beta_control(column, kind_label: str, disabled: bool) -> float:
    """β of the β-VAE (on the whole KL) or of the β-TCVAE (on the total correlation only)."""
    if kind_label == "β-TCVAE":
        return column.slider("β (total-correlation weight)", 1.0, 10.0, BETA_DEFAULTS[kind_label], 0.5,
                             disabled=disabled,
                             help="How hard the dimensions are pushed to be independent of each other. β = 1 is the "
                                  "plain VAE; Chen et al. use about 6.")
    return column.slider("β (KL weight)", 0.1, 10.0, BETA_DEFAULTS[kind_label], 0.1, disabled=disabled,
                         help="β > 1 pushes the codes towards the prior: smoother map, blurrier images; "
                              "too large and the code carries nothing (posterior collapse).")


def mmd_control(column, disabled: bool) -> float:
    """λ of the WAE: the weight of the MMD between the codes and the prior."""
    return column.select_slider("λ (MMD weight)", MMD_WEIGHTS, value=DEFAULT_MMD_WEIGHT, disabled=disabled,
                                format_func=lambda v: f"{v:g}",
                                help="How hard the cloud of codes is pulled towards the prior. Measured on MNIST: "
                                     "100 gave the best samples; 10 rebuilds images a little better, 1000 worse.")


def settings_problem(data, model_settings: dict) -> str | None:
    """Why Start would be refused with these settings, shown while they are chosen (so the page cannot start a job
    for a model the app would refuse, issue 15 finding 6): the model's bounds (vae_core/config.py, e.g. 3x256x256
    images through the 512-256 MLP), then the student's quotas (training_refusal). None when Start may go."""
    if data is None:
        return None
    try:
        config = model_config_for(data.input_shape, data.num_classes, **model_settings)
    except UserInputError as exc:
        return f"This model cannot be trained here: {exc}."
    return training_refusal(config)


def start_job(data, model_settings: dict, train_settings: dict, name: str) -> None:
    config = model_config_for(data.input_shape, data.num_classes, **model_settings)
    start_training_job(config, TrainConfig(**train_settings), data, name, started_on="train")


# -- the live view --------------------------------------------------------------------------------------------------
def live_progress(run: TrainingRun) -> None:
    """The light part, polled every POLL_SECONDS: the state, the progress bar and the latest numbers."""
    snap = job_status(run, name_in_text=False, done_note="The model is saved and selected in the sidebar.",
                      kept_note="listed in the sidebar", select_new_model=True, key="train")
    if snap.history or snap.steps:
        metrics_row(snap, run.job.model_config)


def live_charts(job: TrainingJob) -> None:
    """The heavy part, redrawn every CHARTS_SECONDS: the curves, the latent map, the reconstructions, KL per unit.
    Every redraw costs the server a few figures and the browser a few Plotly renders, which on a small machine
    is CPU the training would otherwise have."""
    snap = job.snapshot()
    if not (snap.history or snap.steps):
        return
    left, right = st.columns(2)
    with left:
        st.markdown("**Loss** (lower is better)")
        steps_per_epoch = math.ceil(len(job.data.train) / job.train_config.batch_size)
        st.plotly_chart(figures.loss_curves(snap.steps, snap.history, steps_per_epoch), width="stretch",
                        key="loss_chart")
        objective_terms(job.model_config, snap, steps_per_epoch)
    with right:
        latent_map(job, snap)
    recon_and_kl(job, snap)


# (label, key of the epoch record, help) of the numbers above the charts, by what the model has
ELBO_METRICS = [
    ("Test ELBO", "test_elbo", "Evidence lower bound per test image, in nats: higher is better."),
    ("Reconstruction", "test_recon", "How badly test images are rebuilt: −log p(x|z) in nats, summed over pixels."),
    ("KL", "test_kl", "How far the codes are from the prior N(0, I), in nats: the information the code carries."),
    ("Active units", "active_units", "Latent dimensions whose mean varies across images (variance > 0.01)."),
]
WAE_METRICS = [
    ("Reconstruction", "test_recon", "How badly test images are rebuilt: −log p(x|z) in nats, summed over pixels."),
    ("MMD to the prior", "test_mmd", "Maximum mean discrepancy between the test images' codes and samples of the "
                                     "prior N(0, I): 0 when they match. A squared distance, with no unit."),
    ("Active units", "active_units", "Latent dimensions whose code varies across images (variance > 0.01)."),
]
TC_METRIC = ("Total correlation", "test_tc", "How much the latent dimensions depend on each other, in nats (shifted "
                                             "by a constant, see below): the β-TCVAE presses it down.")


def metric_specs(config) -> list[tuple[str, str, str]]:
    """The numbers the model has: no ELBO or KL for a WAE, the total correlation too for a β-TCVAE."""
    if config.kind == "wae":
        return WAE_METRICS
    return ELBO_METRICS + [TC_METRIC] if config.kind == "tcvae" else ELBO_METRICS


def metric_text(last: dict | None, key: str) -> str:
    if last is None:
        return "…"
    value = last.get(key)
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value}"
    return f"{value:.4f}" if key == "test_mmd" else f"{value:.2f}"


def metrics_row(snap, config) -> None:
    last = snap.history[-1] if snap.history else None
    specs = metric_specs(config)
    for col, (label, key, help_text) in zip(st.columns(len(specs)), specs):
        col.metric(label, metric_text(last, key), help=help_text)
    if config.kind == "wae":
        st.caption(WAE_NO_ELBO)


def objective_terms(config, snap, steps_per_epoch: int) -> None:
    """The objective's own terms over training: the β-TCVAE's three parts of the KL, the WAE's MMD."""
    if config.kind == "tcvae":
        st.markdown("**The KL's three parts** (nats): index-code mutual information, total correlation, "
                    "dimension-wise KL")
        terms = [("mi", "mutual information"), ("tc", "total correlation"), ("dwkl", "dimension-wise KL")]
        fig = figures.term_curves(snap.steps, snap.history, steps_per_epoch, terms, "nats per example (shifted)")
        st.plotly_chart(fig, width="stretch", key="terms_chart")
        st.caption(TCVAE_SHIFT)
    elif config.kind == "wae":
        st.markdown("**MMD between the codes and the prior** (lower: the codes look more like N(0, I))")
        fig = figures.term_curves(snap.steps, snap.history, steps_per_epoch, [("mmd", "MMD")], "MMD² (no unit)")
        st.plotly_chart(fig, width="stretch", key="terms_chart")


def latent_map(job: TrainingJob, snap) -> None:
    if not snap.latent:
        st.caption("The latent map appears after the first epoch.")
        return
    mu = snap.latent["mu"]
    view = fit_view(mu)
    points = view.transform(mu).numpy()
    n, n_test = len(mu), len(job.data.test)
    which = "the test set" if n == n_test else f"{n:,} of the {n_test:,} test images"
    st.markdown(f"**Latent map of {which} after epoch {snap.latent['epoch']}**")
    fig = figures.latent_scatter(points, snap.latent["y"].numpy(), job.data.label_names, view.axis_labels,
                                 indices=snap.latent["index"].numpy(), height=360, marker_size=5 if n <= 1000 else 4,
                                 webgl=False)
    st.plotly_chart(fig, width="stretch", key="live_map")


def recon_and_kl(job: TrainingJob, snap) -> None:
    left, right = st.columns(2)
    with left:
        if snap.recon:
            st.markdown(f"**Inputs (top) and their reconstructions (bottom)**, epoch {snap.recon['epoch']}")
            show_images(torch.cat([snap.recon["x"], snap.recon["x_hat"]]), nrow=len(snap.recon["x"]), tile_px=56)
    with right:
        last = snap.history[-1] if snap.history else None
        if last and job.model_config.is_variational:
            st.markdown("**KL per latent dimension** (nats): the information each dimension carries")
            st.plotly_chart(figures.kl_per_dimension(last["test_kl_per_dim"]), width="stretch", key="kl_chart")
            if last["epoch"] >= 2 and last["test_kl"] < COLLAPSE_NATS:
                st.warning("**Posterior collapse:** the KL has fallen to almost zero, so the codes carry almost no "
                           "information and every input decodes to much the same image. Try a smaller β, a KL "
                           "warm-up, or a smaller decoder.", icon=":material/warning:")


# -- the page -------------------------------------------------------------------------------------------------------
def main() -> None:
    page_header(
        "Train a model",
        "Choose a data set and a model, press **Start**, and watch it learn. The **loss** falls as the model gets "
        "better at rebuilding images (reconstruction) while keeping its codes close to the prior (KL). The **latent "
        "map** shows where each test image lands in the code space, redrawn after every epoch. You can switch pages "
        "while it trains; the finished model appears in the sidebar's model picker.",
    )
    job = current_job()
    busy = job is not None and job.is_active

    data = None
    with friendly_errors("Loading the data"):
        seed_for_split = int(st.session_state.get("train_seed", 0))
        data = choose_data(seed_for_split, busy)
        if data is not None:
            st.caption(f"{plain(data.name, 80)}: {len(data.train):,} training and {len(data.test):,} test "
                       f"images of {'×'.join(map(str, data.input_shape))}, {data.num_classes} classes"
                       f"{data_copy_note(data)}.")
    model_settings, train_settings, name = choose_settings(data, busy)
    problem = None if busy else settings_problem(data, model_settings)
    if problem:
        st.warning(plain(problem, 1000), icon=":material/block:")

    if st.button("Start training", type="primary", icon=":material/play_arrow:",
                 disabled=busy or data is None or problem is not None,
                 help="Train in the background; you can keep using the app."):
        with friendly_errors("Starting training"):
            start_job(data, model_settings, train_settings, name)
            st.rerun()

    run = current_run()
    if run is not None:
        st.divider()
        st.subheader(f"Run: {plain(run.job.name, 80)}")
        active = run.job.is_active
        st.fragment(live_progress, run_every=POLL_SECONDS if active else None)(run)
        st.fragment(live_charts, run_every=CHARTS_SECONDS if active else None)(run.job)


if __name__ == "__main__":
    main()
