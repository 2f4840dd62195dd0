"""AppTest fixtures: the real app script, run in-process, with this session's models in a temporary folder."""
from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def _scan_installed_components_once() -> None:
    """Every new AppTest rescans the metadata of every installed distribution for Streamlit components: 0.66 s
    apiece here (~125 packages), which was 45% of an AppTest module's time (cProfile of test_latent_map_page and
    test_decode_page). The installed packages do not change during a test run, and a real server scans once at
    start-up, so the scan's result is kept for the process. Our own components are declared inline
    (ui/components.py) and are registered by the app itself, not by this scan."""
    from streamlit.components.v2 import manifest_scanner

    if not hasattr(manifest_scanner.scan_component_manifests, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


_scan_installed_components_once()


@pytest.fixture(autouse=True)
def _user_models_in_tmp(tmp_path, monkeypatch):
    from ui import students

    monkeypatch.setattr(students, "USER_ROOT", tmp_path / "user_models")


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


def captioned_image(at: AppTest, caption: Callable[[str], bool]) -> np.ndarray:
    """The one image whose caption passes `caption`, read back (H, W, 3) uint8 from its inline PNG."""
    [image] = [i for i in at.image if i.captions and caption(i.captions[0])]
    header, data = image.value[0].split(",", 1)
    assert header == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
