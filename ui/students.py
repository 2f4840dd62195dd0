"""Each student's own space: their folder of trained models (per session, or per locker code in kept mode), the
locker box, and their quotas (issue 15, findings 6-7: models kept, MB on disk, uploads held)."""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import streamlit as st

from ui.state import session_id

ROOT = Path(__file__).resolve().parents[1]
USER_ROOT = Path(os.environ.get("LATENT_LAB_USER_DIR", ROOT / "user_models"))
log = logging.getLogger("latent_lab")


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


def _env_int(name: str, default: int) -> int:
    """A positive whole number from the environment, else `default` (a typo must not switch a quota off)."""
    raw = os.environ.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        log.warning("%s=%r is not a whole number: using %s", name, raw, default)
        value = default
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
