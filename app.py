"""Latent Lab: an interactive explorer of variational autoencoders. Entry point of `streamlit run app.py`.

Sets up the page, the shared model picker in the sidebar and the navigation; each page is a file in pages/.
"""
import torch

import vae_core  # noqa: F401  (sets OpenMP's passive waiting before torch starts its threads)
import streamlit as st

from pages import _ui as ui

st.set_page_config(page_title="Latent Lab", page_icon=":material/blur_on:", layout="wide")
# Interactive work (encode, decode a grid) is small: one thread per script run keeps the cores for training jobs.
torch.set_num_threads(1)

PAGES = {
    "Start": [
        st.Page("pages/home.py", title="Welcome", icon=":material/home:", default=True),
    ],
    "Train": [
        st.Page("pages/train.py", title="Train a model", icon=":material/model_training:", url_path="train"),
        st.Page("pages/library.py", title="Model library", icon=":material/inventory_2:", url_path="library"),
    ],
}

navigation = st.navigation(PAGES)
with st.sidebar:
    ui.model_picker()
navigation.run()
