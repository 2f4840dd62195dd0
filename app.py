"""Latent Lab: an interactive explorer of variational autoencoders. Entry point of `streamlit run app.py`.

Sets up the page, the navigation and the shared model picker in the sidebar; each page is a file in pages/.
"""
import os

# The server's cores are shared (a class's pages decode while trainings run): OpenMP threads that spin while waiting
# then stall every small op on a descheduled thread (measured: 2 threads 10-70x slower than 1). Passive waiting
# removes that cliff. It is read when torch loads OpenMP, so it is set here, before anything imports torch; the
# training workers forked from this server inherit it. A command-line run keeps OpenMP's default (spinning).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

# An emoji favicon is drawn in the page; a :material/…: one would be fetched from fonts.gstatic.com (offline: none).
st.set_page_config(page_title="Latent Lab", page_icon="🌀", layout="wide")

# Declared before the heavy imports below, so the first load shows the real navigation at once.
PAGES = {
    "Start": [
        st.Page("pages/home.py", title="Welcome", icon=":material/home:", default=True),
    ],
    "Learn": [
        st.Page("pages/how_vae_works.py", title="How a VAE works", icon=":material/school:", url_path="how-a-vae-works"),
        st.Page("pages/lessons.py", title="Lessons", icon=":material/cast_for_education:", url_path="lessons"),
    ],
    "Train": [
        st.Page("pages/train.py", title="Train a model", icon=":material/model_training:", url_path="train"),
        st.Page("pages/library.py", title="Model library", icon=":material/inventory_2:", url_path="library"),
    ],
    "Explore": [
        st.Page("pages/latent_map.py", title="Latent map", icon=":material/scatter_plot:", url_path="latent-map"),
        st.Page("pages/interpolate.py", title="Interpolate", icon=":material/linear_scale:", url_path="interpolate"),
        st.Page("pages/decode.py", title="Decode", icon=":material/tune:", url_path="decode"),
        st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", url_path="generate"),
        st.Page("pages/pad.py", title="Latent pad", icon=":material/touch_app:", url_path="pad"),
    ],
    "Compare": [
        st.Page("pages/compare.py", title="AE vs VAE vs β-VAE", icon=":material/compare:", url_path="compare"),
        st.Page("pages/anomaly.py", title="Anomaly detection", icon=":material/troubleshoot:", url_path="anomaly"),
        st.Page("pages/disentanglement.py", title="Disentanglement lab", icon=":material/science:", url_path="disentanglement"),
    ],
}
navigation = st.navigation(PAGES, expanded=True)  # every page in view: a class should not hunt for one

import torch  # noqa: E402

from pages import _lesson_plans as lessons  # noqa: E402
from pages import _ui as ui  # noqa: E402

# Interactive work (encode, decode a grid) is small: one thread per script run keeps the cores for training jobs.
torch.set_num_threads(1)

ui.mark_shell_ran()
ui.forget_old_sessions()
ui.warm_up_training()
with st.sidebar:
    ui.model_picker()
    ui.locker_box()
lessons.lesson_banner()
navigation.run()
