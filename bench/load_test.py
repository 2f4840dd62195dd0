"""Classroom load test (issue 8): many simultaneous students against ONE `streamlit run app.py`.

    .venv/bin/python bench/load_test.py [--sessions 30 --browsers 5 --trainers 10]
        [--epochs 5] [--ramp 15] [--ttl 15] [--timeout 900] [--out test-artifacts/load_test.json]
    .venv/bin/python bench/load_test.py --cluster 2 --sessions 60 --trainers 20 --out test-artifacts/load_test_cluster.json
        the same class through nginx to 2 replicas training on Ray (`./run.sh cluster up`, bench/cluster_server.py)

What it does (loopback only: the server listens on 127.0.0.1 and nothing else is contacted):

1. Starts `streamlit run app.py` on a free 127.0.0.1 port with LATENT_LAB_USER_DIR = a temporary folder and
   `--server.disconnectedSessionTTL <ttl>` (default 15 s instead of Streamlit's 120 s), so sessions whose browser
   closed are released within the run. LATENT_LAB_MAX_JOBS is left at the app's default (the core count) unless
   --max-jobs is given. The server runs through a tiny bootstrap that calls Streamlit's own CLI entry point and
   adds one idle thread (the "probe"), used only after the class has left, to read what still holds memory
   (sessions kept for reconnection, live objects, Streamlit's cache sizes) and what gc/malloc_trim give back.
   --no-probe runs the plain `python -m streamlit run app.py`.
2. Samples the server's memory (RSS of the process and its children, from /proc) and its thread count every 0.5 s.
3. Idle figure: after startup and one warm-up page load (`/`), before the class.
4. The class: --sessions students arrive over --ramp seconds. --browsers of them get a Chromium of their own (real,
   separate browsers); the others are lighter clients: browser contexts in one shared Chromium (each its own
   cookies and Streamlit session). All are driven concurrently by Playwright's async API.
   Every student opens `/`, then tours the explore pages through the sidebar (Latent map, Interpolate, Decode,
   Generate, Latent pad, Model library, Lessons, Welcome; page navigation time = click -> app idle with the new
   page's title), and on Decode moves the z[0] slider with ArrowRight a few times (interaction time = key press ->
   the decoded image's src changes, timed inside the page; and -> app idle).
   --trainers of them first go to Train, pick --data (the 8x8 digits unless told), set Epochs to --epochs
   (default settings otherwise), and when all trainers are ready press "Start training" one after another,
   --click-gap s apart (click order known), like a class told "now start". Each records the queue positions it
   was shown, waits for "Finished", then tours.
   Queue fairness (first come, first served): the probe watches the server's JobLimiter, so the order in which
   jobs entered the queue and the order in which they started are known server-side; FIFO = the same order.
   The queue order is also compared with the click order (the server may process two clicks a moment apart in
   either order; that is reported, not counted as unfair). Without the probe, start times come from the
   checkpoints (file time - training seconds in the metadata) and are compared with the click order.
5. Closes every context and browser, then samples memory until it is stable (at least TTL + 10 s, bounded by
   --settle, default 90 s) and compares it to the idle figure (target: within 10 %). Then the probe reports what
   is still held, and the memory after reaping expired sessions, after gc.collect() and after malloc_trim(0).
6. Errors (exception elements, error alerts, timeouts, page errors, tracebacks in the server log) must be none.

Prints a summary table and writes everything as JSON (--out). Bounded: every wait has a timeout and the whole run
has a hard --timeout (default 15 min), after which the server and the browsers are stopped.
This is a benchmark, not part of the test suite.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.harness import (CHROMIUM, CHROMIUM_ARGS, IDLE_JS, cpu_seconds, descendants, free_port,  # noqa: E402
                           health_ok, streamlit_args, tail)
VIEWPORT = {"width": 1400, "height": 900}
# Loopback only: Chromium resolves no host name (so no DNS query leaves the machine), and any request to a
# non-loopback http(s) address is aborted by Playwright and recorded (a classroom may have no internet).
LAUNCH_ARGS = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
EXTERNAL = re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/])")

# The explore tour, by sidebar label (the nav link's text), in order. Decode gets the slider moves.
# The Train page's data sets the trainers may pick, by the start of their label.
DATA_LABELS = {"digits": "Digits", "mnist": "MNIST"}

TOUR = ["Latent map", "Interpolate", "Decode", "Generate", "Latent pad", "Model library", "Lessons", "Welcome"]

# Idle, on the expected path, and the page title (first h1) is not the previous page's any more.
NAV_DONE_JS = """([path, oldTitle]) => {
  const idle = (%s)();
  if (!idle) return false;
  const here = location.pathname.replace(/\\/+$/, '') || '/';
  if (here !== path) return false;
  const h1 = document.querySelector('[data-testid="stMainBlockContainer"] h1');
  return !!(h1 && h1.innerText.trim() && h1.innerText.trim() !== oldTitle);
}""" % IDLE_JS

# Watches the Train page: every queue position shown, when training was first seen running, when it finished.
TRAIN_LOGGER_JS = """() => {
  const log = window.__train = {positions: [], firstRunning: null, finished: null, stopped: null, failed: null,
                                texts: []};
  const t0 = performance.timeOrigin;
  window.__trainTimer = setInterval(() => {
    const now = (t0 + performance.now()) / 1000;
    for (const el of document.querySelectorAll('[data-testid="stAlert"], [data-testid="stProgress"]')) {
      const text = el.innerText.trim();
      if (!text) continue;
      if (log.texts[log.texts.length - 1] !== text && log.texts.length < 400) log.texts.push(text);
      const m = text.match(/number (\\d+)\\s+in the queue/);
      if (m) { const p = +m[1]; if (log.positions[log.positions.length - 1] !== p) log.positions.push(p); }
      // (an alert's innerText starts with its icon's ligature name, e.g. "check_circle": no ^ anchors)
      if (/Epoch \\d+ of \\d+/.test(text) && log.firstRunning === null) log.firstRunning = now;
      if (/Finished:/.test(text) && log.finished === null) log.finished = now;
      if (/Stopped:/.test(text) && log.stopped === null) log.stopped = now;
      if (/training failed/i.test(text) && log.failed === null) log.failed = text;
    }
  }, 100);
}"""

# Times one slider key press inside the page: keydown -> the decoded image's src changes.
SLIDER_ARM_JS = """() => {
  const img = () => document.querySelector('.st-key-decoded img');
  const start = img() ? img().src : null;
  const rec = window.__slider = {down: null, img: null, start: start !== null};
  const onDown = () => { if (rec.down === null) rec.down = performance.now(); };
  document.addEventListener('keydown', onDown, {capture: true, once: true});
  const iv = setInterval(() => {
    const el = img();
    if (el && el.src !== start && rec.down !== null) { rec.img = performance.now(); clearInterval(iv); }
  }, 4);
  setTimeout(() => clearInterval(iv), 120000);
}"""

ERROR_ALERT_SEL = '[data-testid="stAlertContentError"]'
EXCEPTION_SEL = '[data-testid="stException"]'


# -- server ---------------------------------------------------------------------------------------------------------
PROBE_BOOT = r'''
import gc, json, os, sys, threading, time
def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
def _names(names):
    import re
    counts = {}
    for n in names:
        n = re.sub(r"[-_ ]?[0-9a-f]{6,}$|[-_ ]?\d+$", "", n) or n
        counts[n] = counts.get(n, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
def _stats(step):
    from streamlit.runtime import Runtime
    out = {"step": step, "rss_mb_self": round(_rss_kb() / 1024, 1), "threads": threading.active_count(),
           "python_threads": _names(t.name for t in threading.enumerate()),
           "os_threads": _names(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))}
    if Runtime.exists():
        rt = Runtime.instance()
        mgr = rt._session_mgr
        out["active_sessions"] = len(mgr.list_active_sessions())
        storage = getattr(mgr, "_session_storage", None)
        cache = getattr(storage, "_cache", None)
        data = getattr(cache, "_data", None)
        out["stored_disconnected_sessions"] = None if data is None else len(data)
        try:
            from streamlit.runtime.stats import CacheStat
            stats = rt.stats_mgr.get_stats()
            by = {}
            for group in (stats.values() if hasattr(stats, "values") else [stats]):
                for st_ in group:
                    if isinstance(st_, CacheStat):
                        key = f"{st_.category_name}:{st_.cache_name}"
                        by[key] = by.get(key, 0) + int(st_.byte_length)
            out["streamlit_cache_mb"] = {k: round(v / 2**20, 2) for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:15]}
            out["streamlit_cache_mb_total"] = round(sum(by.values()) / 2**20, 2)
        except Exception as exc:
            out["streamlit_cache_mb"] = f"n/a ({type(exc).__name__}: {exc})"
    if step in ("objects", "gc"):
        counts = {}
        tensors = {}
        try:
            import torch
        except Exception:
            torch = None

        def visit(o):
            name = type(o).__name__
            if name in ("AppSession", "TrainingJob", "ScriptRunner", "SessionState", "DataSplit"):
                counts[name] = counts.get(name, 0) + 1
            if torch is not None and isinstance(o, torch.Tensor):
                try:
                    storage = o.untyped_storage()
                    tensors[storage.data_ptr()] = storage.nbytes()
                except Exception:
                    pass
        _scan(visit)
        out["live_objects"] = counts
        out["torch_tensor_mb"] = round(sum(tensors.values()) / 2**20, 1)
    return out
def _scan(visit):
    """Visit every gc-tracked object. gc.get_objects() can hand out a tuple another thread is still building; if
    that thread runs while the list is held, its resize fails ("SystemError: bad argument to internal function").
    So no thread switch is allowed until the list is dropped (visit must not block or do I/O)."""
    import warnings
    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            objects = gc.get_objects()
            try:
                for o in objects:
                    visit(o)
            finally:
                o = None
                del objects
    finally:
        sys.setswitchinterval(old)
_watch = {"on": False, "log": [], "error": None}
def _queue_watch():
    """Server-side order of the training queue: when each job id is first seen waiting, and first seen running."""
    try:
        limiter, seen_q, seen_r = None, set(), set()
        while _watch["on"]:
            if limiter is None:  # the app's one JobLimiter (st.cache_resource), once the app has imported ui.training
                training = sys.modules.get("ui.training")
                limiter = training.job_limiter() if training is not None and hasattr(training, "job_limiter") else None
                if limiter is None:
                    time.sleep(0.5)
                    continue
            with limiter._cond:
                queued, running = list(limiter._queue), list(limiter._running)
            now = time.time()
            for jid in queued:
                if jid not in seen_q:
                    seen_q.add(jid); _watch["log"].append(["queued", now, jid])
            for jid in running:
                if jid not in seen_r:
                    seen_r.add(jid); _watch["log"].append(["running", now, jid])
            time.sleep(0.05)
    except Exception as exc:
        _watch["error"] = f"{type(exc).__name__}: {exc}"
def _probe(folder):
    while True:
        time.sleep(0.3)
        for req in sorted(os.listdir(folder)):
            if not req.endswith(".req"):
                continue
            path = os.path.join(folder, req)
            step = open(path).read().strip()
            os.remove(path)
            try:
                result = {}
                if step == "reap":
                    from streamlit.runtime import Runtime
                    cache = Runtime.instance()._session_mgr._session_storage._cache
                    result["reaped"] = len(cache.expire())
                elif step == "gc":
                    result["gc_collected"] = gc.collect()
                elif step == "queue_watch_start":
                    _watch["on"] = True
                    threading.Thread(target=_queue_watch, name="load-test-queue-watch", daemon=True).start()
                elif step == "queue_watch_result":
                    _watch["on"] = False
                    names = {}
                    _scan(lambda o: names.__setitem__(o.id, o.name) if type(o).__name__ == "TrainingJob" else None)
                    result["queue_log"] = [[kind, t, jid, names.get(jid)] for kind, t, jid in _watch["log"]]
                    result["queue_watch_error"] = _watch["error"]
                elif step == "trim":
                    import ctypes
                    before = _rss_kb()
                    result["malloc_trim"] = ctypes.CDLL("libc.so.6").malloc_trim(0)
                    result["trim_freed_mb"] = round((before - _rss_kb()) / 1024, 1)
                if not step.startswith("queue_"):
                    result.update(_stats(step))
            except Exception as exc:
                result = {"step": step, "error": f"{type(exc).__name__}: {exc}"}
            tmp = path[:-4] + ".tmp"
            with open(tmp, "w") as f:
                json.dump(result, f)
            os.replace(tmp, path[:-4] + ".json")
threading.Thread(target=_probe, args=(os.environ["LOAD_TEST_PROBE_DIR"],), name="load-test-probe", daemon=True).start()
from streamlit.web import cli
sys.argv = ["streamlit", "run", *sys.argv[1:]]
sys.exit(cli.main())
'''


VERBOSE = True
T_START = time.monotonic()


def say(text: str) -> None:
    if VERBOSE:
        print(f"[{time.monotonic() - T_START:6.1f}s] {text}", flush=True)


class Server:
    def __init__(self, root: Path, user_dir: Path, log_path: Path, ttl: int, max_jobs: int | None, probe: bool):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.user_dir, self.log_path, self.root = user_dir, log_path, root
        self.probe_dir = Path(tempfile.mkdtemp(prefix="load_test_probe_")) if probe else None
        env = {**os.environ, "LATENT_LAB_USER_DIR": str(user_dir), "PYTHONUNBUFFERED": "1"}
        if max_jobs:
            env["LATENT_LAB_MAX_JOBS"] = str(max_jobs)
        args = streamlit_args(self.port, "--server.disconnectedSessionTTL", str(ttl))
        if probe:
            env["LOAD_TEST_PROBE_DIR"] = str(self.probe_dir)
            cmd = [sys.executable, "-c", PROBE_BOOT, *args]
        else:
            cmd = [sys.executable, "-m", "streamlit", "run", *args]
        self.cmd = " ".join(cmd if not probe else [sys.executable, "-c", "<probe bootstrap: streamlit.web.cli.main()>", *args])
        with open(log_path, "wb") as log:
            self.started = time.monotonic()
            self.process = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_healthy(self, timeout: float = 90.0) -> float:
        deadline = time.monotonic() + timeout
        while not health_ok(f"{self.url}/_stcore/health"):
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited ({self.process.returncode}): {tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no health answer within {timeout:.0f} s: {tail(self.log_path)}")
            time.sleep(0.1)
        return time.monotonic() - self.started

    def probe(self, step: str, timeout: float = 60.0) -> dict:
        """Ask the probe thread inside the server for one step (stats, objects, reap, gc, trim)."""
        if self.probe_dir is None:
            return {"step": step, "error": "probe disabled (--no-probe)"}
        name = f"{time.monotonic_ns()}"
        (self.probe_dir / f"{name}.req").write_text(step)
        out = self.probe_dir / f"{name}.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if out.exists():
                return json.loads(out.read_text())
            time.sleep(0.1)
        return {"step": step, "error": f"no answer within {timeout:.0f} s"}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# -- memory and threads from /proc ------------------------------------------------------------------------------------
def _status(pid: int) -> tuple[int, int]:
    """(VmRSS kB, Threads) of one process, (0, 0) if gone."""
    rss = threads = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except OSError:
        pass
    return rss, threads


def tree_usage(pid: int) -> tuple[float, int, int]:
    """(RSS MB of the process and all its descendants, threads of the process itself, number of descendants)."""
    rss, threads = _status(pid)
    below = descendants(pid)
    return (rss + sum(_status(child)[0] for child in below)) / 1024, threads, len(below)


class Sampler(threading.Thread):
    """Samples the server's tree RSS, its thread count and its CPU use (cores busy since the last sample) every
    `period` s. A Python server near 1.0 core is GIL-bound; far below, the machine does not give it the CPU."""

    def __init__(self, pid: int, t0: float, period: float = 0.5):
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.t0, self.period = pid, t0, period
        self.samples: list[tuple[float, float, int, int]] = []  # (t, rss MB, threads, children)
        self.cpu: list[tuple[float, float]] = []  # (t, cores used over the last period)
        self.load: list[tuple[float, float]] = []  # (t, the machine's 1-minute load average): the run's context
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        last_t, last_cpu = time.monotonic(), cpu_seconds(self.pid, with_reaped_children=False)
        while not self.stop_event.is_set():
            rss, threads, kids = tree_usage(self.pid)
            now, cpu = time.monotonic(), cpu_seconds(self.pid, with_reaped_children=False)
            with self.lock:
                self.samples.append((now - self.t0, rss, threads, kids))
                if now > last_t:
                    self.cpu.append((now - self.t0, (cpu - last_cpu) / (now - last_t)))
                self.load.append((now - self.t0, os.getloadavg()[0]))
            last_t, last_cpu = now, cpu
            self.stop_event.wait(self.period)

    def window(self, start: float, end: float | None = None) -> list[tuple[float, float, int, int]]:
        end = float("inf") if end is None else end
        with self.lock:
            return [s for s in self.samples if start <= s[0] <= end]

    def cpu_window(self, start: float, end: float | None = None) -> list[float]:
        end = float("inf") if end is None else end
        with self.lock:
            return [c for t, c in self.cpu if start <= t <= end]

    def load_window(self, start: float, end: float | None = None) -> dict:
        """The 1-minute load average over a window: min, median, max."""
        end = float("inf") if end is None else end
        with self.lock:
            values = [v for t, v in self.load if start <= t <= end]
        return {"min": min(values), "median": round(statistics.median(values), 2), "max": max(values)} if values else {}

    def now(self) -> float:
        return time.monotonic() - self.t0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# -- one student ------------------------------------------------------------------------------------------------------
class Student:
    def __init__(self, index: int, kind: str, trainer: bool, arrive_at: float):
        self.index, self.kind, self.trainer, self.arrive_at = index, kind, trainer, arrive_at
        self.name = f"s{index:02d}"
        self.navs: list[dict] = []
        self.sliders: list[dict] = []
        self.errors: list[str] = []
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.blocked: list[str] = []
        self.train: dict = {}
        self.done = False
        self.context = None
        self.page = None

    def record(self) -> dict:
        return {"name": self.name, "kind": self.kind, "trainer": self.trainer, "arrive_at": round(self.arrive_at, 2),
                "navs": self.navs, "sliders": self.sliders, "errors": self.errors, "page_errors": self.page_errors,
                "console_errors": self.console_errors[:20], "blocked_external_requests": self.blocked, "train": self.train, "done": self.done}


async def wait_idle(page, timeout_s: float) -> None:
    """Idle twice, a few frames apart (the gap between a run and the rerun it triggers is not idleness)."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = max(0.5, deadline - time.monotonic())
        await page.wait_for_function(IDLE_JS, timeout=remaining * 1000, polling=50)
        await page.wait_for_timeout(150)
        if await page.evaluate(IDLE_JS):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not become idle")


