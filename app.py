"""Latent Lab: an interactive explorer of variational autoencoders. Entry point of `streamlit run app.py`."""
import streamlit as st

st.set_page_config(page_title="Latent Lab", page_icon=":material/blur_on:", layout="wide")
st.title("Latent Lab")
st.write("An interactive explorer of variational autoencoders. The pages are coming: "
         "for now, train and inspect models with `python -m vae_core --help`.")
