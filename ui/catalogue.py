"""The model catalogue: every model a session may pick (the zoo, the student's own, their uploads), loaded once per
file version, and the sidebar's model picker that the pages follow.

Models from disk: at most 128 entries, each at most 64 MB of weights (the checkpoint limit), dropped after a day
unused; a refused file is cached as its message, so it is read once per version, not on every rerun.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from pathlib import Path

import streamlit as st
import torch

from ui.page import queue_notice
from ui.students import ROOT, max_uploads, user_dir
from ui.text import plain
from vae_core.data.npz import MAX_FACTORS
from vae_core.errors import QuotaError, UserInputError
from vae_core.library import ModelEntry, checkpoint_files, entry_from_bytes

ZOO_DIR = ROOT / "checkpoints"
DEFAULT_MODEL = "zoo/mnist-vae-2d"  # the app opens on it: real 28x28 digits in a 2-D latent space
log = logging.getLogger("latent_lab")


@st.cache_resource(show_spinner=False, max_entries=128, ttl=24 * 3600)
def _entry_from_file(path: str, mtime_ns: int, size: int, source: str,
                     key: str) -> tuple[ModelEntry, torch.nn.Module] | str:
    """Load a checkpoint once per file version (the stat is the cache key); the refusal's message if refused."""
    try:
        return entry_from_bytes(Path(path).read_bytes(), source, key=key, path=Path(path))
    except (UserInputError, OSError) as exc:
        return str(exc) or type(exc).__name__


def refused_files(folder: Path) -> dict[Path, str]:
    """The checkpoints of a folder that cannot be loaded, with why (the Model library offers to delete them)."""
    out = {}
    for path in checkpoint_files(folder):
        with contextlib.suppress(OSError):
            stat = path.stat()
            loaded = _entry_from_file(str(path), stat.st_mtime_ns, stat.st_size, "mine", f"mine/{path.stem}")
            if isinstance(loaded, str):
                out[path] = loaded
    return out


def _folder_entries(folder: Path, source: str, prefix: str) -> list[tuple[ModelEntry, torch.nn.Module]]:
    out = []
    for path in checkpoint_files(folder):
        try:
            stat = path.stat()
        except OSError:  # deleted meanwhile (another tab)
            continue
        loaded = _entry_from_file(str(path), stat.st_mtime_ns, stat.st_size, source, f"{prefix}/{path.stem}")
        if isinstance(loaded, str):  # a damaged file must not take the picker down
            log.info("skipping %s: %s", path, loaded)
        else:
            out.append(loaded)
    return out


def _zoo_order(item) -> int:
    from vae_core.zoo import ZOO

    names = [s.name for s in ZOO]
    stem = item[0].key.split("/", 1)[1]
    return names.index(stem) if stem in names else len(names)


def available_models() -> dict[str, tuple[ModelEntry, torch.nn.Module]]:
    """Every model this session may pick, by key: the zoo, then the session's own, then its uploads."""
    zoo = sorted(_folder_entries(ZOO_DIR, "zoo", "zoo"), key=_zoo_order)
    mine = _folder_entries(user_dir(), "mine", "mine")
    uploads = list(st.session_state.get("uploads", {}).values())
    return {entry.key: (entry, model) for entry, model in [*zoo, *mine, *uploads]}


_CARD_NUMBERS = ("test_elbo", "test_recon", "test_kl", "nll", "active_units", "mig", "dci_disentanglement",
                 "dci_completeness", "dci_informativeness", "train_seconds", "nll_samples", "nll_examples",
                 "test_mmd", "test_mi", "test_tc", "test_dwkl")  # the WAE's MMD, the β-TCVAE's parts of the KL


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(value, length: int) -> list | None:
    """A list of `length` finite numbers, else None."""
    ok = isinstance(value, list) and len(value) == length and all(_finite(v) for v in value)
    return list(value) if ok else None


