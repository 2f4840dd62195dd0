"""Session and URL state: the session's id, one namespaced store per page, and the values a shared link carries.

A page keeps its own state (what is not a widget's value) in one dataclass, `page_state(LatentMapState)`: one
session-state entry per page, named after the class, instead of loose keys. Shared links keep page state in the
URL; the readers below accept only well-formed values and queue a notice for a garbled one.
"""
from __future__ import annotations

import uuid
from dataclasses import fields
from typing import TypeVar

import numpy as np
import streamlit as st

from ui.page import queue_notice

S = TypeVar("S")


def page_state(cls: type[S]) -> S:
    """This session's instance of a page's state dataclass, created with its defaults on first use.

    Keyed by the class's name, not the class object: a page script is executed afresh on every run, which defines
    its dataclass anew each time, so the instance kept from an earlier run is of an equal but other class."""
    key = f"page_state.{cls.__qualname__}"
    saved = st.session_state.get(key)
    if saved is None or [f.name for f in fields(saved)] != [f.name for f in fields(cls)]:
        saved = st.session_state[key] = cls()
    return saved


def session_id() -> str:
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex[:16]
    return st.session_state.session_id


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
        queue_notice(bad_link_value(name))
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
        queue_notice(bad_link_value(name))
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
        queue_notice(bad_link_value(name))
        return None
    return values[0]


def bad_link_value(name: str) -> str:
    """The notice for a link parameter that could not be used."""
    return f"The link's “{name}” value could not be used, so the page opened with defaults."
