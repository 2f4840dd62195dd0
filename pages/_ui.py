"""Shared pieces of the pages: the model picker, cached loaders, image display and page framing.

Pages import this module; it holds no maths (that is vae_core's job) and nothing heavy runs on a rerun:
models are cached by file content, data sets by their recipe and the sha256 of the file they came from.

Issue 15 (one upload must never take the class down): every server-wide cache that can hold an upload's data has a
bounded number of entries, each bounded by the one-file budget, and an expiry, and caches failures too (a bad
file costs once); a session keeps the bytes of one data file (the latest) and at most MAX_UPLOADS uploaded models;
each student has quotas (models kept, MB on disk, one training at a time); and anything a user supplied (a link's
parameters, file names, names and labels from an uploaded file) goes into Markdown only through plain().
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import re
import threading
import uuid
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vae_core.budget import ESTIMATE_LIMIT_BYTES
from vae_core.data import BUILTIN_SOURCES, DataSplit, load_from_spec, load_image_folder, load_npz, spec_cache_key
from vae_core.errors import DataError, QuotaError, UserInputError
from vae_core.jobs import JobLimiter
from vae_core.latent import image_grid
from vae_core.library import ModelEntry, checkpoint_files, entry_from_bytes

# Streamlit treats a folder named pages/ beside the entry script as an old-style multipage app until app.py's
# st.navigation runs once; on a fresh server the first session could then run a page without app.py (no model
# picker) or miss a page's url_path. Nothing here should ever take that path: switch it off as soon as any page
# imports this module (run.sh also starts the server with it off), and see page_header() for the first session.
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402

PagesManager.uses_pages_directory = False

ROOT = Path(__file__).resolve().parents[1]
ZOO_DIR = ROOT / "checkpoints"
USER_ROOT = Path(os.environ.get("LATENT_LAB_USER_DIR", ROOT / "user_models"))
DEFAULT_MODEL = "zoo/mnist-vae-2d"  # the app opens on it: real 28x28 digits in a 2-D latent space
TILE_PX = 84  # images are shown at about this many pixels a side, scaled without blur
log = logging.getLogger("latent_lab")


# -- text from users --------------------------------------------------------------------------------------------------
# What Markdown (GitHub-flavoured, as Streamlit renders it) makes of one line of text, and the characters that do it:
# links and images need "[", raw HTML "<", emphasis and strikethrough "*", "~" and "_" at a word's edge, code "`",
# maths "$", Streamlit's directives (colours, badges, icons) ":name", escapes "\"; headings, quotes and lists need
# "#", ">", "-", "+" or "1." at the start. A backslash before those (CommonMark shows any escaped punctuation as
# itself) leaves nothing that renders as markup. Bare links ("http://", "www.", "name@host") are found in the text
# after the escapes are resolved (remark-gfm), so a backslash does not stop them: an invisible word joiner (U+2060)
# goes inside them instead. The rest ("(", "-", ".", "#", "_" inside a word...) is left as it is, so that "Digits
# VAE (2-D latent)", "my_digits.npz" or "test image #5" read the same in the page's source as on screen.
WORD_JOINER = "\u2060"
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]<~$_]|:(?=[^\W\d_])|(?<=www)\.|:(?=//)|@", re.IGNORECASE)
_BLOCK_START = re.compile(r"^(\d+)([.)])|^([-+=#>])")  # a list, a heading, a quote or a setext line at the start


def _escape(match: re.Match) -> str:
    char, text, i = match.group(0), match.string, match.start()
    if char == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
        return char  # inside a word an underscore never starts or ends emphasis
    if char == "." or char == "@" or (char == ":" and text.startswith("//", i + 1)):
        return char + WORD_JOINER if char != "." else WORD_JOINER + char  # "www\u2060.", "@\u2060", ":\u2060//"
    return "\\" + char


def plain(text, max_chars: int | None = 200) -> str:
    """`text` from a user (a link's parameter, a file name, a model's name or labels from an uploaded file, an error
    message that quotes them) made safe to put in Markdown: it shows literally, never as a link, an image, HTML,
    emphasis, a heading, maths or a coloured directive (see _MARKDOWN_SPECIAL). Line breaks become spaces (no
    headings, lists or quotes on a line of their own), and text longer than max_chars is cut with an ellipsis."""
    text = " ".join(str(text).split())
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rstrip() + "…"
    text = _MARKDOWN_SPECIAL.sub(_escape, text)
    return _BLOCK_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}", text)


# -- framing ------------------------------------------------------------------------------------------------------
def mark_shell_ran() -> None:
    """Called by app.py: this session's pages run inside the shell (picker, navigation)."""
    st.session_state._shell_ran = True


