"""Welcome: what Latent Lab is, the model in use, and where to go next."""
import streamlit as st
import torch

from pages import _ui as ui
from vae_core.latent import sample_prior

ui.page_header(
    "Latent Lab",
    "A variational autoencoder (VAE) squeezes each image into a few numbers, its **latent code**, and learns to "
    "rebuild the image from them. Because it is trained to keep those codes close to a simple bell-shaped "
    "distribution, you can also pick new codes at random and **generate** images it never saw. "
    "Pick a model in the sidebar, then train your own or explore what one has learnt.",
)

entry, model = ui.current_model()


@st.cache_data(show_spinner=False, max_entries=64)
def prior_samples(model_key: str, sha: str, n: int = 16) -> torch.Tensor:
    """A few images decoded from random latent codes (cached per model file)."""
    _, m = ui.available_models()[model_key]
    y = torch.arange(n) % m.config.num_classes if m.config.is_conditional else None
    return sample_prior(m, n, seed=0, y=y)[1]


left, right = st.columns([2, 3])
with left:
    st.subheader(entry.title)
    st.write(entry.about or entry.config.label)
    card = entry.card
    cols = st.columns(3)
    cols[0].metric("Test ELBO (nats)", f"{card.get('test_elbo', float('nan')):.1f}",
                   help="Evidence lower bound per test image: higher is better. It is minus (reconstruction + KL).")
    cols[1].metric("Latent size", entry.config.latent_dim, help="How many numbers describe each image.")
    cols[2].metric("Active units", card.get("active_units", "n/a"),
                   help="Latent dimensions the encoder really uses (their mean varies across images).")
with right:
    st.caption("Images the decoder makes from 16 random latent codes (prior samples)")
    ui.show_images(prior_samples(entry.key, entry.sha256), nrow=8)

st.subheader("Where to go")
st.page_link("pages/train.py", label="Train a model and watch it learn", icon=":material/model_training:")
st.page_link("pages/library.py", label="Browse, upload and download models", icon=":material/inventory_2:")