def _clean_card(card, latent_dim: int) -> dict:
    """The numbers of a model card (or a trained model's metrics) the pages show, each of the type they expect;
    anything else is dropped (a page then measures it itself or shows n/a)."""
    if not isinstance(card, dict):
        return {}
    out = {k: card[k] for k in _CARD_NUMBERS if _finite(card.get(k))}
    if _numbers(card.get("kl_per_dim"), latent_dim) is not None:
        out["kl_per_dim"] = list(card["kl_per_dim"])
    factors = card.get("factor_per_dim")
    if (isinstance(factors, list) and len(factors) == latent_dim
            and all(isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and _finite(f[1]) for f in factors)):
        out["factor_per_dim"] = [[f[0][:40], f[1]] for f in factors]
    accuracy, chance = card.get("factor_accuracy"), card.get("factor_chance")  # one per factor (None: constant)
    if (isinstance(accuracy, list) and isinstance(chance, list) and len(accuracy) == len(chance) <= MAX_FACTORS
            and all(a is None or (_finite(a) and 0 <= a <= 1) for a in accuracy)
            and all(_finite(c) and 0 <= c <= 1 for c in chance)):
        out["factor_accuracy"], out["factor_chance"] = list(accuracy), list(chance)
    return out


def clean_upload_meta(meta: dict, config) -> dict:
    """An uploaded checkpoint's metadata, reduced to what the pages read, each value of the type they expect: the
    file is untrusted, and a string where a page formats a number would stop the page with a traceback."""
    out = {}
    for key, limit in (("name", 200), ("dataset", 200), ("about", 1000), ("zoo_name", 200), ("status", 40)):
        if meta.get(key) is not None and not isinstance(meta.get(key), (dict, list)):
            out[key] = str(meta[key])[:limit]
    for key in ("card", "metrics"):
        if key in meta:
            out[key] = _clean_card(meta[key], config.latent_dim)
    if _numbers(meta.get("kl_per_dim"), config.latent_dim) is not None:
        out["kl_per_dim"] = list(meta["kl_per_dim"])
    imported = _clean_imported(meta.get("imported"))
    if imported:
        out["imported"] = imported
    names = meta.get("label_names")
    if isinstance(names, list) and len(names) <= 1000:
        out["label_names"] = [str(n)[:60] for n in names]
    if isinstance(meta.get("data_spec"), dict):
        out["data_spec"] = meta["data_spec"]  # read defensively by _model_data; never a path followed
    for key in ("train_config", "history", "input_shape", "created", "torch_version", "seconds", "samples_per_s"):
        if key in meta:  # kept for the downloaded file; no page formats them
            out[key] = meta[key]
    return out