def page_header(title: str, intro: str) -> None:
    """The page title and a one-paragraph 'what you are looking at' for a newcomer."""
    if not st.session_state.get("_shell_ran"):
        st.rerun()  # a page ran without app.py (see the note at the top): run again, now through app.py
    st.title(title)
    st.markdown(intro)
    notice = st.session_state.pop("notice", None)
    if notice:
        st.info(notice, icon=":material/info:")


@contextlib.contextmanager
def friendly_errors(what: str = "This step"):
    """Show bad input as a clear message, and anything unexpected as a short one (the details go to the log)."""
    try:
        yield
    except UserInputError as exc:  # its message may quote a file name or a name from a file: plain() it
        st.error(plain(exc, max_chars=2000), icon=":material/error:")
    except Exception as exc:  # never a traceback in a classroom
        log.exception("unexpected error")
        st.error(f"{what} failed: {type(exc).__name__}: {plain(exc, max_chars=500)}. The model and your work are "
                 "kept; try other settings or reload the page.", icon=":material/error:")


# -- the session ------------------------------------------------------------------------------------------------------
def session_id() -> str:
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex[:16]
    return st.session_state.session_id


def keep_models() -> bool:
    """Whether the teacher enabled keeping students' models across server restarts (LATENT_LAB_KEEP_MODELS=1)."""
    return os.environ.get("LATENT_LAB_KEEP_MODELS", "") == "1"


LOCKER_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0)


def locker_code() -> str:
    """This student's locker code (kept mode): it names their folder, so typing it again reopens their models."""
    if "locker" not in st.session_state:
        import secrets

        raw = "".join(secrets.choice(LOCKER_ALPHABET) for _ in range(8))
        st.session_state.locker = f"{raw[:4]}-{raw[4:]}"
    return st.session_state.locker


def user_dir() -> Path:
    """This student's own folder of trained models (other sessions never list it).

    By default a folder per browser session, forgotten when the server restarts. In kept mode a folder per
    locker code, which the student can reopen from any session. Codes never go in the URL, so a shared
    link never shares someone's models.
    """
    if keep_models():
        return USER_ROOT / "lockers" / locker_code()
    return USER_ROOT / "sessions" / session_id()


def locker_box() -> None:
    """Sidebar box (kept mode only): the student's code, and a field to reopen another."""
    if not keep_models():
        return
    with st.sidebar.expander("Keep my models", icon=":material/lock:"):
        st.markdown(f"Your locker code: **`{locker_code()}`**. Write it down: after a restart or on another "
                    "computer, enter it here to get your trained models back.")
        code = st.text_input("Open a locker", placeholder="abcd-2345", max_chars=9, key="locker_input",
                             help="The code shown when you trained your models.").strip().lower()
        if code and code != locker_code():
            valid = len(code) == 9 and code[4] == "-" and all(c in LOCKER_ALPHABET for c in code.replace("-", ""))
            if not valid:
                st.error("A locker code looks like abcd-2345 (letters and digits, a dash in the middle).")
            elif not (USER_ROOT / "lockers" / code).is_dir():
                st.error(f"No models are kept under {code}. Check the code.")
            else:
                st.session_state.locker = code
                st.rerun()