async def check_page(student: Student, where: str) -> None:
    page = student.page
    n_exc = await page.locator(EXCEPTION_SEL).count()
    if n_exc:
        text = (await page.locator(EXCEPTION_SEL).first.inner_text())[:300]
        student.errors.append(f"{where}: exception element: {text}")
    n_err = await page.locator(ERROR_ALERT_SEL).count()
    if n_err:
        text = (await page.locator(ERROR_ALERT_SEL).first.inner_text())[:300]
        student.errors.append(f"{where}: error alert: {text}")


async def title(page) -> str:
    h1 = page.locator('[data-testid="stMainBlockContainer"] h1').first
    try:
        return (await h1.inner_text(timeout=2_000)).strip()
    except Exception:
        return ""


async def navigate(student: Student, label: str, timeout_s: float) -> bool:
    """Click a sidebar nav link and time click -> idle on the new page (title changed)."""
    page = student.page
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=label, exact=True)
    try:
        href = await link.get_attribute("href", timeout=timeout_s * 1000)
        path = re.sub(r"^https?://[^/]+", "", href or "").split("?")[0].rstrip("/") or "/"
        old = await title(page)
        t0 = time.monotonic()
        await link.click(timeout=timeout_s * 1000)
        await page.wait_for_function(NAV_DONE_JS, arg=[path, old], timeout=timeout_s * 1000, polling=50)
        await page.wait_for_timeout(150)
        await wait_idle(page, timeout_s)
        seconds = time.monotonic() - t0 - 0.15  # the 150 ms settle check is not the app's time
        student.navs.append({"page": label, "seconds": round(seconds, 3), "at": round(time.time(), 2)})
        await check_page(student, label)
        return True
    except Exception as exc:
        student.errors.append(f"{label}: navigation: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return False


async def move_slider(student: Student, presses: int, timeout_s: float) -> None:
    page = student.page
    # The Decode page opens on the latent pad, which decodes in the browser and asks nothing of the server while
    # it moves; the server's work is the Streamlit slider path, so the student switches to it.
    toggle = page.get_by_label("Decode in the browser", exact=True)
    if await toggle.count() and await toggle.is_checked():
        await page.get_by_text("Decode in the browser", exact=True).click(timeout=timeout_s * 1000)
        await page.wait_for_timeout(150)
        await wait_idle(page, timeout_s)
    thumb = page.get_by_role("slider", name="z[0]")
    if not await thumb.count():
        thumb = page.locator('[role="slider"]')
    if not await thumb.count():
        student.errors.append("Decode: no slider found")
        return
    thumb = thumb.first
    for k in range(presses):
        try:
            await page.evaluate(SLIDER_ARM_JS)
            await thumb.focus(timeout=timeout_s * 1000)
            t0 = time.monotonic()
            await thumb.press("ArrowRight", timeout=timeout_s * 1000)
            await page.wait_for_function("() => window.__slider.img !== null", timeout=timeout_s * 1000, polling=20)
            rec = await page.evaluate("window.__slider")
            img_s = (rec["img"] - rec["down"]) / 1000
            await wait_idle(page, timeout_s)
            idle_s = time.monotonic() - t0 - 0.15
            student.sliders.append({"to_image_s": round(img_s, 3), "to_idle_s": round(max(idle_s, img_s), 3)})
        except Exception as exc:
            student.errors.append(f"Decode slider press {k + 1}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            return
        await page.wait_for_timeout(300)
    await check_page(student, "Decode (after slider)")


async def set_epochs(page, epochs: int, timeout_s: float) -> None:
    thumb = page.locator('[data-testid="stSlider"] input[type="range"][aria-label="Epochs"]')
    if not await thumb.count():
        thumb = page.get_by_role("slider", name="Epochs")
    await thumb.focus(timeout=timeout_s * 1000)
    await thumb.press("Home")
    for _ in range(epochs - 1):
        await thumb.press("ArrowRight")
    value = page.get_by_test_id("stSlider").filter(has=page.locator('[aria-label="Epochs"]')).get_by_test_id(
        "stSliderThumbValue")
    await page.wait_for_function("([el, v]) => el && el.innerText.trim() === v", arg=[await value.element_handle(),
                                                                                       str(epochs)],
                                 timeout=timeout_s * 1000)
    await thumb.blur()
    await wait_idle(page, timeout_s)


async def choose_data(page, data: str, timeout_s: float) -> None:
    """Pick the Train page's data set by its label's first word (the page opens on MNIST)."""
    box = page.get_by_label("Data", exact=True)
    await box.click(timeout=timeout_s * 1000)
    await page.get_by_role("option", name=re.compile("^" + re.escape(DATA_LABELS[data]))).click(
        timeout=timeout_s * 1000)
    await wait_idle(page, timeout_s)


async def prepare_training(student: Student, data: str, epochs: int, timeout_s: float) -> bool:
    page = student.page
    if not await navigate(student, "Train a model", timeout_s):
        return False
    try:
        if data != "mnist":
            await choose_data(page, data, timeout_s)
        await set_epochs(page, epochs, timeout_s)
        box = page.get_by_label("Model name", exact=True)
        await box.fill(f"load {student.name}", timeout=timeout_s * 1000)
        await box.press("Enter")
        await wait_idle(page, timeout_s)
        await page.evaluate(TRAIN_LOGGER_JS)
        return True
    except Exception as exc:
        student.errors.append(f"Train: settings: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return False


async def train(student: Student, click_at: float, deadline: float, train_timeout: float) -> None:
    page = student.page
    await asyncio.sleep(max(0.0, click_at - time.monotonic()))
    button = page.get_by_role("button", name="Start training")
    try:
        student.train["clicked_at"] = time.time()
        await button.click(timeout=30_000)
        limit = min(train_timeout, max(1.0, deadline - time.monotonic()))
        await page.wait_for_function("() => window.__train.finished || window.__train.stopped || window.__train.failed",
                                     timeout=limit * 1000, polling=250)
    except Exception as exc:
        student.errors.append(f"Train: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    try:
        log = await page.evaluate("window.__train")
        student.train.update({k: log[k] for k in ("positions", "firstRunning", "finished", "stopped", "failed")})
        student.train["texts_seen"] = len(log["texts"])
        if log["failed"] or log["stopped"]:
            student.errors.append(f"Train: not finished: {log['failed'] or 'stopped'}")
        await page.evaluate("clearInterval(window.__trainTimer)")
        await wait_idle(page, 60)
        await check_page(student, "Train (finished)")
    except Exception as exc:
        student.errors.append(f"Train (after): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


async def guard(context, blocked: list[str]) -> None:
    async def abort(route):
        if len(blocked) < 50:
            blocked.append(route.request.url[:200])
        await route.abort()

    await context.route(EXTERNAL, abort)


async def run_student(student: Student, browser, server_url: str, t0: float, args, bell: "TrainBell",
                      deadline: float) -> None:
    await asyncio.sleep(max(0.0, t0 + student.arrive_at - time.monotonic()))
    student.context = await browser.new_context(viewport=VIEWPORT)
    student.context.set_default_timeout(args.step_timeout * 1000)
    await guard(student.context, student.blocked)
    page = student.page = await student.context.new_page()
    page.on("pageerror", lambda exc: student.page_errors.append(str(exc)[:300]))
    page.on("console", lambda msg: student.console_errors.append(msg.text[:200]) if msg.type == "error" else None)
    try:
        t = time.monotonic()
        await page.goto(server_url, timeout=args.step_timeout * 1000)
        await wait_idle(page, args.step_timeout)
        student.navs.append({"page": "open /", "seconds": round(time.monotonic() - t - 0.15, 3),
                             "at": round(time.time(), 2)})
        await check_page(student, "open /")
        say(f"{student.name} ({student.kind}{', trainer' if student.trainer else ''}): opened in {student.navs[-1]['seconds']:.1f} s")
        if student.trainer:
            ready = await prepare_training(student, args.data, args.epochs, args.step_timeout)
            click_at = await bell.ready(student, ready)
            if ready:
                say(f"{student.name}: Start training")
                await train(student, click_at, deadline, args.train_timeout)
                say(f"{student.name}: training ended {student.train.get('positions')} "
                    f"{'finished' if student.train.get('finished') else 'NOT finished'}")
        for label in TOUR:
            if time.monotonic() > deadline:
                student.errors.append("deadline reached before the tour ended")
                break
            if await navigate(student, label, args.step_timeout) and label == "Decode":
                await move_slider(student, args.slider_presses, args.step_timeout)
        student.done = True
        say(f"{student.name}: tour done, {len(student.errors)} error(s)")
    except Exception as exc:
        student.errors.append(f"session: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        if student.trainer and not bell.was_counted(student):
            bell.give_up(student)


# -- the lighter student: Streamlit's own websocket protocol, no browser ------------------------------------------------
class WsClient:
    """A Streamlit session driven over its websocket protocol (protobuf BackMsg / ForwardMsg), as the frontend does:
    rerun requests with widget states, page switches by page hash, fragment auto-reruns (run_every), the query
    string the app writes. It renders nothing, so the server does the same work for it as for a browser while the
    client costs almost no CPU. "Idle" = the server reported the run finished."""

    def __init__(self, student: Student, url: str):
        self.student, self.url = student, url.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = None
        self.pages: dict[str, tuple[str, str]] = {}  # page name -> (page_script_hash, url_pathname)
        self.page_hash = ""
        self.query_string = ""
        self.widgets: dict[str, tuple[str, object, str]] = {}  # label -> (kind, element proto, fragment id)
        self.states: dict[str, object] = {}  # widget id -> WidgetState sent with every rerun
        self.finished: asyncio.Queue = asyncio.Queue()
        self.on_image = None  # callback(caption) for the slider timing
        self.texts: list[tuple[float, str]] = []  # alerts and progress texts, with the time seen
        self.auto: dict[str, asyncio.Task] = {}  # fragment id -> auto-rerun task
        self.reader = None

    async def connect(self) -> None:
        import websockets

        self.ws = await websockets.connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=60,
                                           ping_interval=None)
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        for task in self.auto.values():
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        async for data in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            if kind == "delta":
                self._delta(msg.delta)
            elif kind == "navigation":
                self.pages = {p.page_name: (p.page_script_hash, p.url_pathname) for p in msg.navigation.app_pages}
                self.page_hash = msg.navigation.page_script_hash or self.page_hash
            elif kind == "page_info_changed":
                self.query_string = msg.page_info_changed.query_string
            elif kind == "new_session":  # a whole-page run starts (fragment runs send none)
                self.finished.put_nowait((time.monotonic(), "STARTED", msg.new_session.page_script_hash))
            elif kind == "script_finished":
                self.finished.put_nowait((time.monotonic(), ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished),
                                          None))
            elif kind == "auto_rerun":
                fid = msg.auto_rerun.fragment_id
                if fid not in self.auto:
                    self.auto[fid] = asyncio.create_task(self._auto(fid, msg.auto_rerun.interval))
            elif kind == "stop_auto_rerun":
                for task in self.auto.values():
                    task.cancel()
                self.auto.clear()

    def _delta(self, delta) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        now = time.time()
        if kind in ("slider", "button", "text_input", "selectbox", "number_input"):
            self.widgets[getattr(el, kind).label] = (kind, getattr(el, kind), delta.fragment_id)
        elif kind == "alert":
            self.texts.append((now, el.alert.body))
            if el.alert.format == 1:  # ERROR
                self.student.errors.append(f"error alert: {el.alert.body[:300]}")
        elif kind == "progress":
            self.texts.append((now, el.progress.text))
        elif kind == "exception":
            self.student.errors.append(f"exception element: {el.exception.type}: {el.exception.message[:300]}")
        elif kind == "imgs" and self.on_image is not None:
            for img in el.imgs.imgs:
                self.on_image(img.caption)

    async def _auto(self, fragment_id: str, interval: float) -> None:
        """The frontend's run_every timer for one fragment (the Train page's live view)."""
        while True:
            await asyncio.sleep(interval)
            await self.rerun(fragment_id=fragment_id, auto=True)

    async def rerun(self, page: str | None = None, fragment_id: str = "", auto: bool = False,
                    widgets: list | None = None) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        cs = msg.rerun_script
        if page is not None:
            self.page_hash, path = self.pages[page]
            for task in self.auto.values():  # a page switch ends the old page's timers
                task.cancel()
            self.auto.clear()
            self.states.clear()
            cs.page_name = path
        cs.page_script_hash = self.page_hash
        cs.query_string = self.query_string
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        for state in widgets or []:
            if not state.HasField("trigger_value"):
                self.states[state.id] = state
        sent = {st_.id for st_ in widgets or []}
        cs.widget_states.widgets.extend([*(widgets or []), *(v for k, v in self.states.items() if k not in sent)])
        await self.ws.send(msg.SerializeToString())

    def drain(self) -> None:
        while not self.finished.empty():
            self.finished.get_nowait()

    async def wait_run(self, timeout_s: float, full: bool = True, page_hash: str | None = None) -> float:
        """Wait for the end of the run asked for; its monotonic time. full: a whole-page run, which must have started
        after the request (on page `page_hash` if given); else a fragment run. A run that asks for another
        (st.rerun) ends "early for rerun": then the follow-up run is waited for too."""
        deadline = time.monotonic() + timeout_s
        started = not full

        async def get(timeout):
            return await asyncio.wait_for(self.finished.get(), max(0.05, timeout))

        while True:
            t, status, page = await get(deadline - time.monotonic())
            if status == "STARTED":
                started = started or page_hash is None or page == page_hash
                continue
            if not started:
                continue
            if status == "FINISHED_SUCCESSFULLY" or (not full and status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"):
                try:  # a run started right after this one (the app's own st.rerun) belongs to the same step
                    t2, status2, _ = await get(0.3)
                    if status2 in ("STARTED", "FINISHED_EARLY_FOR_RERUN"):
                        continue
                    return t
                except asyncio.TimeoutError:
                    return t


def widget_state(element, kind: str, value=None, trigger: bool = False):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    state = WidgetState(id=element.id)
    if trigger:
        state.trigger_value = True
    elif kind == "slider":
        state.double_array_value.data.extend(value)
    elif kind in ("text_input", "selectbox"):  # a selectbox's value is its option's text
        state.string_value = value
    return state


async def ws_navigate(client: WsClient, student: Student, label: str, timeout_s: float) -> bool:
    try:
        client.drain()
        t0 = time.monotonic()
        name = ws_page_name(client, label)
        # On Decode, the link's `decoder=server` gives the Streamlit sliders (the pad decodes in the browser).
        linked, client.query_string = client.query_string, ("decoder=server" if label == "Decode" else client.query_string)
        try:
            await client.rerun(page=name)
        finally:
            client.query_string = linked
        t1 = await client.wait_run(timeout_s, page_hash=client.pages[name][0])
        student.navs.append({"page": label, "seconds": round(t1 - t0, 3), "at": round(time.time(), 2)})
        return True
    except Exception as exc:
        student.errors.append(f"{label}: navigation: {type(exc).__name__}: {str(exc)[:200]}")
        return False


def ws_page_name(client: WsClient, label: str) -> str:
    """The page's name in the navigation message for a sidebar label (Streamlit names pages by their title)."""
    if label in client.pages:
        return label
    raise KeyError(f"no page {label!r} in {sorted(client.pages)}")


async def ws_slider(client: WsClient, student: Student, presses: int, timeout_s: float) -> None:
    found = client.widgets.get("z[0]")
    if not found:
        student.errors.append("Decode: no z[0] slider")
        return
    kind, element, fragment = found
    value = list(element.value) or list(element.default)
    for k in range(presses):
        value = [min(element.max, round(value[0] + element.step, 4))]
        seen = asyncio.Event()
        client.on_image = lambda caption: seen.set() if caption.startswith("The decoder") else None
        client.drain()
        try:
            t0 = time.monotonic()
            await client.rerun(fragment_id=fragment, widgets=[widget_state(element, kind, value)])
            await asyncio.wait_for(seen.wait(), timeout_s)
            t_img = time.monotonic()
            t_end = await client.wait_run(timeout_s, full=not fragment)
            student.sliders.append({"to_image_s": round(t_img - t0, 3), "to_idle_s": round(max(t_end, t_img) - t0, 3)})
        except Exception as exc:
            student.errors.append(f"Decode slider press {k + 1}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        finally:
            client.on_image = None
        await asyncio.sleep(0.3)


async def ws_choose_data(client: WsClient, student: Student, data: str, timeout_s: float) -> bool:
    """Pick the Train page's data set (the page then redraws its settings for it)."""
    try:
        kind, element, _ = client.widgets["Data"]
        option = next(o for o in element.options if o.startswith(DATA_LABELS[data]))
        client.drain()
        await client.rerun(widgets=[widget_state(element, kind, option)])
        await client.wait_run(timeout_s)
        return True
    except Exception as exc:
        student.errors.append(f"Train: data {data}: {type(exc).__name__}: {str(exc)[:200]}")
        return False


async def ws_train(client: WsClient, student: Student, args, bell: "TrainBell", deadline: float) -> None:
    ready = await ws_navigate(client, student, "Train a model", args.step_timeout)
    if ready and args.data != "mnist":
        ready = await ws_choose_data(client, student, args.data, args.step_timeout)
    widgets = [client.widgets.get(k) for k in ("Epochs", "Model name", "Start training")]
    if ready and not all(widgets):
        student.errors.append(f"Train: widgets not found: {[k for k, w in zip(('Epochs', 'Model name', 'Start training'), widgets) if not w]}")
        ready = False
    say(f"{student.name}: ready to train" if ready else f"{student.name}: NOT ready to train")
    click_at = await bell.ready(student, ready)
    if not ready:
        return
    (ek, epochs_el, _), (nk, name_el, _), (bk, button_el, _) = widgets
    await asyncio.sleep(max(0.0, click_at - time.monotonic()))
    mark = len(client.texts)
    student.train["clicked_at"] = time.time()
    await client.rerun(widgets=[widget_state(epochs_el, ek, [float(args.epochs)]),
                                widget_state(name_el, nk, f"load {student.name}"),
                                widget_state(button_el, bk, trigger=True)])
    positions: list[int] = []
    limit = time.monotonic() + min(args.train_timeout, max(1.0, deadline - time.monotonic()))
    while time.monotonic() < limit:
        for t, text in client.texts[mark:]:
            m = re.search(r"number (\d+)\s+in the queue", text)
            if m and (not positions or positions[-1] != int(m.group(1))):
                positions.append(int(m.group(1)))
            if re.search(r"Epoch \d+ of \d+", text) and "firstRunning" not in student.train:
                student.train["firstRunning"] = t
            if "Finished:" in text:
                student.train["finished"] = t
            if "Stopped:" in text or "training failed" in text.lower():
                student.train["stopped"] = text[:200]
        mark = len(client.texts)
        if student.train.get("finished") or student.train.get("stopped"):
            break
        await asyncio.sleep(0.25)
    student.train["positions"] = positions
    if not student.train.get("finished"):
        student.errors.append(f"Train: not finished ({student.train.get('stopped') or 'timeout'})")
    try:
        await client.wait_run(30)  # the app's own rerun after the job ended (the picker lists the new model)
    except asyncio.TimeoutError:
        pass
    say(f"{student.name}: training ended {positions} {'finished' if student.train.get('finished') else 'NOT finished'}")


async def run_ws_student(student: Student, server_url: str, t0: float, args, bell: "TrainBell",
                         deadline: float) -> None:
    await asyncio.sleep(max(0.0, t0 + student.arrive_at - time.monotonic()))
    client = WsClient(student, server_url)
    student.context = client
    try:
        t = time.monotonic()
        await client.connect()
        await client.rerun()
        await client.wait_run(args.step_timeout)
        student.navs.append({"page": "open /", "seconds": round(time.monotonic() - t, 3), "at": round(time.time(), 2)})
        say(f"{student.name} ({student.kind}{', trainer' if student.trainer else ''}): opened in "
            f"{student.navs[-1]['seconds']:.1f} s")
        if student.trainer:
            await ws_train(client, student, args, bell, deadline)
        for label in TOUR:
            if time.monotonic() > deadline:
                student.errors.append("deadline reached before the tour ended")
                break
            if await ws_navigate(client, student, label, args.step_timeout) and label == "Decode":
                await ws_slider(client, student, args.slider_presses, args.step_timeout)
        student.done = True
        say(f"{student.name}: tour done, {len(student.errors)} error(s)")
    except Exception as exc:
        student.errors.append(f"session: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        if student.trainer and not bell.was_counted(student):
            bell.give_up(student)


class TrainBell:
    """Trainers wait until all are ready (bounded), then click one after another, `gap` s apart, in arrival order."""

    def __init__(self, trainers: int, gap: float, timeout: float):
        self.expected, self.gap, self.timeout = trainers, gap, timeout
        self.arrived: list[Student | None] = []
        self.counted: set[int] = set()
        self.event = asyncio.Event()
        self.rung_at: float | None = None
        self.order: list[str] = []

    def was_counted(self, student: Student) -> bool:
        return id(student) in self.counted

    def give_up(self, student: Student) -> None:
        """A trainer that failed before the bell: count it as arrived so the others do not wait for it."""
        self.counted.add(id(student))
        self.arrived.append(None)
        if len(self.arrived) >= self.expected:
            self.ring()

    async def ready(self, student: Student, is_ready: bool) -> float:
        rank = len([s for s in self.arrived if s is not None])
        self.counted.add(id(student))
        self.arrived.append(student if is_ready else None)
        if is_ready:
            self.order.append(student.name)
        if len(self.arrived) >= self.expected:
            self.ring()
        try:
            await asyncio.wait_for(self.event.wait(), self.timeout)
        except asyncio.TimeoutError:
            self.ring()
        return self.rung_at + rank * self.gap

    def ring(self) -> None:
        if self.rung_at is None:
            self.rung_at = time.monotonic() + 0.5
            self.event.set()


def make_class(args) -> list[Student]:
    """The students, arriving evenly over the ramp. --browsers of them (spread over the arrival order) get a Chromium
    of their own; the others are --light clients. Trainers: every other own-Chromium student, the rest spread over
    the light clients, so both kinds train."""
    n = args.sessions
    own = sorted({round(i * n / args.browsers) for i in range(args.browsers)}) if args.browsers else []
    light = [i for i in range(n) if i not in own]
    trainers = set(own[::2][:args.trainers])
    rest = args.trainers - len(trainers)
    if rest > 0 and light:
        trainers |= {light[round(k * len(light) / rest)] for k in range(rest) if round(k * len(light) / rest) < len(light)}
    for i in range(n):  # rounding collisions: top up in arrival order
        if len(trainers) >= args.trainers:
            break
        trainers.add(i)
    light_kind = "websocket-protocol" if args.light == "ws" else "shared-chromium-context"
    return [Student(i, "own-chromium" if i in own else light_kind, i in trainers, args.ramp * i / max(1, n - 1))
            for i in range(n)]


async def run_class(args, server: Server, sampler: Sampler, deadline: float, students: list[Student],
                    phases: dict) -> None:
    from playwright.async_api import async_playwright

    own = {s.index for s in students if s.kind == "own-chromium"}
    any_shared = any(s.kind == "shared-chromium-context" for s in students)
    bell = TrainBell(sum(s.trainer for s in students), args.click_gap, timeout=args.ramp + 4 * args.step_timeout)
    async with async_playwright() as p:
        launch = dict(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        shared = await p.chromium.launch(**launch) if any_shared else None
        owns = {i: await p.chromium.launch(**launch) for i in sorted(own)}
        try:
            phases["queue_watch"] = await asyncio.to_thread(server.probe, "queue_watch_start")
            phases["class_start"] = sampler.now()
            t0 = time.monotonic()
            tasks = [asyncio.create_task(
                run_ws_student(s, server.url, t0, args, bell, deadline) if s.kind == "websocket-protocol" else
                run_student(s, owns.get(s.index, shared), server.url, t0, args, bell, deadline)) for s in students]
            remaining = max(1.0, deadline - time.monotonic())
            done, pending = await asyncio.wait(tasks, timeout=remaining)
            for task in pending:
                task.cancel()
            for s, task in zip(students, tasks):
                if task in pending:
                    s.errors.append("hard deadline: session cancelled")
            phases["class_end"] = sampler.now()
            phases["queue_log"] = (await asyncio.to_thread(server.probe, "queue_watch_result")).get("queue_log")
            phases["bell_order"] = bell.order
            phases["bell_rung_s_after_class_start"] = (round(bell.rung_at - t0, 2) if bell.rung_at else None)
        finally:
            for s in students:
                if s.context is not None:
                    try:
                        await s.context.close()
                    except Exception:
                        pass
            for b in [shared, *owns.values()]:
                if b is None:
                    continue
                try:
                    await b.close()
                except Exception:
                    pass
            phases["closed"] = sampler.now()


async def warm_up(server: Server, timeout_s: float, tour: bool) -> dict:
    """One page load of `/` (tour=False), or one student's whole tour without training (tour=True)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        student = Student(-1, "warm-up", False, 0.0)
        student.name = "warm-up tour" if tour else "warm-up"
        try:
            context = await browser.new_context(viewport=VIEWPORT)
            await guard(context, student.blocked)
            student.context, student.page = context, await context.new_page()
            page = student.page
            page.on("pageerror", lambda exc: student.page_errors.append(str(exc)[:300]))
            t = time.monotonic()
            await page.goto(server.url, timeout=timeout_s * 1000)
            await wait_idle(page, timeout_s)
            seconds = time.monotonic() - t
            exceptions = await page.locator(EXCEPTION_SEL).count()
            text = (await page.locator(EXCEPTION_SEL).first.inner_text())[:400] if exceptions else ""
            links = await page.get_by_test_id("stSidebarNavLink").all_inner_texts()
            if tour and not exceptions:
                for label in ["Train a model", *TOUR]:
                    if await navigate(student, label, timeout_s) and label == "Decode":
                        await move_slider(student, 1, timeout_s)
            await context.close()
        finally:
            await browser.close()
    return {"seconds": round(seconds, 2), "exceptions": exceptions, "exception_text": text,
            "nav": [x.split("\n")[-1].strip() for x in links], "record": student.record()}


# -- analysis ---------------------------------------------------------------------------------------------------------
def job_timeline(user_dir: Path) -> dict[str, dict]:
    """Server-side start/finish of each trained model (by trainer name), from the saved checkpoints."""
    import torch

    out = {}
    for path in Path(user_dir).rglob("load-s*.pt"):
        try:
            meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
        except Exception as exc:  # noqa: BLE001
            out[path.stem] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        finish = path.stat().st_mtime
        name = meta.get("name", path.stem).replace("load ", "")
        out[name] = {"finish": finish, "start": finish - float(meta.get("seconds", 0.0)), "status": meta.get("status"),
                     "epochs": len(meta.get("history", [])), "samples_per_s": meta.get("samples_per_s"),
                     "folder": path.parent.name}
    return out


def fairness(students: list[Student], jobs: dict[str, dict], cap: int, queue_log: list | None) -> dict:
    """First come, first served: jobs start in the order the server queued them (server-side, from the probe's
    watch of the JobLimiter), and that order follows the students' click order up to the server's jitter."""
    clicked = sorted((s.train["clicked_at"], s.name) for s in students if s.trainer and "clicked_at" in s.train)
    click_order = [name for _, name in clicked]
    click_time = {name: t for t, name in clicked}
    finish_order = [name for _, name in sorted((j["finish"], name) for name, j in jobs.items() if "finish" in j)]
    out = {"cap": cap, "click_order": click_order, "finish_order": finish_order,
           "click_span_s": round(clicked[-1][0] - clicked[0][0], 2) if clicked else None}
    if not queue_log:
        # Without the probe: start times from the checkpoints (finish - training seconds) against click order.
        start_order = [n for _, n in sorted((j["start"], n) for n, j in jobs.items() if "start" in j)]
        out.update(start_order=start_order, source="checkpoints (no probe)",
                   fair=start_order == [n for n in click_order if n in start_order])
        return out
    queued, running = {}, {}
    for kind, t, _jid, name in queue_log:
        name = (name or "").replace("load ", "")
        (queued if kind == "queued" else running).setdefault(name, t)
    for name, t in running.items():  # a job that found a free slot never waits: queued = started
        queued.setdefault(name, t)
    enqueue_order = [n for _, n in sorted((t, n) for n, t in queued.items())]
    start_order = [n for _, n in sorted((t, n) for n, t in running.items())]
    # FIFO broken: a job started while one queued before it (more than one sampling tick, 50 ms, earlier) waited.
    violations = [{"queued_first": a, "queued_later": b, "started_first": b,
                   "queued_gap_s": round(queued[b] - queued[a], 3)}
                  for a in enqueue_order for b in enqueue_order
                  if a in running and b in running and queued[a] < queued[b] - 0.1 and running[b] < running[a] - 0.1]
    click_vs_queue = [{"clicked_first": a, "queued_first": b, "click_gap_s": round(click_time[b] - click_time[a], 3)}
                      for i, a in enumerate(click_order) for b in click_order[i + 1:]
                      if a in queued and b in queued and queued[b] < queued[a]]
    waited = {n: round(running[n] - queued[n], 2) for n in running}
    out.update(source="server (JobLimiter watched by the probe)", enqueue_order=enqueue_order, start_order=start_order,
               fifo_violations=violations, fair=not violations and len(running) == len(queued),
               queue_order_differs_from_click_order=click_vs_queue, waited_in_queue_s=waited)
    return out


def server_log_problems(path: Path) -> dict:
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    tracebacks = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    excerpts = ["\n".join(lines[i:i + 25])[-1500:] for i in tracebacks[:5]]
    errors = [line for line in lines if re.search(r"\b(ERROR|CRITICAL)\b|Exception|Error:", line)
              and not line.startswith("  ")][:20]
    return {"tracebacks": len(tracebacks), "traceback_excerpts": excerpts, "error_lines": errors}


def settle(sampler: Sampler, since: float, min_wait: float, max_wait: float, window: float = 10.0,
           tolerance: float = 0.01) -> dict:
    """Sample until min_wait has passed and the last `window` s of RSS vary by < tolerance (bounded by max_wait)."""
    while True:
        waited = sampler.now() - since
        recent = sampler.window(sampler.now() - window)
        if waited >= min_wait and len(recent) >= window / sampler.period * 0.8:
            values = [r for _, r, _, _ in recent]
            if (max(values) - min(values)) / max(values) < tolerance:
                return {"stable": True, "waited_s": round(waited, 1), "rss_mb": round(statistics.median(values), 1),
                        "threads": recent[-1][2]}
        if waited >= max_wait:
            values = [r for _, r, _, _ in recent] or [0.0]
            return {"stable": False, "waited_s": round(waited, 1), "rss_mb": round(statistics.median(values), 1),
                    "threads": recent[-1][2] if recent else None}
        time.sleep(0.5)


def rss_after(sampler: Sampler, seconds: float = 3.0) -> float:
    start = sampler.now()
    time.sleep(seconds)
    values = [r for _, r, _, _ in sampler.window(start)]
    return round(statistics.median(values), 1) if values else float("nan")


# -- main -------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=30, help="students (browser sessions) in the class")
    ap.add_argument("--browsers", type=int, default=5, help="students with a Chromium of their own (the others share one)")
    ap.add_argument("--trainers", type=int, default=10, help="students who train a model (--data)")
    ap.add_argument("--light", choices=["ws", "context"], default="ws",
                    help="the other students: Streamlit's websocket protocol (default) or contexts in one shared "
                         "Chromium (measured too heavy on a 2-core machine: their page loads timed out)")
    ap.add_argument("--data", choices=sorted(DATA_LABELS), default="digits",
                    help="what the trainers train on: the 8x8 digits (default: seconds of CPU each, so the test "
                         "measures serving a class while 20 train) or MNIST, the page's default (5 epochs: ~40 s of "
                         "one core each)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of each training run")
    ap.add_argument("--ramp", type=float, default=15.0, help="seconds over which the class arrives")
    ap.add_argument("--click-gap", type=float, default=1.0, help="seconds between the trainers' Start clicks")
    ap.add_argument("--slider-presses", type=int, default=3, help="ArrowRight presses on the Decode slider")
    ap.add_argument("--ttl", type=int, default=15, help="--server.disconnectedSessionTTL (s)")
    ap.add_argument("--max-jobs", type=int, default=None, help="LATENT_LAB_MAX_JOBS (default: the app's, = cores)")
    ap.add_argument("--step-timeout", type=float, default=90.0, help="timeout of one page step (s)")
    ap.add_argument("--train-timeout", type=float, default=420.0, help="max wait for one training to finish (s)")
    ap.add_argument("--quiet", action="store_true", help="no per-session progress lines")
    ap.add_argument("--settle", type=float, default=90.0, help="max seconds to wait for memory to settle after close")
    ap.add_argument("--timeout", type=float, default=900.0, help="hard timeout of the whole run (s)")
    ap.add_argument("--no-tour", action="store_true", help="skip the warm-up tour baseline before the class")
    ap.add_argument("--keep", action="store_true", help="keep the temporary user folder (trained models)")
    ap.add_argument("--no-probe", action="store_true", help="plain `streamlit run` (no in-server memory probe)")
    ap.add_argument("--cluster", type=int, default=0, metavar="N",
                    help="through nginx to N replicas training on Ray: `./run.sh cluster up --replicas N` on free "
                         "ports (bench/cluster_server.py); 0 (default): one `streamlit run` as above")
    # The app tree: this checkout, or LATENT_LAB_APP_DIR (as tests/browser/conftest.py) for a patched copy.
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("LATENT_LAB_APP_DIR", ROOT)),
                    help="the app's folder (default: $LATENT_LAB_APP_DIR or this checkout)")
    ap.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "load_test.json")
    args = ap.parse_args(argv)
    args.browsers = min(args.browsers, args.sessions)
    args.trainers = min(args.trainers, args.sessions)
    if args.cluster:
        args.no_probe = True  # the probe lives in one server process; the cluster is measured from outside
    return args


def main(argv=None) -> int:
    global VERBOSE
    args = parse_args(argv)
    VERBOSE = not args.quiet
    started = time.monotonic()
    hard_deadline = started + args.timeout
    args.out.parent.mkdir(parents=True, exist_ok=True)
    user_dir = Path(tempfile.mkdtemp(prefix="latent_lab_load_users_"))
    log_path = args.out.with_name("load_test_server.log")
    cores = os.cpu_count() or 1
    cap = args.max_jobs or cores
    report: dict = {
        "config": {"sessions": args.sessions, "own_chromium": args.browsers,
                   "light_clients": f"{args.sessions - args.browsers} x "
                                    f"{'websocket protocol' if args.light == 'ws' else 'shared-Chromium context'}", "trainers": args.trainers,
                   "data": args.data, "epochs": args.epochs, "ramp_s": args.ramp, "click_gap_s": args.click_gap,
                   "disconnected_session_ttl_s": args.ttl, "job_cap": cap, "cores": cores, "probe": not args.no_probe,
                   "app_root": str(args.root), "load_average_at_start": os.getloadavg()},
        "notes": [f"server started with --server.disconnectedSessionTTL {args.ttl} (Streamlit's default is 120 s) so "
                  "closed sessions are released within the run",
                  f"LATENT_LAB_MAX_JOBS {'=' + str(args.max_jobs) if args.max_jobs else 'left at the default (cores)'}",
                  "the browsers run on the same machine as the server: their CPU use competes with the server's, "
                  "so interaction times are pessimistic"],
    }
    if args.cluster:
        from bench.cluster_server import ClusterServer

        server = ClusterServer(args.root, user_dir, log_path, args.ttl, args.cluster)
        cap = server.capacity  # the Ray cluster's CPUs: the scheduler actor admits that many trainings at once
        report["config"]["job_cap"] = cap
        report["notes"][1] = (f"trainings on Ray: at most {cap} at once (the cluster's CPUs), "
                              "LATENT_LAB_MAX_JOBS unused")
        report["notes"].append(f"cluster mode: nginx -> {args.cluster} replicas, Ray head + 1 node, all on this "
                               "machine with the browsers; the server-side figures below are replica-1's, the "
                               "'cluster' section has every replica and Ray node")
    else:
        server = Server(args.root, user_dir, log_path, args.ttl, args.max_jobs, probe=not args.no_probe)
    sampler = Sampler(server.process.pid, server.started)
    sampler.start()
    pieces = {name: Sampler(pid, server.started) for name, pid in getattr(server, "pids", {}).items()}
    for piece in pieces.values():
        piece.start()

    def on_signal(signum, frame):  # hard timeout or SIGTERM: `finally` stops the server and writes the report
        raise SystemExit(f"stopped by signal {signum} (SIGALRM = the hard timeout of {args.timeout:.0f} s)")

    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(int(args.timeout) + 30)
    students: list[Student] = []
    phases: dict = {}
    state = {"idle_rss": None, "idle_threads": None, "idle_tour": None, "after": None}
    exit_code = 1
    try:
        report["server"] = {"health_after_s": round(server.wait_healthy(), 2), "url": server.url, "cmd": server.cmd}
        print(f"server up at {server.url} in {report['server']['health_after_s']} s; warming up…", flush=True)
        report["warm_up"] = asyncio.run(warm_up(server, args.step_timeout, tour=False))
        if report["warm_up"]["exceptions"]:
            report["fatal"] = f"the app shows an exception on its first page: {report['warm_up']['exception_text']}"
            print("FATAL:", report["fatal"], flush=True)
            return 2
        time.sleep(2.0)
        idle_start = sampler.now()
        state["idle_rss"] = rss_after(sampler, 4.0)
        state["idle_threads"] = sampler.window(idle_start)[-1][2]
        report["idle"] = {"rss_mb": state["idle_rss"], "threads": state["idle_threads"], "probe": server.probe("objects")}
        print(f"idle: {state['idle_rss']} MB, {state['idle_threads']} threads", flush=True)
        if not args.no_tour:
            # A baseline with every page's imports and the shared caches warm: what stays after the class should
            # come back to this; the difference to `idle` is one-off imports and caches, not per-session memory.
            report["warm_tour"] = asyncio.run(warm_up(server, args.step_timeout, tour=True))
            time.sleep(2.0)
            start = sampler.now()
            state["idle_tour"] = rss_after(sampler, 4.0)
            report["idle_after_tour"] = {"rss_mb": state["idle_tour"], "threads": sampler.window(start)[-1][2],
                                         "probe": server.probe("objects")}
            print(f"idle after one warm-up tour of every page: {state['idle_tour']} MB", flush=True)
        print(f"The class arrives ({args.sessions} sessions)…", flush=True)

        students.extend(make_class(args))
        class_deadline = hard_deadline - (args.settle + 90)
        asyncio.run(run_class(args, server, sampler, class_deadline, students, phases))
        print(f"class done in {phases['class_end'] - phases['class_start']:.0f} s. "
              f"All closed; waiting for memory to settle (TTL {args.ttl} s)…", flush=True)

        settled = settle(sampler, phases["closed"], min_wait=args.ttl + 10, max_wait=args.settle)
        after = state["after"] = {"natural": settled}
        after["probe_stats"] = server.probe("objects")
        after["after_reap"] = {**server.probe("reap"), "rss_mb": rss_after(sampler, 3.0)}
        after["after_gc"] = {**server.probe("gc"), "rss_mb": rss_after(sampler, 3.0)}
        after["after_trim"] = {**server.probe("trim"), "rss_mb": rss_after(sampler, 3.0)}
        after["threads"] = sampler.window(sampler.now() - 2)[-1][2]
        report["after_close"] = after
        exit_code = 0
    finally:
        signal.alarm(0)
        sampler.stop_event.set()
        if pieces:
            report["cluster"] = cluster_figures(server, pieces, phases, args.sessions)
            for piece in pieces.values():
                piece.stop_event.set()
        server.stop()
        try:
            if students:
                ok = analyse(report, students, phases, state, sampler, user_dir, log_path, cap)
                exit_code = exit_code if ok else 1
                report["wall_s"] = round(time.monotonic() - started, 1)
                print_summary(report)
        finally:
            report.setdefault("wall_s", round(time.monotonic() - started, 1))
            args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
            print(f"written {args.out} (server log: {log_path})", flush=True)
            if not args.keep:
                import shutil

                shutil.rmtree(user_dir, ignore_errors=True)
                if server.probe_dir:
                    shutil.rmtree(server.probe_dir, ignore_errors=True)
    return exit_code


def cluster_figures(server, pieces: dict, phases: dict, sessions: int) -> dict:
    """Memory (RSS of each piece's process tree, MB) before the class, at its peak and at the end, per replica
    and Ray node, and nginx's view: websocket sessions per replica, HTTP statuses; for sizing, the students per
    core the replicas used (their mean CPU during the class) and the largest replica's peak memory."""
    start, closed = phases.get("class_start"), phases.get("closed")
    out = {}
    for name, piece in pieces.items():
        before = [r for _, r, _, _ in piece.window(max(0.0, (start or piece.now()) - 5), start)]
        during = [r for _, r, _, _ in piece.window(start or 0, closed)]
        end = [r for _, r, _, _ in piece.window(piece.now() - 5)]
        cpu = piece.cpu_window(start or 0, phases.get("class_end"))
        out[name] = {"rss_mb_idle": round(statistics.median(before), 1) if before else None,
                     "rss_mb_peak": round(max(during), 1) if during else None,
                     "rss_mb_end": round(statistics.median(end), 1) if end else None,
                     "cpu_cores_mean_during_class": round(statistics.mean(cpu), 2) if cpu else None}
    replicas = [figures for name, figures in out.items() if name.startswith("replica")]
    replica_cores = sum(r["cpu_cores_mean_during_class"] or 0 for r in replicas)
    sizing = {"replica_cpu_cores_mean_total": round(replica_cores, 2),
              "students_per_replica_core": round(sessions / replica_cores, 1) if replica_cores else None,
              "replica_rss_mb_peak_max": max((r["rss_mb_peak"] or 0 for r in replicas), default=None)}
    some = next(iter(pieces.values()))
    return {"pieces": out, "sizing": sizing, "nginx": server.nginx_summary(), "load_average_at_end": os.getloadavg(),
            "load_average_1min_during_class": some.load_window(start or 0, phases.get("class_end")),
            "note": "RSS of each process tree (the Ray nodes' trees hold their training actors); CPU of the "
                    "piece's own top process only"}


def analyse(report: dict, students: list[Student], phases: dict, state: dict, sampler: Sampler, user_dir: Path,
            log_path: Path, cap: int) -> bool:
    """Fill report["figures"] and the details from whatever the run got to; True if the class passed."""
    idle_rss, idle_tour, after = state["idle_rss"], state["idle_tour"], state["after"] or {}
    report["phases_s"] = phases
    during = sampler.window(phases.get("class_start", 0), phases.get("closed"))
    peak = max(during, key=lambda x: x[1]) if during else (0, 0, 0, 0)
    cpu = sampler.cpu_window(phases.get("class_start", 0), phases.get("class_end"))
    report["server_cpu_during_class"] = {
        "cores_mean": round(statistics.mean(cpu), 2) if cpu else None, "cores_p50": pct(cpu, 0.5),
        "cores_p95": pct(cpu, 0.95), "machine_cores": os.cpu_count(),
        "note": "CPU of the server process (all threads) per 0.5 s sample; ~1.0 while the UI stalls = GIL-bound"}
    report["peak"] = {"rss_mb": round(peak[1], 1), "at_s": round(peak[0], 1),
                      "threads_max": max((x[2] for x in during), default=None),
                      "children_max": max((x[3] for x in during), default=None)}
    natural = (after.get("natural") or {}).get("rss_mb")
    trimmed = (after.get("after_trim") or {}).get("rss_mb")

    def ratio(a, b):
        return round(a / b, 3) if a and b else None

    navs = [n["seconds"] for s in students for n in s.navs if n["page"] != "open /"]
    opens = [n["seconds"] for s in students for n in s.navs if n["page"] == "open /"]
    to_img = [x["to_image_s"] for s in students for x in s.sliders]
    to_idle = [x["to_idle_s"] for s in students for x in s.sliders]
    jobs = job_timeline(user_dir)
    trainers = [s for s in students if s.trainer]
    finished = [s for s in trainers if s.train.get("finished") and jobs.get(s.name, {}).get("status") == "done"]
    queue_seen = {s.name: s.train.get("positions", []) for s in trainers}
    log = server_log_problems(log_path)
    errors = [f"{s.name}: {e}" for s in students for e in s.errors]
    page_errors = [f"{s.name}: {e}" for s in students for e in s.page_errors]
    report["figures"] = {
        "sessions_completed": sum(s.done for s in students),
        "errors": len(errors) + len(page_errors) + log["tracebacks"],
        "trainings_finished": f"{len(finished)}/{len(trainers)}",
        "trainings_saved_on_server": f"{sum(1 for s in trainers if jobs.get(s.name, {}).get('status') == 'done')}"
                                     f"/{len(trainers)}",
        "queue_positions_seen": queue_seen,
        "max_queue_position_seen": max((max(p) for p in queue_seen.values() if p), default=0),
        "open_p50_s": pct(opens, 0.5), "open_p95_s": pct(opens, 0.95),
        "nav_p50_s": pct(navs, 0.5), "nav_p95_s": pct(navs, 0.95), "nav_n": len(navs),
        "slider_to_image_p50_s": pct(to_img, 0.5), "slider_to_image_p95_s": pct(to_img, 0.95),
        "slider_to_idle_p50_s": pct(to_idle, 0.5), "slider_to_idle_p95_s": pct(to_idle, 0.95),
        "slider_n": len(to_img),
        "idle_rss_mb": idle_rss, "idle_after_tour_rss_mb": idle_tour, "peak_rss_mb": report["peak"]["rss_mb"],
        "after_close_rss_mb": natural, "after_close_ratio": ratio(natural, idle_rss),
        "after_close_ratio_to_tour": ratio(natural, idle_tour),
        "after_reap_gc_trim_rss_mb": trimmed, "after_reap_gc_trim_ratio": ratio(trimmed, idle_rss),
        "after_reap_gc_trim_ratio_to_tour": ratio(trimmed, idle_tour),
        "blocked_external_requests": sorted({u for s in students for u in s.blocked}),
        "threads_idle": state["idle_threads"], "threads_peak": report["peak"]["threads_max"],
        "threads_after_close": after.get("threads"),
    }
    by_kind = {}
    for kind in sorted({s.kind for s in students}):
        group = [s for s in students if s.kind == kind]
        k_navs = [n["seconds"] for s in group for n in s.navs if n["page"] != "open /"]
        k_img = [x["to_image_s"] for s in group for x in s.sliders]
        k_idle = [x["to_idle_s"] for s in group for x in s.sliders]
        by_kind[kind] = {"sessions": len(group), "completed": sum(s.done for s in group),
                         "errors": sum(len(s.errors) + len(s.page_errors) for s in group),
                         "nav_n": len(k_navs), "nav_p50_s": pct(k_navs, 0.5), "nav_p95_s": pct(k_navs, 0.95),
                         "slider_n": len(k_img), "slider_to_image_p50_s": pct(k_img, 0.5),
                         "slider_to_image_p95_s": pct(k_img, 0.95), "slider_to_idle_p50_s": pct(k_idle, 0.5),
                         "slider_to_idle_p95_s": pct(k_idle, 0.95)}
    report["figures"]["by_client_kind"] = by_kind
    per_page: dict[str, list[float]] = {}
    for s in students:
        for n in s.navs:
            per_page.setdefault(n["page"], []).append(n["seconds"])
    report["nav_by_page"] = {k: {"n": len(v), "p50_s": pct(v, 0.5), "p95_s": pct(v, 0.95)} for k, v in per_page.items()}
    report["fairness"] = fairness(students, jobs, cap, phases.get("queue_log"))
    report["jobs"] = jobs
    report["errors"] = errors
    report["page_errors"] = page_errors
    report["server_log"] = log
    report["students"] = [s.record() for s in students]
    report["memory_timeline"] = [(round(t, 1), round(r, 1), th, k) for t, r, th, k in sampler.window(0)][::2]
    report["cpu_timeline"] = [(round(t, 1), round(c, 2)) for t, c in sampler.cpu][::2]
    report["config"]["load_average_at_end"] = os.getloadavg()
    return report["figures"]["errors"] == 0 and len(finished) == len(trainers)


def print_summary(r: dict) -> None:
    f = r["figures"]

    def sec(x):
        return "n/a" if x is None else f"{x:.2f} s"

    def mb(x):
        return "n/a" if x is None else f"{x:.0f} MB"

    def times(x):
        return "n/a" if x is None else f"{x:.2f}x"

    rows = [
        ("sessions (own Chromium + light clients)", f"{r['config']['sessions']} ({r['config']['own_chromium']} + "
                                                    f"{r['config']['light_clients']}), "
                                                    f"{f['sessions_completed']} completed"),
        ("errors (exceptions, alerts, timeouts, page errors, tracebacks)", str(f["errors"])),
        ("trainings finished (seen in the page / saved as done)", f"{f['trainings_finished']} / "
                                                                  f"{f['trainings_saved_on_server']}"),
        ("queue positions seen (max)", f"{f['max_queue_position_seen']} (cap {r['config']['job_cap']} running)"),
        ("queue FIFO on the server (start order = queue order)", f"{r['fairness']['fair']} "
                                                                 f"({r['fairness'].get('source')})"),
        ("queue order vs click order: pairs swapped by the server",
         f"{len(r['fairness'].get('queue_order_differs_from_click_order', []))} "
         f"(clicks {r['config']['click_gap_s']} s apart)"),
        ("open / p50 / p95", f"{sec(f['open_p50_s'])} / {sec(f['open_p95_s'])}"),
        (f"page navigation to idle p50 / p95 (n={f['nav_n']})", f"{sec(f['nav_p50_s'])} / {sec(f['nav_p95_s'])}"),
        (f"slider -> image p50 / p95 (n={f['slider_n']})",
         f"{sec(f['slider_to_image_p50_s'])} / {sec(f['slider_to_image_p95_s'])}"),
        ("slider -> idle p50 / p95", f"{sec(f['slider_to_idle_p50_s'])} / {sec(f['slider_to_idle_p95_s'])}"),
        *[(f"  {kind}: nav p50/p95, slider->image p50/p95",
           f"{sec(k['nav_p50_s'])} / {sec(k['nav_p95_s'])} (n={k['nav_n']}), "
           f"{sec(k['slider_to_image_p50_s'])} / {sec(k['slider_to_image_p95_s'])} (n={k['slider_n']})")
          for kind, k in f["by_client_kind"].items()],
        ("server RSS idle (after one page) / peak", f"{mb(f['idle_rss_mb'])} / {mb(f['peak_rss_mb'])}"),
        ("server RSS idle after a warm-up tour of every page", mb(f["idle_after_tour_rss_mb"])),
        ("server RSS after close: ratio to idle / to idle after tour",
         f"{mb(f['after_close_rss_mb'])}: {times(f['after_close_ratio'])} / {times(f['after_close_ratio_to_tour'])}"),
        ("  after reap + gc + malloc_trim: ratio to idle / to tour",
         f"{mb(f['after_reap_gc_trim_rss_mb'])}: {times(f['after_reap_gc_trim_ratio'])} / "
         f"{times(f['after_reap_gc_trim_ratio_to_tour'])}"),
        ("server CPU during the class, cores mean / p95 (of the machine's)",
         f"{r['server_cpu_during_class']['cores_mean']} / {r['server_cpu_during_class']['cores_p95']} "
         f"({r['server_cpu_during_class']['machine_cores']})"),
        ("server threads idle / peak / after close", f"{f['threads_idle']} / {f['threads_peak']} / "
                                                     f"{f['threads_after_close']}"),
        ("external (non-loopback) requests blocked", ", ".join(f["blocked_external_requests"]) or "none"),
        ("wall time", f"{r.get('wall_s', 0):.0f} s"),
    ]
    width = max(len(a) for a, _ in rows)
    print("\n" + "-" * (width + 50))
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    print("-" * (width + 50))
    for e in (r["errors"] + r["page_errors"])[:15]:
        print("  error:", e)
    if r["server_log"]["tracebacks"]:
        print("  server log tracebacks:", r["server_log"]["tracebacks"])
        print(r["server_log"]["traceback_excerpts"][0])


if __name__ == "__main__":
    sys.exit(main())
