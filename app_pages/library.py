"""The model library: every model you can use, as a card with its numbers and a few samples; download one,
upload one (checked safely), or delete your own."""
from __future__ import annotations

import dataclasses
import hashlib
import re

import streamlit as st
import torch

from ui.catalogue import add_onnx_upload, add_upload, available_models, DEFAULT_MODEL, log, refused_files, select_model
from ui.images import show_images
from ui.page import page_header
from ui.students import disk_use, max_models, max_uploads, max_user_bytes, user_dir
from ui.text import plain
from vae_core.checkpoint import MAX_CHECKPOINT_BYTES
from vae_core.errors import UserInputError
from vae_core.latent import sample_prior
from vae_core.library import SOURCE_LABELS


# 8 images per model file: at most 8 x 768 KiB (3x256x256 float32) per entry for the largest model the app loads,
# forgotten after an hour unused.
@st.cache_data(show_spinner=False, max_entries=256, ttl=3600)
def card_samples(model_key: str, sha: str) -> torch.Tensor:
    """Eight images decoded from random codes, cached per model file."""
    _, model = available_models()[model_key]
    y = torch.arange(8) % model.config.num_classes if model.config.is_conditional else None
    return sample_prior(model, 8, seed=0, y=y)[1]


SHAPE_HELP = ("Only for a model trained elsewhere whose input is not a square greyscale image (784 inputs are read "
              "as 1×28×28): the image's channels, height and width, e.g. 3, 32, 32.")


def image_shape(text: str) -> tuple[int, int, int] | None:
    """(C, H, W) from what the user typed ("3, 32, 32", "3x32x32", "(3, 32, 32)"); None if empty; UserInputError if
    it is not three positive whole numbers."""
    text = (text or "").strip()
    if not text:
        return None
    parts = [p for p in re.split(r"[\s,x×()\[\]]+", text.lower()) if p]
    if len(parts) != 3 or not all(p.isdigit() and 0 < int(p) <= 4096 for p in parts):
        raise UserInputError(f"“{plain(text, 40)}” is not an image shape: give three whole numbers, channels, height "
                             "and width, e.g. 3, 32, 32.")
    return tuple(int(p) for p in parts)


def upload_box() -> None:
    upload = st.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key="checkpoint_upload",
                              help="A model saved by Latent Lab, or the state_dict of a PyTorch VAE you trained "
                                   "yourself (`torch.save(model.state_dict(), \"my_vae.pt\")`: pytorch/examples' VAE "
                                   "or an MLP VAE with fc_mu / fc_logvar heads). Files are checked before use, read as "
                                   "weights only: nothing in them is run, and a file that would run code when loaded "
                                   "is refused.")
    shape_text = st.text_input("Image shape (C, H, W)", key="import_shape", placeholder="optional, e.g. 3, 32, 32",
                               help=SHAPE_HELP)
    if upload is None:
        return
    name = plain(upload.name, 80)  # a file name is the user's text: never Markdown
    if upload.size > MAX_CHECKPOINT_BYTES:  # refused before a byte is read (the checkpoint limit, vae_core)
        st.error(f"**{name} was refused.** It is {upload.size / 1e6:,.1f} MB, too large for a Latent Lab "
                 f"checkpoint (at most {MAX_CHECKPOINT_BYTES / 1e6:.0f} MB).", icon=":material/gpp_bad:")
        return
    import_or_refuse(lambda: add_upload(upload.getvalue(), upload.name, image_shape(shape_text)),
                     refused=f"{name} was refused.", unreadable="It could not be read as a Latent Lab checkpoint",
                     hint=lambda problem: " Type it in “Image shape (C, H, W)” above and the file is read again."
                     if "image shape" in problem else "")


def import_or_refuse(add, *, refused: str, unreadable: str, hint=lambda problem: "") -> None:
    """Run `add` (an import that returns (entry, is_new)) and say what came of it: loaded, or refused with the
    reason (a UserInputError: a refused file, or over this session's uploads) and `hint` for that reason. Anything
    else a file can cause is a refusal too, with its type: never a traceback in a classroom."""
    try:
        entry, is_new = add()
    except UserInputError as exc:
        st.error(f"**{refused}** {plain(exc, 1000)}{hint(str(exc))}", icon=":material/gpp_bad:")
        return
    except Exception as exc:
        log.exception("unexpected error importing an uploaded model")
        st.error(f"**{refused}** {unreadable} ({type(exc).__name__}).", icon=":material/gpp_bad:")
        return
    loaded(entry, is_new)


def loaded(entry, is_new: bool) -> None:
    """Say that an upload is in the picker (a new one first redraws the sidebar so that the picker lists it)."""
    if is_new:
        st.rerun()
    st.success(f"Loaded **{plain(entry.title, 80)}** ({entry.config.label}). It is now in the model picker.",
               icon=":material/check_circle:")