def session_alive_probe():
    """A callable that tells whether this browser session is still connected (for the training watchdog)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, sid = Runtime.instance(), ctx.session_id

    def alive() -> bool:
        return bool(runtime._session_mgr.is_active_session(sid))  # no public API for this in Streamlit 1.67

    return alive


@st.cache_resource(show_spinner=False)
def job_limiter() -> JobLimiter:
    """One per server: caps how many students train at the same time."""
    return JobLimiter(int(os.environ.get("LATENT_LAB_MAX_JOBS", os.cpu_count() or 1)))


WARM_UP_DELAY_S = 8.0


@st.cache_resource(show_spinner=False)
def warm_up_training() -> bool:
    """Once per server, in the background: start the training workers' fork server (it imports torch, ~2 s),
    so that the first Start of the day answers at once. A few seconds late, so that it does not compete with the
    first page for the CPU (on 2 cores it slowed the first render by a second or more)."""
    from vae_core.jobs import warm_up_workers

    timer = threading.Timer(WARM_UP_DELAY_S, warm_up_workers)
    timer.name, timer.daemon = "warm-up-training", True
    timer.start()
    return True


# -- quotas per student (issue 15, findings 6-7) ---------------------------------------------------------------------
def _env_int(name: str, default: int) -> int:
    """A positive whole number from the environment, else `default` (a typo must not switch a quota off)."""
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        log.warning("%s=%r is not a whole number: using %s", name, os.environ.get(name), default)
        return default
    return value if value > 0 else default


def max_models() -> int:
    """Trained models one student may keep (LATENT_LAB_MAX_MODELS, default 20)."""
    return _env_int("LATENT_LAB_MAX_MODELS", 20)


def max_user_bytes() -> int:
    """Disk one student's trained models may take (LATENT_LAB_MAX_USER_MB, default 200 MB)."""
    return _env_int("LATENT_LAB_MAX_USER_MB", 200) * 10**6


def max_uploads() -> int:
    """Uploaded checkpoints one session holds at once (LATENT_LAB_MAX_UPLOADS, default 3): each is kept in the
    server's memory (at most 64 MB of weights, the checkpoint limit), so a session holds at most 3 x 64 MB."""
    return _env_int("LATENT_LAB_MAX_UPLOADS", 3)


def student_key() -> str:
    """Who a quota counts against: the student's folder, i.e. their session, or in kept mode their locker (the same
    in every tab and on every computer where they typed the code)."""
    return str(user_dir())


def disk_use(folder: Path) -> tuple[int, int]:
    """(checkpoints, bytes of all files) in a student's folder."""
    from vae_core.library import checkpoint_files

    if not folder.is_dir():
        return 0, 0
    total = 0
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return len(checkpoint_files(folder)), total


def checkpoint_size_estimate(model_config) -> int:
    """Bytes of the checkpoint a model of these settings makes: float32 weights and a margin for the metadata."""
    from vae_core.config import estimate_parameters

    return 4 * estimate_parameters(model_config) + 256 * 1024


def training_refusal(model_config=None) -> str | None:
    """Why this student may not start a training now (a sentence that says what to do), or None. Checked while
    the settings are chosen (the Start button is then disabled) and again on Start."""
    running = job_limiter().job_of(student_key())
    own = st.session_state.get("job")
    if running is not None and running is not own:
        return (f"You already have a training running (“{running.name}”), maybe in another tab: one at a time per "
                "student. Stop it there or wait for it to finish.")
    count, used = disk_use(user_dir())
    if count >= max_models():
        return (f"You keep {count} trained models, the most one student may keep on this server: delete some in the "
                "Model library, then start again.")
    if model_config is not None:
        size = checkpoint_size_estimate(model_config)
        if used + size > max_user_bytes():
            return (f"Your models take {used / 1e6:,.1f} MB and this one would add about {size / 1e6:,.1f} MB, over "
                    f"the {max_user_bytes() / 1e6:,.0f} MB each student may keep on this server: delete some in the "
                    "Model library, or choose a smaller model.")
    return None


def start_training_job(model_config, train_config, data, name: str):
    """Start this session's training job in the background (one per student), saving into the user's folder;
    QuotaError (nothing started) if a quota is used up."""
    from vae_core.jobs import TrainingJob
    from vae_core.library import slug, unique_path

    problem = training_refusal(model_config)
    if problem:
        raise QuotaError(problem)
    folder = user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    job = TrainingJob(model_config, train_config, data, job_limiter(), save_to=unique_path(folder, slug(name)),
                      name=name, alive=session_alive_probe(), owner=student_key(),
                      orphan_grace=float(os.environ.get("LATENT_LAB_ORPHAN_GRACE", 30)))
    st.session_state.job = job.start()
    st.session_state.job_seen_done = False
    return job


