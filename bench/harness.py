"""The browser and server harness that the browser tests (tests/browser/conftest.py) and the bench scripts share: a
real Streamlit server on a free loopback port, Debian's Chromium driven by Playwright, waiting for the app to be
idle, CPU accounting from /proc, driving a few widgets, and the artifacts folder where figures are recorded.

    server = start_server(user_dir, artifacts_dir() / "server.log")   # `streamlit run app.py`, health-checked
    browser = launch_chromium(playwright)
    ...; wait_for_app(page); record_figure("open_s", 1.2)
    stop_server(server.process)

No pytest here: the tests' fixtures wrap these functions.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The app under test: this checkout unless LATENT_LAB_APP_DIR names another one (a worktree, a patched copy).
APP_DIR = Path(os.environ.get("LATENT_LAB_APP_DIR", ROOT)).resolve()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
HEALTH_TIMEOUT_S = 60.0
APP_IDLE_TIMEOUT_MS = 60_000
FIRST_PAGE_TITLE = "Latent Lab"
DEFAULT_MODEL_TITLE = "MNIST VAE (2-D latent)"

# Streamlit 1.67 marks the app root with the script run state: "initial" before the first run, "running" while a
# script (or fragment) run is in flight, "notRunning" when idle. The status widget shows the running-man icon while
# running. Idle = connected, not running, no running icon, no lazy-load skeleton or stale element left, and the main
# block has at least one rendered element.
IDLE_JS = """() => {
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


# -- artifacts ------------------------------------------------------------------------------------------------------
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


# -- the server -----------------------------------------------------------------------------------------------------
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


class StreamlitServer(str):
    """The base URL (a str), plus the process, timestamps (time.monotonic()) and the user-model folder."""

    process: subprocess.Popen
    started_at: float
    healthy_at: float
    user_dir: Path
    log_path: Path


def streamlit_args(port: int, *extra: str) -> list[str]:
    """The arguments after `streamlit run`: the app on a loopback port, headless, no usage statistics."""
    return ["app.py", "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false", *extra]


def start_server(user_dir: Path, log_path: Path, env_extra: dict | None = None) -> StreamlitServer:
    """Start `streamlit run app.py` on a free port and wait (bounded) for its health endpoint."""
    port = free_port()
    env = {**os.environ, "LATENT_LAB_USER_DIR": str(user_dir), "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", *streamlit_args(port)]
    log = open(log_path, "wb")
    started_at = time.monotonic()
    process = subprocess.Popen(cmd, cwd=APP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child keeps its own handle
    base = f"http://127.0.0.1:{port}"
    deadline = started_at + HEALTH_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}; log tail:\n{tail(log_path)}")
        if health_ok(f"{base}/_stcore/health"):
            break
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(f"streamlit did not answer /_stcore/health within {HEALTH_TIMEOUT_S:.0f} s; "
                               f"log tail:\n{tail(log_path)}")
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


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- CPU accounting from /proc --------------------------------------------------------------------------------------
def cpu_seconds(pid: int, *, with_reaped_children: bool = True) -> float:
    """CPU seconds of a process (user + system), plus those of its children it has reaped: a training worker that
    has ended still counts, in its parent's figure (with_reaped_children=False: the process's own threads only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        times = fields[11:15] if with_reaped_children else fields[11:13]  # utime stime [cutime cstime]
        return sum(int(v) for v in times) / os.sysconf("SC_CLK_TCK")
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


# -- the browser and the page -------------------------------------------------------------------------------------
def launch_chromium(playwright, niceness: int = 0):
    """Debian's Chromium, headless. niceness > 0 runs it (and every process it starts) at that nice level, so on a
    machine it shares with the server it draws in the CPU time the server leaves: a bench's stand-in for the
    student's browser running on the student's own computer."""
    executable = CHROMIUM
    if niceness:
        wrapper = Path(tempfile.mkdtemp(prefix="nice-chromium-")) / "chromium"
        wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(niceness)} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        executable = str(wrapper)
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)


@contextlib.contextmanager
def app_page(url: str | None = None, viewport: tuple[int, int] = (1400, 900)):
    """A headless Chromium page and the app's base URL, for a bench: the app at `url` when given, else a server of its
    own (a free port, a temporary user folder), stopped on the way out, as is the browser.

        with app_page(args.url) as (page, base):
            page.goto(f"{base}/decode")
    """
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = None if url else start_server(Path(tmp) / "users", Path(tmp) / "server.log")
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                try:
                    page = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}).new_page()
                    yield page, url or str(server)
                finally:
                    browser.close()
        finally:
            if server is not None:
                stop_server(server.process)


def wait_for_app(page, timeout_ms: int = APP_IDLE_TIMEOUT_MS) -> None:
    """Wait until Streamlit is idle: connected, no script run in flight and the main block rendered.

    Checked twice a few frames apart, so the short gap between a run and the rerun it triggers is not taken
    for idleness. While a fragment polls (run_every) the app is idle between polls, which is enough here.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining = max(1, int((deadline - time.monotonic()) * 1000))
        page.wait_for_function(IDLE_JS, timeout=remaining, polling="raf")
        page.wait_for_timeout(150)  # a rerun requested by the last run shows up within a frame or two
        if page.evaluate(IDLE_JS):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not become idle")


def sidebar_picker(page):
    """The sidebar's model picker (a combobox whose value is the picked model's label)."""
    return page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model")


def choose_training_data(page, prefix: str) -> None:
    """On the Train page, pick the data set whose label starts with `prefix` (e.g. "Digits": the page opens on
    MNIST; the 8x8 digits train in seconds, which the tests of the training machinery want)."""
    from playwright.sync_api import expect

    box = page.get_by_label("Data", exact=True)
    box.click()
    page.get_by_role("option", name=re.compile("^" + re.escape(prefix))).click()
    wait_for_app(page)
    expect(box).to_have_value(re.compile("^" + re.escape(prefix)))


def slider(page, label: str):
    """The thumb of a Streamlit slider (a visually hidden <input type=range> that takes keyboard input)."""
    return page.locator(f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]')


def slider_value(page, label: str):
    """The value shown above the thumb (for a select_slider, the option itself, not its index)."""
    thumb = page.locator(f'input[type="range"][aria-label="{label}"]')
    return page.get_by_test_id("stSlider").filter(has=thumb).get_by_test_id("stSliderThumbValue")


def set_slider(page, label: str, *, home: bool = False, end: bool = False, right: int = 0, expect_text: str) -> None:
    """Drive a slider with the keyboard (Home/End then ArrowRight presses) and wait for the app to take it."""
    from playwright.sync_api import expect

    thumb = slider(page, label)
    thumb.focus()
    if home:
        thumb.press("Home")
    if end:
        thumb.press("End")
    for _ in range(right):
        thumb.press("ArrowRight")
    expect(slider_value(page, label)).to_have_text(expect_text)
    thumb.blur()
    wait_for_app(page)
    expect(slider_value(page, label)).to_have_text(expect_text)


def set_model_name(page, name: str) -> None:
    """Type a name into the Train page's "Model name" box and wait for the app to take it."""
    from playwright.sync_api import expect

    box = page.get_by_label("Model name", exact=True)
    box.fill(name)
    box.press("Enter")
    wait_for_app(page)
    expect(box).to_have_value(name)


def alert(page, text: str):
    return page.get_by_test_id("stAlert").filter(has_text=text)
