"""The model library: every model you can use, as a card with its numbers and a few samples; download one,
upload one (checked safely), or delete your own."""
from __future__ import annotations

import streamlit as st
import torch

from pages import _ui as ui
from vae_core.checkpoint import MAX_CHECKPOINT_BYTES
from vae_core.errors import CheckpointError
from vae_core.latent import sample_prior
from vae_core.library import SOURCE_LABELS

ui.page_header(
    "Model library",
    "Every model you can use: the **bundled** ones that ship with Latent Lab, the ones **you trained** in this "
    "session and the ones you **uploaded**. Each card shows what the model was trained on and how well it does "
    "(the test ELBO: higher is better). Models you train or upload are visible only to you.",
)


@st.cache_data(show_spinner=False, max_entries=256)
def card_samples(model_key: str, sha: str) -> torch.Tensor:
    """Eight images decoded from random codes, cached per model file."""
    _, model = ui.available_models()[model_key]
    y = torch.arange(8) % model.config.num_classes if model.config.is_conditional else None
    return sample_prior(model, 8, seed=0, y=y)[1]


def upload_box() -> None:
    upload = st.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key="checkpoint_upload",
                              help="A model saved by Latent Lab. Files are checked before use; a file that "
                                   "would run code when loaded is refused.")
    if upload is None:
        return
    if upload.size > MAX_CHECKPOINT_BYTES:
        st.error(f"{upload.name} is too large for a Latent Lab checkpoint "
                 f"(at most {MAX_CHECKPOINT_BYTES // 2**20} MB).")
        return
    try:
        entry, is_new = ui.add_upload(upload.getvalue(), upload.name)
    except CheckpointError as exc:
        st.error(f"**{upload.name} was refused.** {exc}", icon=":material/gpp_bad:")
        return
    if is_new:
        st.rerun()  # redraw the sidebar so the picker lists it
    st.success(f"Loaded **{entry.title}** ({entry.config.label}). It is now in the model picker.",
               icon=":material/check_circle:")


def card(entry, model) -> None:
    with st.container(border=True):
        top = st.columns([3, 2])
        with top[0]:
            st.markdown(f"**{entry.title}**  \n:gray[{SOURCE_LABELS[entry.source]} · trained on {entry.dataset}]")
            st.caption(entry.about or entry.config.label)
            metrics = entry.card
            elbo = metrics.get("test_elbo")
            st.markdown(
                f"{entry.config.label} · test ELBO **{elbo:.2f}** nats · KL {metrics.get('test_kl', 0):.2f} · "
                f"active units {metrics.get('active_units', 'n/a')}" if elbo is not None else entry.config.label)
            if "mig" in metrics:
                st.markdown(f"MIG **{metrics['mig']:.3f}** · DCI disentanglement {metrics['dci_disentanglement']:.3f}")
        with top[1]:
            ui.show_images(card_samples(entry.key, entry.sha256), nrow=8, tile_px=36)
        actions = st.columns([1, 1, 1, 3])
        if actions[0].button("Use", key=f"use-{entry.key}", help="Select this model in the sidebar."):
            ui.select_model(entry.key)
            st.rerun()
        actions[1].download_button("Download", data=lambda e=entry: download_bytes(e), file_name=f"{entry.key.split('/')[-1]}.pt",
                                   mime="application/octet-stream", key=f"dl-{entry.key}",
                                   help="The checkpoint file, to keep or to load elsewhere.", on_click="ignore")
        if entry.source in ("mine", "upload") and actions[2].button("Delete", key=f"del-{entry.key}",
                                                                     help="Remove this model of yours."):
            delete(entry)
            st.rerun()


def download_bytes(entry) -> bytes:
    if entry.path is not None:
        return entry.path.read_bytes()
    return st.session_state.get("upload_bytes", {}).get(entry.key, b"")


def delete(entry) -> None:
    if entry.source == "mine" and entry.path is not None and entry.path.parent == ui.user_dir():
        entry.path.unlink(missing_ok=True)
    elif entry.source == "upload":
        st.session_state.get("uploads", {}).pop(entry.key, None)
        st.session_state.get("upload_bytes", {}).pop(entry.key, None)
    if st.session_state.get("model_key") == entry.key:
        ui.select_model(ui.DEFAULT_MODEL)
    st.toast(f"Deleted {entry.title}")


upload_box()
models = ui.available_models()
for source in ("zoo", "mine", "upload"):
    group = [(e, m) for e, m in models.values() if e.source == source]
    if group:
        st.subheader({"zoo": "Bundled models", "mine": "Trained by you", "upload": "Uploaded by you"}[source])
        for entry, model in group:
            card(entry, model)
