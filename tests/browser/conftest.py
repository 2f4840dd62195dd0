"""Browser-test fixtures: one real Streamlit server and one headless Chromium per test session.

    browser     session: Debian's /usr/bin/chromium driven by sync Playwright (no `playwright install` here)
    server      session: `streamlit run app.py` on a free loopback port (models trained by the tests go to a
                temporary LATENT_LAB_USER_DIR); yields the base URL (a str) with .process, .user_dir, .log_path,
                .started_at / .healthy_at (time.monotonic()) and .first_open: the very first page load, timed
                right after the health check whichever test asks for the server first
    page        function: a fresh browser context (own cookies, own Streamlit session), viewport 1400x900;
                a failed test leaves FAILED-<test>.png

Helpers: wait_for_app(page), assert_no_exception(page), screenshot(page, name), sidebar_picker(page),
choose_training_data(page, prefix),
artifacts_dir(), record_figure(name, value) (merged into $ARTIFACTS/figures.json), start_server/stop_server.
Screenshots go to $LATENT_LAB_ARTIFACTS/screenshots (default /work/main/test-artifacts/screenshots); the server's
log to $ARTIFACTS/streamlit-server.log. LATENT_LAB_APP_DIR runs the app of another checkout (default: this one).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The app under test: this checkout unless LATENT_LAB_APP_DIR names another one (a worktree, a patched copy).
APP_DIR = Path(os.environ.get("LATENT_LAB_APP_DIR", ROOT)).resolve()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
HEALTH_TIMEOUT_S = 60.0
APP_IDLE_TIMEOUT_MS = 60_000

# Streamlit 1.67 marks the app root with the script run state: "initial" before the first run, "running" while a
# script (or fragment) run is in flight, "notRunning" when idle. The status widget shows the running-man icon while
# running. Idle = connected, not running, no running icon, no lazy-load skeleton or stale element left, and the main
# block has at least one rendered element.
_IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'))
    return false;
  // Widgets and charts are lazy-loaded chunks: a Suspense skeleton stands in until their code has arrived.
  const skeletons = '[data-testid="stSkeleton"], [data-testid="stSkeletonElement"], [data-testid="stAppSkeleton"]';
  if (document.querySelector(skeletons)) return false;
  if (document.querySelector('[data-testid="stElementContainer"][data-stale="true"]')) return false;
  const main = document.querySelector('[data-testid="stMain"] [data-testid="stMainBlockContainer"]')
            || document.querySelector('[data-testid="stMainBlockContainer"]');
  return !!(main && main.querySelector('[data-testid="stElementContainer"]'));
}"""


def artifacts_dir() -> Path:
    path = Path(os.environ.get("LATENT_LAB_ARTIFACTS", ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshots_dir() -> Path:
    path = artifacts_dir() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_figure(name: str, value) -> Path:
    """Merge one measured figure into $ARTIFACTS/figures.json."""
    path = artifacts_dir() / "figures.json"
    try:
        figures = json.loads(path.read_text())
    except (OSError, ValueError):
        figures = {}
    figures[name] = value
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and response.read().decode().strip() == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Hostile:
    """A pickle payload: unpickling it runs a shell command. The app must refuse the file before anything in it
    runs (checked by the `touch` marker file the command would create)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def upload(page, path: Path) -> None:
    """Put a file into the page's (first) st.file_uploader."""
    page.get_by_test_id("stFileUploader").locator('input[type="file"]').set_input_files(str(path))


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process (user + system), plus those of its children it has reaped: a training worker that
    has ended still counts, in its parent's figure."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a process and everything below it: the app server with its training workers."""
    return sum(cpu_seconds(pid) for pid in [root, *descendants(root)])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class StreamlitServer(str):
    """The base URL (a str), plus the process, timestamps (time.monotonic()) and the user-model folder."""

    process: subprocess.Popen
    started_at: float
    healthy_at: float
    user_dir: Path
    log_path: Path


def start_server(user_dir: Path, log_path: Path, env_extra: dict | None = None) -> StreamlitServer:
    """Start `streamlit run app.py` on a free port and wait (bounded) for its health endpoint."""
    port = free_port()
    env = {**os.environ, "LATENT_LAB_USER_DIR": str(user_dir), "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    log = open(log_path, "wb")
    started_at = time.monotonic()
    process = subprocess.Popen(cmd, cwd=APP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child keeps its own handle
    base = f"http://127.0.0.1:{port}"
    deadline = started_at + HEALTH_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}; log tail:\n{_tail(log_path)}")
        if health_ok(f"{base}/_stcore/health"):
            break
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(f"streamlit did not answer /_stcore/health within {HEALTH_TIMEOUT_S:.0f} s; "
                               f"log tail:\n{_tail(log_path)}")
        time.sleep(0.1)
    server = StreamlitServer(base)
    server.process, server.started_at, server.healthy_at = process, started_at, time.monotonic()
    server.user_dir, server.log_path = user_dir, log_path
    return server


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


# -- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (./run.sh test does it)")
    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


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


FIRST_PAGE_TITLE = "Latent Lab"
DEFAULT_MODEL_TITLE = "MNIST VAE (2-D latent)"


def sidebar_picker(page):
    """The sidebar's model picker (a combobox whose value is the picked model's label)."""
    return page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model")


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
def wait_for_app(page, timeout_ms: int = APP_IDLE_TIMEOUT_MS) -> None:
    """Wait until Streamlit is idle: connected, no script run in flight and the main block rendered.

    Checked twice a few frames apart, so the short gap between a run and the rerun it triggers is not taken
    for idleness. While a fragment polls (run_every) the app is idle between polls, which is enough here.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining = max(1, int((deadline - time.monotonic()) * 1000))
        page.wait_for_function(_IDLE_JS, timeout=remaining, polling="raf")
        page.wait_for_timeout(150)  # a rerun requested by the last run shows up within a frame or two
        if page.evaluate(_IDLE_JS):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not become idle")


def choose_training_data(page, prefix: str) -> None:
    """On the Train page, pick the data set whose label starts with `prefix` (e.g. "Digits": the page opens on
    MNIST; the 8x8 digits train in seconds, which the tests of the training machinery want)."""
    from playwright.sync_api import expect

    box = page.get_by_label("Data", exact=True)
    box.click()
    page.get_by_role("option", name=re.compile("^" + re.escape(prefix))).click()
    wait_for_app(page)
    expect(box).to_have_value(re.compile("^" + re.escape(prefix)))


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