@st.cache_resource(show_spinner=False)
def forget_old_sessions(max_age_hours: float = 24.0) -> int:
    """Once per server start: delete per-session folders untouched for a day (kept-mode lockers stay)."""
    import shutil
    import time

    removed = 0
    for folder in (USER_ROOT / "sessions").glob("*"):
        try:
            if time.time() - folder.stat().st_mtime > max_age_hours * 3600:
                shutil.rmtree(folder)
                removed += 1
        except OSError:
            pass
    return removed


# -- models ---------------------------------------------------------------------------------------------------------
# Models from disk (the zoo and students' folders): at most 128 entries, each at most 64 MB of weights (the
# checkpoint limit), dropped after a day unused; a refused file is cached as its message, so it is read once per
# version, not on every rerun.
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
                 "dci_completeness", "dci_informativeness", "train_seconds", "nll_samples", "nll_examples")


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
    names = meta.get("label_names")
    if isinstance(names, list) and len(names) <= 1000:
        out["label_names"] = [str(n)[:60] for n in names]
    if isinstance(meta.get("data_spec"), dict):
        out["data_spec"] = meta["data_spec"]  # read defensively by _model_data; never a path followed
    for key in ("train_config", "history", "input_shape", "created", "torch_version", "seconds", "samples_per_s"):
        if key in meta:  # kept for the downloaded file; no page formats them
            out[key] = meta[key]
    return out


def add_upload(data: bytes, file_name: str) -> tuple[ModelEntry, bool]:
    """Check and keep an uploaded checkpoint for this session: (entry, whether it is new); CheckpointError if
    refused, QuotaError if the session already holds max_uploads() uploads. Only the model is kept, not the file's
    bytes (a download writes the checkpoint again from the model)."""
    from vae_core.checkpoint import file_sha256
    from vae_core.errors import CheckpointError

    uploads = st.session_state.setdefault("uploads", {})
    sha = file_sha256(data)
    if f"upload/{sha[:12]}" in uploads:  # the uploader keeps the file across reruns: load it once
        return uploads[f"upload/{sha[:12]}"][0], False
    refused = st.session_state.get("refused_upload", {})
    if sha in refused:  # a refused file is refused once, not on every rerun while it sits in the uploader
        raise CheckpointError(refused[sha])
    if len(uploads) >= max_uploads():
        raise QuotaError(f"You have {len(uploads)} uploaded models, the most one session may hold on this server: "
                         "delete one of them below, then upload this one again.")
    try:
        entry, model = entry_from_bytes(data, "upload", fallback_title=Path(file_name).stem)
    except CheckpointError as exc:
        st.session_state.refused_upload = {sha: str(exc)}  # the latest refusal only
        raise
    meta = clean_upload_meta(entry.meta, model.config)
    title = str(meta.get("name") or Path(file_name).stem[:200] or model.config.label)
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
            st.session_state.notice = (f"The link's model “{plain(wanted, max_chars=80)}” is not available here, "
                                       "so the default model is shown.")
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


# -- data -----------------------------------------------------------------------------------------------------------
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


# -- images ---------------------------------------------------------------------------------------------------------
def scale_for(images: torch.Tensor, tile_px: int = TILE_PX) -> int:
    """The integer upscaling that shows a tile at about tile_px pixels (nearest neighbour: no blur)."""
    return max(1, round(tile_px / images.shape[-1]))


def show_images(images: torch.Tensor, nrow: int, *, caption: str | None = None, tile_px: int = TILE_PX) -> np.ndarray:
    """Show (N, C, H, W) images in [0, 1] as one crisp grid; returns the grid (H, W, 3) uint8."""
    grid = image_grid(images, nrow=nrow, scale=scale_for(images, tile_px))
    st.image(grid, caption=caption, width="content")
    return grid


