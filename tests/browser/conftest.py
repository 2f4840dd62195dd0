"""Browser-test fixtures: one real Streamlit server and one headless Chromium per test session.

    browser     session: Debian's /usr/bin/chromium driven by sync Playwright (no `playwright install` here)
    server      session: `streamlit run app.py` on a free loopback port (models trained by the tests go to a
                temporary LATENT_LAB_USER_DIR); yields the base URL (a str) with .process, .user_dir, .log_path,
                .started_at / .healthy_at (time.monotonic()) and .first_open: the very first page load, timed
                right after the health check whichever test asks for the server first
    page        function: a fresh browser context (own cookies, own Streamlit session), viewport 1400x900;
                a failed test leaves FAILED-<test>.png

Helpers: assert_no_exception(page), screenshot(page, name), upload(page, path), Hostile; and, from the harness
the bench scripts share (bench/harness.py), wait_for_app(page), sidebar_picker(page), choose_training_data(page,
prefix), artifacts_dir(), record_figure(name, value) (merged into $ARTIFACTS/figures.json), start_server/stop_server.
Screenshots go to $LATENT_LAB_ARTIFACTS/screenshots (default /work/main/test-artifacts/screenshots); the server's
log to $ARTIFACTS/streamlit-server.log. LATENT_LAB_APP_DIR runs the app of another checkout (default: this one).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from bench.harness import (  # noqa: F401  (re-exported: the browser tests import them from here)
    APP_DIR, APP_IDLE_TIMEOUT_MS, CHROMIUM, DEFAULT_MODEL_TITLE, FIRST_PAGE_TITLE, StreamlitServer, artifacts_dir,
    choose_training_data, descendants, health_ok, launch_chromium, record_figure, screenshots_dir, sidebar_picker,
    start_server, stop_server, tree_cpu_seconds, wait_for_app,
)


class Hostile:
    """A pickle payload: unpickling it runs a shell command. The app must refuse the file before anything in it
    runs (checked by the `touch` marker file the command would create)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def upload(page, path: Path) -> None:
    """Put a file into the page's first st.file_uploader (the Model library has three: a checkpoint or state_dict
    first, then an ONNX encoder and decoder)."""
    page.get_by_test_id("stFileUploader").first.locator('input[type="file"]').set_input_files(str(path))


# -- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def server(browser, tmp_path_factory):
    """The app server. Its very first page load is timed here, whatever test asks for the server first, so the
    open-time figure is always a cold open (fresh process, empty caches): see server.first_open."""
    user_dir = tmp_path_factory.mktemp("latent_lab_user_models")
    srv = start_server(user_dir, artifacts_dir() / "streamlit-server.log")
    try:
        srv.first_open = measure_first_open(browser, srv)
        yield srv
    finally:
        stop_server(srv.process)


def measure_first_open(browser, srv: StreamlitServer) -> dict:
    """Open `/` in a fresh context and time until the title and the default model in the picker are shown.

    Returns seconds from process start and from the health answer, or {"error": ...} (the open-time test reports it).
    """
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(srv, wait_until="commit")
        expect(page.get_by_role("heading", name=FIRST_PAGE_TITLE, level=1)).to_be_visible(timeout=APP_IDLE_TIMEOUT_MS)
        expect(sidebar_picker(page)).to_have_value(re.compile(re.escape(DEFAULT_MODEL_TITLE)),
                                                   timeout=APP_IDLE_TIMEOUT_MS)
        shown = time.monotonic()
        return {"from_process_start": shown - srv.started_at, "from_health": shown - srv.healthy_at,
                "health_after": srv.healthy_at - srv.started_at}
    except Exception as exc:  # reported by the open-time test; the other tests still run
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            try:  # what the page showed when the test failed, for the report
                screenshot(pg, f"FAILED-{request.node.name}")
            except Exception:
                pass
        context.close()


# -- helpers --------------------------------------------------------------------------------------------------------


def mouse_path(page, box: dict, points, *, steps: int = 1) -> None:
    """Press the left button at the first (fx, fy) fraction of the element's bounding box, move through the others
    (`steps` mouse events per segment), release."""
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def assert_no_exception(page) -> None:
    """No Streamlit exception element, and no element showing a Python traceback."""
    exceptions = page.locator('[data-testid="stException"]')
    count = exceptions.count()
    assert count == 0, f"{count} exception element(s) on {page.url}: {exceptions.first.inner_text()[:500]}"
    traceback = page.get_by_text("Traceback", exact=False)
    n = traceback.count()
    assert n == 0, f"an element shows a traceback on {page.url}: {traceback.first.inner_text()[:500]}"


MAX_SCREENSHOT_HEIGHT = 8000


def screenshot(page, name: str) -> Path:
    """A PNG of the whole page. Streamlit scrolls inside <main data-testid="stMain">, so Playwright's full_page
    sees only the viewport: the viewport is stretched to the content's height for the shot, then put back."""
    path = screenshots_dir() / (name if name.endswith(".png") else f"{name}.png")
    viewport = page.viewport_size
    height = page.evaluate("""() => {
      const main = document.querySelector('[data-testid="stMain"]');
      return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight);
    }""")
    tall = viewport is not None and height > viewport["height"]
    try:
        if tall:
            page.set_viewport_size({"width": viewport["width"], "height": min(int(height), MAX_SCREENSHOT_HEIGHT)})
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.screenshot(path=str(path), full_page=True)
    finally:
        if tall:
            page.set_viewport_size(viewport)
    return path