def _clean_imported(value) -> dict:
    """What an importer recognised in a model trained elsewhere (vae_core.importers, vae_core.onnx_import), as short
    strings: where it came from (the importer, the files' names), which parts became what, what was assumed."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for key in ("importer", "layout", "mean", "logvar", "assumed", "decoder_output"):
        if isinstance(value.get(key), str):
            out[key] = value[key][:600]
    for key in ("encoder", "decoder", "files"):
        if isinstance(value.get(key), list) and len(value[key]) <= 64:
            out[key] = [str(v)[:120] for v in value[key]]
    return out


def add_upload(data: bytes, file_name: str, input_shape: tuple[int, int, int] | None = None
               ) -> tuple[ModelEntry, bool]:
    """Check and keep an uploaded checkpoint for this session: (entry, whether it is new); CheckpointError if
    refused, QuotaError if the session already holds max_uploads() uploads. Only the model is kept, not the file's
    bytes (a download writes the checkpoint again from the model). input_shape (C, H, W): the image shape of a
    state_dict trained elsewhere whose input is not a square greyscale image (a refusal asks for it)."""
    from vae_core.checkpoint import file_sha256

    sha = file_sha256(data)
    stem = Path(file_name).stem

    def load():
        entry, model = entry_from_bytes(data, "upload", fallback_title=stem, input_shape=input_shape)
        if isinstance(entry.meta.get("imported"), dict):  # the card says which file it came from
            entry.meta["imported"].setdefault("files", [Path(file_name).name])
        return entry, model

    return _keep_upload(f"upload/{sha[:12]}", f"{sha}:{input_shape}", load, stem,
                        lambda latent: f"{stem[:80]} (imported, z={latent})")


def add_onnx_upload(encoder: bytes, decoder: bytes, file_names: tuple[str, str],
                    input_shape: tuple[int, int, int] | None = None, decoder_output: str = "auto"
                    ) -> tuple[ModelEntry, bool]:
    """Check and keep an uploaded ONNX encoder and decoder pair (vae_core.onnx_import) like a checkpoint."""
    from vae_core.library import entry_from_onnx_pair, onnx_pair_sha256

    sha = onnx_pair_sha256(encoder, decoder, input_shape, decoder_output)

    def load():
        return entry_from_onnx_pair(encoder, decoder, "upload", file_names=file_names, input_shape=input_shape,
                                    decoder_output=decoder_output)

    stem = Path(file_names[0]).stem
    return _keep_upload(f"upload/{sha[:12]}", sha, load, stem, lambda latent: f"{stem[:80]} (ONNX, z={latent})")


def _keep_upload(key: str, attempt: str, load, stem: str, imported_title) -> tuple[ModelEntry, bool]:
    """Load an upload once per file (and options: `attempt`), keep it in the session under `key`; a refusal is
    remembered so that a file sitting in the uploader is not read again on every rerun. An imported model is called
    imported_title(latent size), from the user's own file name ("Imported VAE, z=2" says less)."""
    from vae_core.errors import CheckpointError

    uploads = st.session_state.setdefault("uploads", {})
    if key in uploads:  # the uploader keeps the file across reruns: load it once
        return uploads[key][0], False
    refused = st.session_state.get("refused_upload", {})
    if attempt in refused:  # a refused file is refused once, not on every rerun while it sits in the uploader
        raise CheckpointError(refused[attempt])
    if len(uploads) >= max_uploads():
        raise QuotaError(f"You have {len(uploads)} uploaded models, the most one session may hold on this server: "
                         "delete one of them below, then upload this one again.")
    try:
        entry, model = load()
    except CheckpointError as exc:
        st.session_state.refused_upload = {attempt: str(exc)}  # the latest refusal only
        raise
    meta = clean_upload_meta(entry.meta, model.config)
    title = str(meta.get("name") or stem[:200] or model.config.label)
    if meta.get("imported") and stem:
        title = imported_title(model.config.latent_dim)
    entry = dataclasses.replace(entry, meta=meta, title=title)
    uploads[entry.key] = (entry, model)
    return entry, True


def model_picker() -> None:
    """The sidebar's model choice; it follows the user from page to page and lives in the URL."""
    models = available_models()
    if not models:
        st.sidebar.error("No models found: the bundled zoo is missing. Run `python -m vae_core zoo build`.")
        return
    requested = st.session_state.pop("select_model", None)  # set by select_model() on an earlier run
    wanted = requested or st.session_state.get("model_key") or st.query_params.get("model") or DEFAULT_MODEL
    if wanted not in models:
        if "model_key" not in st.session_state and st.query_params.get("model"):
            queue_notice(f"The link's model “{plain(wanted, max_chars=80)}” is not available here, so the default "
                         "model is shown.")
        wanted = DEFAULT_MODEL if DEFAULT_MODEL in models else next(iter(models))
    st.session_state.model_key = wanted
    st.sidebar.selectbox("Model", list(models), key="model_key", format_func=lambda k: models[k][0].label,
                         help="The model every page uses: bundled ones, those you trained, those you uploaded.")
    entry = models[st.session_state.model_key][0]
    st.sidebar.caption(f"{entry.config.label} · trained on {plain(entry.dataset)}")
    st.query_params["model"] = st.session_state.model_key


def select_model(key: str) -> None:
    """Ask the picker to switch to `key` on the next run (a widget's state cannot change once it is drawn)."""
    st.session_state.select_model = key


def current_model() -> tuple[ModelEntry, torch.nn.Module]:
    """The picked model (the default one if none was picked yet)."""
    models = available_models()
    key = st.session_state.get("model_key", DEFAULT_MODEL)
    if key not in models:
        key = DEFAULT_MODEL if DEFAULT_MODEL in models else next(iter(models))
    return models[key]


def class_names(entry: ModelEntry, model) -> list[str]:
    """A CVAE's class names, from its checkpoint (the labels it was trained with), else the class numbers."""
    names = list(entry.meta.get("label_names") or [])
    k = model.config.num_classes
    return [str(n) for n in names] if len(names) == k else [str(i) for i in range(k)]