# -- cached latent-space work shared by the explore pages -------------------------------------------------------------
# The model's sha256 is the cache key; the model and data objects ride along unhashed (leading underscore).
@st.cache_data(show_spinner="Encoding the test set…", max_entries=64, ttl=3600)
def encode_split(sha: str, split: str, _model, _data: DataSplit) -> dict:
    """Posterior means (and log-variances) of a split: {"mu": (N, D), "logvar": (N, D) | None, "y": (N,)} numpy."""
    from vae_core.latent import encode_dataset

    part = getattr(_data, split)
    enc = encode_dataset(_model, part.x, part.y)
    return {"mu": enc.mu.numpy(), "logvar": None if enc.logvar is None else enc.logvar.numpy(), "y": part.y.numpy()}


@st.cache_resource(show_spinner="Fitting the 2-D view…", max_entries=64)
def latent_view(sha: str, method: str, _mu: np.ndarray):
    """The 2-D view of a model's test-set means (identity, PCA, or view-only t-SNE), fitted once."""
    from vae_core.latent import fit_view

    return fit_view(torch.from_numpy(_mu), method, max_tsne_points=1000)


def grid_side_limit(model, wanted: int) -> int:
    """The most images a side of a decoded n x n grid may have for this model: at most `wanted`, and n² at most the
    model's max_batch_size (vae_core/config.py), i.e. the grid's images take at most half of the memory one batch
    may (its activations count the output twice), so an uploaded model with large images decodes a small grid
    within the budget. At least 4 for any model the app loads (max_batch_size >= 16)."""
    from vae_core.config import ModelConfig, max_batch_size

    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        return wanted
    return max(1, min(wanted, math.isqrt(max_batch_size(config))))


@st.cache_data(show_spinner=False, max_entries=64, ttl=3600)
def manifold_background(sha: str, view_key: str, n: int, extent: tuple[float, float, float, float], _model, _view,
                        y: int | None = None) -> np.ndarray:
    """The decoded n x n grid over a view's extent as one image (H, W, 3) uint8, to draw behind a scatter; n is
    capped by grid_side_limit."""
    from vae_core.latent import manifold_grid

    n = grid_side_limit(_model, n)
    images, _, _ = manifold_grid(_model, n, view=_view, extent=extent, y=y)
    return image_grid(images, nrow=n, padding=0)


def view_methods(latent_dim: int) -> list[str]:
    """The 2-D views offered for a latent size (t-SNE is view-only: no decoding from its plane)."""
    return ["identity"] if latent_dim <= 2 else ["pca", "tsne"]


VIEW_LABELS = {"identity": "the latent plane itself", "pca": "PCA (decodable)", "tsne": "t-SNE (view only)"}


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


# -- state in the URL (shared links) ----------------------------------------------------------------------------------
def url_floats(name: str, length: int) -> list[float] | None:
    """A comma-separated list of `length` finite floats from the URL, or None (with a notice if it was garbage)."""
    raw = st.query_params.get(name)
    if raw is None:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
        if len(values) != length or not all(np.isfinite(values)) or max(map(abs, values)) > 1e3:
            raise ValueError
    except ValueError:
        st.session_state.notice = f"The link's “{name}” value could not be used, so the page opened with defaults."
        return None
    return values


def url_int(name: str, low: int, high: int) -> int | None:
    """An integer in [low, high] from the URL, or None (with a notice if it was garbage)."""
    raw = st.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError
    except ValueError:
        st.session_state.notice = f"The link's “{name}” value could not be used, so the page opened with defaults."
        return None
    return value


def set_url(**values) -> None:
    """Write page state to the URL (lists as comma-separated, rounded floats), so the link can be shared."""
    for name, value in values.items():
        if value is None:
            st.query_params.pop(name, None)
        elif isinstance(value, (list, tuple, np.ndarray)):
            st.query_params[name] = ",".join(f"{float(v):.4g}" for v in value)
        else:
            st.query_params[name] = str(value)