ONNX_HELP = ("Exported from any framework (see the README's “Bring your own model”): the encoder takes images "
             "(N, 784 or N, C, H, W) and gives mu and logvar (N, D), or one code for an autoencoder; the decoder takes "
             "codes (N, D) and gives images. Read as data and run by ONNX Runtime on the server: no code of yours runs.")
DECODER_OUTPUTS = {"auto": "auto (probabilities if it ends in a Sigmoid)", "probabilities": "probabilities in [0, 1]",
                   "logits": "logits (before a sigmoid)"}


def onnx_box() -> None:
    """The ONNX encoder and decoder pair: two files, what the decoder gives; imported once both are there."""
    st.markdown("Or an **ONNX encoder and decoder pair**, exported from any framework (PyTorch, Keras, JAX…):")
    left, right, choice = st.columns([2, 2, 2])
    encoder = left.file_uploader("Encoder (.onnx)", type=["onnx"], key="onnx_encoder_upload", help=ONNX_HELP)
    decoder = right.file_uploader("Decoder (.onnx)", type=["onnx"], key="onnx_decoder_upload", help=ONNX_HELP)
    output = choice.selectbox("The decoder gives", list(DECODER_OUTPUTS), format_func=DECODER_OUTPUTS.get,
                              key="onnx_decoder_output",
                              help="Whether the decoder's last layer is a sigmoid (probabilities) or not (logits). "
                                   "Auto reads it from the graph and says on the model's card what it assumed.")
    if encoder is None or decoder is None:
        if encoder is not None or decoder is not None:
            st.caption(f"Now the {'decoder' if decoder is None else 'encoder'}: the pair is read once both are here.")
        return
    names = (plain(encoder.name, 80), plain(decoder.name, 80))
    from vae_core.onnx_import import MAX_ONNX_BYTES

    too_big = [f"{n} is {f.size / 1e6:,.1f} MB" for n, f in zip(names, (encoder, decoder)) if f.size > MAX_ONNX_BYTES]
    if too_big:  # refused before a byte is read
        st.error(f"**The pair was refused.** {'; '.join(too_big)}: an ONNX file is at most "
                 f"{MAX_ONNX_BYTES / 1e6:.0f} MB here.", icon=":material/gpp_bad:")
        return
    import_or_refuse(lambda: add_onnx_upload(encoder.getvalue(), decoder.getvalue(), (encoder.name, decoder.name),
                                             image_shape(st.session_state.get("import_shape", "")), output),
                     refused=f"{names[0]} and {names[1]} were refused.",
                     unreadable="They could not be read as an ONNX encoder and decoder")


def card_figures(config, metrics: dict) -> str:
    """The card's line of figures: the test ELBO and KL, or for a WAE (no posterior, so no ELBO) its reconstruction
    and MMD; the sample quality where the card has it."""
    elbo, recon, mmd = metrics.get("test_elbo"), metrics.get("test_recon"), metrics.get("test_mmd")
    if elbo is not None:
        text = (f"{config.label} · test ELBO **{elbo:.2f}** nats · KL {metrics.get('test_kl', 0):.2f} · "
                f"active units {metrics.get('active_units', 'n/a')}")
    elif recon is not None and mmd is not None:
        text = (f"{config.label} · test reconstruction **{recon:.2f}** nats · MMD {mmd:.4f} · no ELBO (a WAE's "
                "code is deterministic: no KL)")
    else:
        return config.label
    recognised = (metrics.get("samples") or {}).get("recognised")
    return text + (f" · samples recognised {recognised:.0%}" if recognised is not None and elbo is None else "")


def card(entry, model) -> None:
    with st.container(border=True):
        top = st.columns([3, 2])
        with top[0]:
            st.markdown(f"**{plain(entry.title, 80)}**  \n:gray[{SOURCE_LABELS[entry.source]} · trained on "
                        f"{plain(entry.dataset, 80)}]")
            st.caption(plain(entry.about, 400) if entry.about else entry.config.label)
            imported = entry.meta.get("imported")
            if imported:
                imported_note(imported, entry)
            metrics = entry.card
            st.markdown(card_figures(entry.config, metrics))
            if imported and entry.source == "upload":
                measure_button(entry, model)
            if metrics.get("measured_on"):
                st.caption(f"Measured here on {plain(metrics['measured_on'], 80)}.")
            if "mig" in metrics:
                st.markdown(f"MIG **{metrics['mig']:.3f}** · DCI disentanglement {metrics['dci_disentanglement']:.3f}")
        with top[1]:
            show_images(card_samples(entry.key, entry.sha256), nrow=8, tile_px=36)
        actions = st.columns([1, 1, 1, 3])
        if actions[0].button("Use", key=f"use-{entry.key}", help="Select this model in the sidebar."):
            select_model(entry.key)
            st.rerun()
        actions[1].download_button("Download", data=lambda e=entry: download_bytes(e), file_name=f"{entry.key.split('/')[-1]}.pt",
                                   mime="application/octet-stream", key=f"dl-{entry.key}",
                                   help="The checkpoint file, to keep or to load elsewhere.", on_click="ignore")
        if entry.source in ("mine", "upload") and actions[2].button("Delete", key=f"del-{entry.key}",
                                                                     help="Remove this model of yours."):
            delete(entry)
            st.rerun()


