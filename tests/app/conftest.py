"""AppTest fixtures: the real app script, run in-process, with this session's models in a temporary folder."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture(autouse=True)
def _entry_script_runs_on_every_rerun(monkeypatch):
    """Make AppTest rerun app.py like the real server does.

    AppTest resets `PagesManager.uses_pages_directory` to None before every run; with a `pages/` folder it then
    takes the old multipage path on every run after the first and executes the page file alone, skipping
    app.py (no sidebar picker). The real server keeps the flag False once `st.navigation` has run.
    """
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(autouse=True)
def _user_models_in_tmp(tmp_path, monkeypatch):
    from pages import _ui

    monkeypatch.setattr(_ui, "USER_ROOT", tmp_path / "user_models")


def open_app(page: str | None = None, *, timeout: float = 60, link: dict | None = None) -> AppTest:
    """Run the app (optionally switch to a page and run again); fail on any exception element. link: query
    parameters the first run sees, as if the app was opened from a shared link."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in (link or {}).items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_page_link(page: str, **params) -> AppTest:
    """A fresh session opening `page` at a link with these query parameters, as a browser would (AppTest finds
    the page by its file name before the first run: its url_path is the file's stem); fail on any exception."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def picker(at: AppTest):
    return at.sidebar.selectbox(key="model_key")
