"""The data sets behind the models, from two bounded server-wide caches, and a student's upload of their own file.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os

import streamlit as st

from ui.catalogue import available_models
from ui.text import plain
from vae_core.budget import ESTIMATE_LIMIT_BYTES
from vae_core.data import BUILTIN_SOURCES, DataSplit, load_from_spec, load_image_folder, load_npz, spec_cache_key
from vae_core.errors import DataError, UserInputError
from vae_core.library import ModelEntry

log = logging.getLogger("latent_lab")


# Data sets live in two server-wide caches, so that uploads cannot push the bundled sets out (and the other way round).
# Both hold failures too, as their message (a str), so that a bad file or recipe costs once, not on every rerun.
#
# Users' files (uploads of .npz / .zip, on the Train page or for a model trained on one): keyed by the file's sha256
# (computed here from the bytes themselves, so one user's data is never handed out for another's file, finding 11)
# and the split settings. Every entry passed the one-file budget (vae_core/budget.py: a load whose big arrays would
# exceed ESTIMATE_LIMIT_BYTES, 192 MiB, is refused), so the cache holds at most
#     USER_DATA_ENTRIES x 192 MiB = 4 x 192 MiB = 768 MiB, whatever the class uploads,
# and an entry unused for USER_DATA_TTL_S is dropped.
#
# Bundled sets rebuilt from a checkpoint's recipe (a name, a seed, a split: never a path): at most BUILTIN_ENTRIES,
# the largest being MNIST as float32 (220 MB), so at most 4 x 220 MB = 880 MB; a recipe is a few hundred bytes
# of JSON, so a checkpoint cannot make one entry larger than the built-in set it names.
USER_DATA_ENTRIES = 4
USER_DATA_TTL_S = 30 * 60
BUILTIN_ENTRIES = 4
BUILTIN_TTL_S = 6 * 3600
USER_DATA_SOURCES = {"npz": "npz", "image_folder": "zip"}  # spec source -> upload kind
assert USER_DATA_ENTRIES * ESTIMATE_LIMIT_BYTES <= 1 << 30  # the worst case above stays under 1 GiB


@st.cache_resource(show_spinner="Reading the data file…", max_entries=USER_DATA_ENTRIES, ttl=USER_DATA_TTL_S)
def _user_data(sha: str, kind: str, name: str, seed: int, test_fraction: float, image_size: int,
               _blob: bytes) -> DataSplit | str:
    try:
        if kind == "npz":
            return load_npz(io.BytesIO(_blob), seed=seed, test_fraction=test_fraction, name=name)
        return load_image_folder(io.BytesIO(_blob), image_size=image_size, seed=seed, test_fraction=test_fraction,
                                 name=name)
    except UserInputError as exc:
        return str(exc)


def user_data(blob: bytes, sha: str, kind: str, name: str, *, seed: int = 0, test_fraction: float = 0.2,
              image_size: int = 32) -> DataSplit:
    """A user's data file (kind "npz" or "zip"; `sha` the sha256 of `blob`, computed by the caller from the bytes),
    split as asked, from the server-wide cache; DataError with the loader's message if the file is refused (the
    refusal is cached too)."""
    name = os.path.basename(str(name))[:200] or "data"
    loaded = _user_data(sha, kind, name, int(seed), float(test_fraction), int(image_size) if kind == "zip" else 0,
                        blob)
    if isinstance(loaded, str):
        raise DataError(loaded)
    return loaded


def remember_data_upload(sha: str, blob: bytes) -> None:
    """Keep the bytes of the data file a student uploaded, so that the pages can show the data of a model trained on
    it. Only the latest one: a session holds at most one data file (64 MB, the upload limit)."""
    st.session_state.data_uploads = {sha: blob}


@st.cache_resource(show_spinner="Loading the data set…", max_entries=BUILTIN_ENTRIES, ttl=BUILTIN_TTL_S)
def _builtin_from_spec(key: str) -> DataSplit | str:
    try:
        return load_from_spec(json.loads(key)["spec"], allow_paths=False)
    except UserInputError as exc:
        return str(exc)


def _data_from_spec(spec_json: str) -> DataSplit:
    """A bundled data set from its recipe (JSON): cached, DataError if it cannot be had."""
    spec = json.loads(spec_json)
    if spec.get("source") not in BUILTIN_SOURCES:  # refused at once, and not cached (no entry pushed out for it)
        raise DataError(f"the model's data recipe names no data set this app has ({str(spec.get('source'))[:40]!r})")
    loaded = _builtin_from_spec(spec_cache_key(spec))
    if isinstance(loaded, str):
        raise DataError(loaded)
    return loaded


def _spec_source(entry: ModelEntry) -> str | None:
    """The "source" of the model's data recipe, if the recipe is a dict and its source a string."""
    spec = entry.meta.get("data_spec")
    source = spec.get("source") if isinstance(spec, dict) else None
    return source if isinstance(source, str) else None