MEASURE_IMAGES = 2000  # test images an imported model is measured on: a second or two for an MLP on one core
MEASURE_ON = {"bundled": "The bundled set of its image shape", "file": "A data file of my own"}


def shape_text(shape) -> str:
    """An image shape as the cards write it: 1×28×28."""
    return "×".join(str(int(n)) for n in shape)


def bundled_measure_data(entry):
    """The bundled data set of the model's image shape, or None with a note when there is none or it fails to load."""
    from ui.datasets import bundled_data
    from vae_core.importers import BUNDLED_DATA_BY_SHAPE

    source = BUNDLED_DATA_BY_SHAPE.get(tuple(entry.config.input_shape))
    if source is None:
        st.caption(f"No bundled data set has images of {shape_text(entry.config.input_shape)}: measure it on a "
                   "file of your own.")
        return None
    try:
        return bundled_data(source)
    except UserInputError as exc:
        st.error(f"The bundled set {source} cannot be loaded: {plain(exc, 500)}", icon=":material/error:")
        return None


def own_measure_data(entry):
    """A data file of the user's own (.npz or a .zip of class folders, read as the Train page reads it), as
    (data, bytes); None with a clear message when it is refused or its images are not the model's shape."""
    from ui.datasets import user_data

    upload = st.file_uploader("Your data file", type=["npz", "zip"], key=f"measure-file-{entry.key}",
                              help="A .npz with x_train/x_test (or x) arrays, or a .zip holding one sub-folder of "
                                   "images per class, as on the Train page. It is kept in this session only.")
    if upload is None:
        return None
    blob, name, shape = upload.getvalue(), plain(upload.name, 80), tuple(entry.config.input_shape)
    kind = "zip" if upload.name.lower().endswith(".zip") else "npz"
    try:
        data = user_data(blob, hashlib.sha256(blob).hexdigest(), kind, upload.name, image_size=shape[-1])
    except UserInputError as exc:
        st.error(f"{name} was refused: {plain(exc, 1000)}", icon=":material/error:")
        return None
    if tuple(data.input_shape) != shape:
        st.error(f"{name} holds images of {shape_text(data.input_shape)}, but this model takes images of "
                 f"{shape_text(shape)}: pick a file of {shape_text(shape)} images.", icon=":material/error:")
        return None
    return data, blob


def measure_button(entry, model) -> None:
    """An imported model's file holds no figures: measure its ELBO on test images of the data the user picks (the
    bundled set of its image shape, or a file of their own), and keep them on its card for this session."""
    choice = st.radio("Measure on", list(MEASURE_ON), format_func=MEASURE_ON.get, horizontal=True,
                      key=f"measure-on-{entry.key}", help="The test images the figures are measured on.")
    own = own_measure_data(entry) if choice == "file" else None
    data = own[0] if own else bundled_measure_data(entry) if choice == "bundled" else None
    if data is None or not st.button(f"Measure on {plain(data.spec.get('name', 'its data'), 40)}",
                                     key=f"measure-{entry.key}",
                                     help=f"The test ELBO, KL and active units on the first {MEASURE_IMAGES:,} test "
                                          "images of this data set."):
        return
    measure(entry, model, data, own[1] if own else None)
    st.rerun()


def measure(entry, model, data, blob: bytes | None) -> None:
    """Evaluate the model on up to MEASURE_IMAGES test images of `data` and keep the figures in its meta. The pages
    show the model on that data from now on: a file of the user's own (`blob`, its bytes) or the bundled set."""
    from ui.datasets import remember_data_upload
    from vae_core.importers import imported_data_meta
    from vae_core.metrics import evaluate_model

    n = min(MEASURE_IMAGES, len(data.test))
    test = dataclasses.replace(data.test, x=data.test.x[:n], y=data.test.y[:n], factors=None)
    with st.spinner(f"Measuring on {n:,} test images…"):
        result = evaluate_model(model, test)
    name = str(data.spec.get("name") or data.name)
    meta = {"metrics": {"test_elbo": result["elbo"], "test_recon": result["recon"], "test_kl": result["kl"],
                        "active_units": result["active_units"], "measured_on": f"{n:,} test images of {name}"}}
    if blob is not None:
        remember_data_upload(str(data.spec["fingerprint"]), blob)
        meta["data_spec"] = {k: v for k, v in data.spec.items() if k != "path"}  # never a path kept
        meta["dataset"] = f"{name} (your file, measured here)"
    else:  # back to the bundled set of its shape, should it have been shown on a file before
        meta.update(imported_data_meta(tuple(entry.config.input_shape)))
    uploads = st.session_state.get("uploads", {})
    if entry.key in uploads:
        kept, kept_model = uploads[entry.key]
        uploads[entry.key] = (dataclasses.replace(kept, meta={**kept.meta, **meta}), kept_model)


