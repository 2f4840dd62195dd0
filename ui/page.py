"""The frame every page shares: its title and introduction, a notice queued for it, and friendly errors."""
from __future__ import annotations

import contextlib
import logging

import streamlit as st

from ui.text import plain
from vae_core.errors import UserInputError

log = logging.getLogger("latent_lab")


def queue_notice(text: str) -> None:
    """A notice for the top of the page, e.g. a link value that could not be used; shown once by page_header."""
    st.session_state.notice = text


def pop_notice() -> None:
    """Show (once) a notice queued after the page header was drawn, e.g. by url_int on a garbled link."""
    notice = st.session_state.pop("notice", None)
    if notice:
        st.info(notice, icon=":material/info:")


def page_header(title: str, intro: str) -> None:
    """The page title and a one-paragraph 'what you are looking at' for a newcomer."""
    st.title(title)
    st.markdown(intro)
    pop_notice()


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
