"""Shared pieces of the pages: the model picker, cached loaders, image display and page framing.

Pages import this module; it holds no maths (that is vae_core's job) and nothing heavy runs on a rerun:
models are cached by file content, data sets by their recipe.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import threading
import uuid
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vae_core.data import DataSplit, load_from_spec
from vae_core.errors import UserInputError
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
    except UserInputError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # never a traceback in a classroom
        log.exception("unexpected error")
        st.error(f"{what} failed: {type(exc).__name__}: {exc}. The model and your work are kept; "
                 "try other settings or reload the page.", icon=":material/error:")


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


def start_training_job(model_config, train_config, data, name: str):
    """Start this session's training job in the background (one per session), saving into the user's folder."""
    from vae_core.jobs import TrainingJob
    from vae_core.library import slug, unique_path

    folder = user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    job = TrainingJob(model_config, train_config, data, job_limiter(), save_to=unique_path(folder, slug(name)),
                      name=name, alive=session_alive_probe(),
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
@st.cache_resource(show_spinner=False, max_entries=128)
def _entry_from_file(path: str, mtime_ns: int, size: int, source: str, key: str) -> tuple[ModelEntry, torch.nn.Module]:
    """Load a checkpoint once per file version (the stat is the cache key)."""
    return entry_from_bytes(Path(path).read_bytes(), source, key=key, path=Path(path))


def _folder_entries(folder: Path, source: str, prefix: str) -> list[tuple[ModelEntry, torch.nn.Module]]:
    out = []
    for path in checkpoint_files(folder):
        stat = path.stat()
        try:
            out.append(_entry_from_file(str(path), stat.st_mtime_ns, stat.st_size, source, f"{prefix}/{path.stem}"))
        except UserInputError as exc:  # a damaged file must not take the picker down
            log.warning("skipping %s: %s", path, exc)
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


def add_upload(data: bytes, file_name: str) -> tuple[ModelEntry, bool]:
    """Check and keep an uploaded checkpoint for this session: (entry, whether it is new); CheckpointError if refused."""
    entry, model = entry_from_bytes(data, "upload", fallback_title=Path(file_name).stem)
    uploads = st.session_state.setdefault("uploads", {})
    is_new = entry.key not in uploads
    uploads[entry.key] = (entry, model)
    st.session_state.setdefault("upload_bytes", {})[entry.key] = data
    return entry, is_new


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
            st.session_state.notice = f"The link's model “{wanted}” is not available here, so the default model is shown."
        wanted = DEFAULT_MODEL if DEFAULT_MODEL in models else next(iter(models))
    st.session_state.model_key = wanted
    st.sidebar.selectbox("Model", list(models), key="model_key", format_func=lambda k: models[k][0].label,
                         help="The model every page uses: bundled ones, those you trained, those you uploaded.")
    entry = models[st.session_state.model_key][0]
    st.sidebar.caption(f"{entry.config.label} · trained on {entry.dataset}")
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
@st.cache_resource(show_spinner="Loading the data set…", max_entries=16)
def _data_from_spec(spec_json: str, _file: bytes | None = None) -> DataSplit:
    return load_from_spec(json.loads(spec_json), file=io.BytesIO(_file) if _file is not None else None)


def model_data(entry: ModelEntry) -> DataSplit | None:
    """The data set the model was trained on, or None when it cannot be had (an upload from another session)."""
    spec = entry.meta.get("data_spec")
    if not spec:
        return None
    file = st.session_state.get("data_uploads", {}).get(spec.get("fingerprint"))
    try:
        return _data_from_spec(json.dumps(spec, sort_keys=True), file)
    except UserInputError as exc:
        log.info("data of %s not available: %s", entry.key, exc)
        return None


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
@st.cache_data(show_spinner="Encoding the test set…", max_entries=64)
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


@st.cache_data(show_spinner=False, max_entries=64)
def manifold_background(sha: str, view_key: str, n: int, extent: tuple[float, float, float, float], _model, _view,
                        y: int | None = None) -> np.ndarray:
    """The decoded n x n grid over a view's extent as one image (H, W, 3) uint8, to draw behind a scatter."""
    from vae_core.latent import manifold_grid

    images, _, _ = manifold_grid(_model, n, view=_view, extent=extent, y=y)
    return image_grid(images, nrow=n, padding=0)


def view_methods(latent_dim: int) -> list[str]:
    """The 2-D views offered for a latent size (t-SNE is view-only: no decoding from its plane)."""
    return ["identity"] if latent_dim <= 2 else ["pca", "tsne"]


VIEW_LABELS = {"identity": "the latent plane itself", "pca": "PCA (decodable)", "tsne": "t-SNE (view only)"}


def require_data(entry: ModelEntry) -> DataSplit:
    """The model's data set, or stop the page with a note on how to get it."""
    data = model_data(entry)
    if data is None:
        st.info(f"This page needs the data **{entry.title}** was trained on ({entry.dataset}), which this session "
                "does not have. Upload that file on the Train page, or pick a bundled model.", icon=":material/info:")
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
        if entry.source == "zoo" and (entry.meta.get("data_spec") or {}).get("source") == source:
            data = model_data(entry)
            if data is not None:
                return data
    return _data_from_spec(json.dumps({"source": source, "name": source, "seed": 0, "test_fraction": 0.2}))