def imported_note(imported: dict, entry) -> None:
    """Where a model trained elsewhere came from, which of its layers became what, and what the file could not say."""
    files = ", ".join(plain(f, 80) for f in imported.get("files", []))
    c, h, w = entry.config.input_shape
    if imported.get("importer") == "onnx":
        parts = [*(f"encoder {plain(p, 120)}" for p in imported.get("encoder", [])),
                 *(f"decoder {plain(p, 120)}" for p in imported.get("decoder", []))]
        st.markdown(f":material/input: **Imported** from an ONNX encoder and decoder pair"
                    f"{f' ({files})' if files else ''}, run by ONNX Runtime on the server: {'; '.join(parts)}; images "
                    f"{c}×{h}×{w}.  \n**Assumed** (a graph says its shapes, not what they mean): "
                    f"{plain(imported.get('assumed', ''), 600)}. Nothing in the files was run as code: the graphs are "
                    "data that ONNX Runtime evaluates.")
        return
    layers = " → ".join(plain(n, 40) for n in [*imported.get("encoder", []), "(" + plain(imported.get("mean", "?"), 40)
                                                 + " | " + plain(imported.get("logvar", "?"), 40) + ")",
                                                 *imported.get("decoder", [])])
    st.markdown(f":material/input: **Imported** from a PyTorch state_dict{f' ({files})' if files else ''}: "
                f"{plain(imported.get('layout', ''), 200)}. "
                f"Layers {layers}; images {c}×{h}×{w}.  \n**Assumed** (a state_dict holds weights, not code): "
                f"{plain(imported.get('assumed', ''), 300)}. Nothing in the file was run.")


def download_bytes(entry) -> bytes:
    """The checkpoint file; for an upload, written again from the model (the session keeps the model, not the
    file's bytes)."""
    if entry.path is not None:
        return entry.path.read_bytes()
    from vae_core.checkpoint import checkpoint_bytes

    _, model = st.session_state.get("uploads", {}).get(entry.key, (None, None))
    return checkpoint_bytes(model, entry.meta) if model is not None else b""


def delete(entry) -> None:
    if entry.source == "mine" and entry.path is not None and entry.path.parent == user_dir():
        entry.path.unlink(missing_ok=True)
    elif entry.source == "upload":
        st.session_state.get("uploads", {}).pop(entry.key, None)
    if st.session_state.get("model_key") == entry.key:
        select_model(DEFAULT_MODEL)
    st.toast(f"Deleted {plain(entry.title, 80)}")


def my_storage() -> None:
    """This student's share of the server (issue 15, finding 6), and their files the app cannot load (a model the
    app refuses could otherwise not be deleted, and would take their quota for good)."""
    count, used = disk_use(user_dir())
    uploads = len(st.session_state.get("uploads", {}))
    st.caption(f"Your space on this server: {count} of {max_models()} trained models, {used / 1e6:,.1f} of "
               f"{max_user_bytes() / 1e6:,.0f} MB; {uploads} of {max_uploads()} uploaded models.")
    for i, (path, why) in enumerate(refused_files(user_dir()).items()):
        with st.container(border=True):
            st.markdown(f"**{plain(path.name, 80)}** cannot be loaded: {plain(why, 500)}")
            if st.button("Delete this file", key=f"del-refused-{i}", help="Remove this file of yours."):
                path.unlink(missing_ok=True)
                st.rerun()


def main() -> None:
    page_header(
        "Model library",
        "Every model you can use: the **bundled** ones that ship with Latent Lab, the ones **you trained** in this "
        "session and the ones you **uploaded**. Each card shows what the model was trained on and how well it does "
        "(the test ELBO: higher is better). Models you train or upload are visible only to you.",
    )

    upload_box()
    onnx_box()
    my_storage()
    models = available_models()
    for source in ("zoo", "mine", "upload"):
        group = [(e, m) for e, m in models.values() if e.source == source]
        if group:
            st.subheader({"zoo": "Bundled models", "mine": "Trained by you", "upload": "Uploaded by you"}[source])
            for entry, model in group:
                card(entry, model)


if __name__ == "__main__":
    main()