# -- exact links and inline pictures (decode and generate pages) ------------------------------------------------------
def exact_float(value: float) -> str:
    """The shortest decimal that reads back as the same float32 (the precision models compute in), e.g. 0.15 or
    -1.2345673: a link written with it reproduces a decoded image exactly, where 4 significant digits may not."""
    return str(np.float32(value))  # numpy prints a float32 with the fewest digits that read back as itself


def set_url_exact(**values) -> None:
    """Like set_url, but lists of floats are written exactly (see exact_float); unchanged values are not rewritten
    (each write sends a message to the browser)."""
    for name, value in values.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            value = ",".join(exact_float(v) for v in value)
        if value is None:
            st.query_params.pop(name, None)
        elif st.query_params.get(name) != str(value):
            st.query_params[name] = str(value)


def url_float(name: str, low: float, high: float) -> float | None:
    """A finite float in [low, high] from the URL, or None (with a notice if it was garbage)."""
    values = url_floats(name, 1)
    if values is None:
        return None
    if not low <= values[0] <= high:
        st.session_state.notice = f"The link's “{name}” value could not be used, so the page opened with defaults."
        return None
    return values[0]


def data_uri(picture: np.ndarray) -> str:
    """A (H, W, 3) uint8 picture as an inline PNG data URI: st.image shows it as is (no media-file round trip, so
    a fast-changing image paints sooner) and the page's PNG bytes can be read back from the element."""
    import base64

    from vae_core.latent import png_bytes

    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")


# -- clicks, boxes and lassos on the latent map (Latent map and Interpolate pages) ------------------------------------
def map_selection(selection) -> dict | None:
    """What a selection on a latent map means, from st.plotly_chart's documented selection structure
    {"points": [{"customdata": [index], "x": ..., "y": ...}, ...], "box": [...], "lasso": [...]}:

    {"indices": [...]}  the data indices of the picked points (click, box or lasso), in order, without repeats;
                        empty when a box or lasso caught no data point;
    {"spot": (x, y)}    a click on empty space (a point of the invisible click grid, figures.GRID_INDEX);
    None                nothing selected (or only points of other layers).
    """
    from pages._figures import GRID_INDEX

    selection = selection or {}
    points = selection.get("points") or []
    indices, grid_points = [], []
    for point in points:
        custom = point.get("customdata")
        # A list [index] in the docs; {"0": index} in a real browser, where plotly.js decodes the figure's numpy
        # custom_data into a typed array and Streamlit's frontend serialises that as an object.
        if isinstance(custom, dict):
            custom = custom.get("0", custom.get(0))
        value = custom[0] if isinstance(custom, (list, tuple)) and custom else custom
        try:
            index = int(value)
        except (TypeError, ValueError):
            continue  # a layer without indices (prior circles, ellipses, the path)
        if index >= 0 and index not in indices:
            indices.append(index)
        elif index == GRID_INDEX:
            grid_points.append((float(point["x"]), float(point["y"])))
    dragged = bool(selection.get("box") or selection.get("lasso"))
    if indices or dragged:
        return {"indices": indices}
    if len(grid_points) == 1:
        return {"spot": grid_points[0]}
    return None


def pop_notice() -> None:
    """Show (once) a notice queued after the page header was drawn, e.g. by url_int on a garbled link."""
    notice = st.session_state.pop("notice", None)
    if notice:
        st.info(notice, icon=":material/info:")


def class_names(entry: ModelEntry, model) -> list[str]:
    """A CVAE's class names, from its checkpoint (the labels it was trained with), else the class numbers."""
    names = list(entry.meta.get("label_names") or [])
    k = model.config.num_classes
    return [str(n) for n in names] if len(names) == k else [str(i) for i in range(k)]


def bundled_data(source: str) -> DataSplit:
    """A bundled data set ("mnist", "digits", "shapes") split as the zoo's models were trained on it (seed 0), from
    the same cache as those models' data when one is installed, so the pages hold one copy of it."""
    for entry, _ in available_models().values():
        if entry.source == "zoo" and _spec_source(entry) == source:
            data = model_data(entry)
            if data is not None:
                return data
    return _data_from_spec(json.dumps({"source": source, "name": source, "seed": 0, "test_fraction": 0.2}))
