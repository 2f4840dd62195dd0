"""Latent Lab: an interactive explorer of variational autoencoders. Entry point of `streamlit run app.py`.

Sets up the page, the navigation and the shared model picker in the sidebar; each page is a file in app_pages/, the
shared pieces of the pages are in ui/.
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

# Every page, by section: (file in app_pages/, title, icon, url path). Declared before the heavy imports below, so
# the first load shows the real navigation at once.
PAGE_TABLE = {
    "Start": [("home.py", "Welcome", "home", "")],
    "Learn": [("how_vae_works.py", "How a VAE works", "school", "how-a-vae-works"),
              ("lessons.py", "Lessons", "cast_for_education", "lessons")],
    "Train": [("train.py", "Train a model", "model_training", "train"),
              ("library.py", "Model library", "inventory_2", "library")],
    "Explore": [("latent_map.py", "Latent map", "scatter_plot", "latent-map"),
                ("interpolate.py", "Interpolate", "linear_scale", "interpolate"),
                ("decode.py", "Decode", "tune", "decode"),
                ("generate.py", "Generate", "auto_awesome", "generate"),
                ("pad.py", "Latent pad", "touch_app", "pad")],
    "Compare": [("compare.py", "AE, VAE, β-VAE and WAE", "compare", "compare"),
                ("anomaly.py", "Anomaly detection", "troubleshoot", "anomaly"),
                ("disentanglement.py", "Disentanglement lab", "science", "disentanglement")],
}
PAGES = {section: [st.Page(f"app_pages/{file}", title=title, icon=f":material/{icon}:", url_path=url_path or None,
                           default=not url_path) for file, title, icon, url_path in rows]
         for section, rows in PAGE_TABLE.items()}
navigation = st.navigation(PAGES, expanded=True)  # every page in view: a class should not hunt for one

import torch  # noqa: E402

from ui.catalogue import model_picker  # noqa: E402
from ui.lessons import lesson_banner  # noqa: E402
from ui.students import forget_old_sessions, locker_box  # noqa: E402
from ui.training import warm_up_training  # noqa: E402

# Interactive work (encode, decode a grid) is small: one thread per script run keeps the cores for training jobs.
torch.set_num_threads(1)

forget_old_sessions()
warm_up_training()
with st.sidebar:
    model_picker()
    locker_box()
lesson_banner()
navigation.run()