def is_user_data(entry: ModelEntry) -> bool:
    """Whether the model was trained on a file of a user's own (not a bundled data set)."""
    return _spec_source(entry) in USER_DATA_SOURCES


def _model_data(entry: ModelEntry) -> tuple[DataSplit | None, str | None]:
    spec = entry.meta.get("data_spec")
    if not isinstance(spec, dict) or not spec:
        return None, "the model does not say what data it was trained on"
    try:
        if _spec_source(entry) in USER_DATA_SOURCES:
            # Never a path from the checkpoint (issue 15, finding 4): the student's own upload of that file, found
            # by the fingerprint, which is the sha256 of the file's bytes.
            file = st.session_state.get("data_uploads", {}).get(spec.get("fingerprint"))
            if file is None:
                return None, "missing"
            return user_data(file, str(spec["fingerprint"]), USER_DATA_SOURCES[spec["source"]],
                             str(spec.get("name") or "data"), seed=spec.get("seed", 0),
                             test_fraction=spec.get("test_fraction", 0.2), image_size=spec.get("image_size", 32)), None
        return _data_from_spec(json.dumps(spec, sort_keys=True, default=str)), None
    except (UserInputError, TypeError, ValueError, KeyError) as exc:
        log.info("data of %s not available: %s", entry.key, exc)
        return None, str(exc)


def model_data(entry: ModelEntry) -> DataSplit | None:
    """The data set the model was trained on, or None when it cannot be had (a file of the user's own that this
    session does not have, or a recipe that cannot be rebuilt)."""
    return _model_data(entry)[0]


def data_upload_box(entry: ModelEntry) -> DataSplit | None:
    """For a model trained on a file of the user's own: say so plainly and offer to upload that file (matched by
    its fingerprint, the sha256 of its bytes). Returns the data once this session has it."""
    spec = entry.meta.get("data_spec") if isinstance(entry.meta.get("data_spec"), dict) else {}
    name = plain(os.path.basename(str(spec.get("name") or "your data file")), max_chars=80)
    kind = USER_DATA_SOURCES.get(_spec_source(entry), "npz")
    st.info(f"**{plain(entry.title, max_chars=80)}** was trained on a file of your own, *{name}*. This page needs "
            "its images: upload that file to see its data (it is checked to be the very same file).",
            icon=":material/upload_file:")
    upload = st.file_uploader(f"The data file of {plain(entry.title, max_chars=80)}", type=[kind],
                              key=f"model_data_{entry.sha256[:12]}",
                              help="The same .npz or .zip the model was trained on. It is kept in this session only.")
    if upload is None:
        return None
    blob = upload.getvalue()
    sha = hashlib.sha256(blob).hexdigest()
    if sha != spec.get("fingerprint"):
        st.error(f"{plain(upload.name, max_chars=80)} is not the file this model was trained on (its contents "
                 "differ): upload the very file it learnt from.", icon=":material/error:")
        return None
    remember_data_upload(sha, blob)
    data, problem = _model_data(entry)
    if data is None:
        st.error(plain(problem, max_chars=2000), icon=":material/error:")
    return data


def require_data(entry: ModelEntry) -> DataSplit:
    """The model's data set, or stop the page with a note on how to get it."""
    data, problem = _model_data(entry)
    if data is None and is_user_data(entry):
        data = data_upload_box(entry)
    if data is None:
        if not is_user_data(entry):
            st.info(f"This page needs the data **{plain(entry.title, max_chars=80)}** was trained on "
                    f"({plain(entry.dataset, max_chars=80)}), which cannot be loaded here: "
                    f"{plain(problem, max_chars=500)}. Pick another model.", icon=":material/info:")
        st.stop()
    return data


def bundled_data(source: str) -> DataSplit:
    """A bundled data set ("mnist", "digits", "shapes") split as the zoo's models were trained on it (seed 0), from
    the same cache as those models' data when one is installed, so the pages hold one copy of it."""
    for entry, _ in available_models().values():
        if entry.source == "zoo" and _spec_source(entry) == source:
            data = model_data(entry)
            if data is not None:
                return data
    return _data_from_spec(json.dumps({"source": source, "name": source, "seed": 0, "test_fraction": 0.2}))
