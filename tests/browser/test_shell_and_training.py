"""End-to-end browser tests of the app shell, live training and model uploads.

A real `streamlit run app.py` server and a real headless Chromium (see conftest.py); nothing is mocked.
Run:  .venv/bin/python -m pytest tests/browser -q -x
Screenshots: $LATENT_LAB_ARTIFACTS/screenshots (default test-artifacts/screenshots); figures: figures.json there.
"""
from __future__ import annotations

import random
import re
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from bench.harness import alert, set_model_name, set_slider
from tests.browser.conftest import (APP_DIR, DEFAULT_MODEL_TITLE, FIRST_PAGE_TITLE, Hostile, assert_no_exception,
                                    choose_training_data, record_figure, screenshot, sidebar_picker, upload,
                                    wait_for_app)

pytestmark = pytest.mark.timeout(300)

# Hang guards, not performance targets: timings on shared machines are noisy, so the targets (open < 5 s, an
# answer < 2 s while training, Stop < about 3 s) are measured by bench/app_startup.py and recorded by these tests
# in test-artifacts/figures.json; the asserts below only catch a page that hangs.
APP_OPEN_LIMIT_S = 60.0
UI_ANSWER_LIMIT_MS = 20_000
STOP_LIMIT_S = 30.0
# The run to interact with while it trains, at batch 16. The bar redraws about once a second (POLL_SECONDS), so the
# run has to last a few redraws on the fastest machine we know: 10 epochs once took several seconds, and only about a
# second (one redraw) on a 2-core EPYC once a worker's start-up lost its 2 s import of torch._dynamo. 60 epochs took
# 10 s there from Start to Finished (7 redraws), and take well under TRAIN_TIMEOUT_MS on a loaded machine.
EPOCHS = 60
TRAIN_TIMEOUT_MS = 240_000  # a loaded 2-core machine trains the small digits model in well under this

EPOCH_RE = re.compile(r"Epoch (\d+) of (\d+)")

# Records every distinct state of the progress bar, [percent, text], as the fragment redraws it (about once a
# second), so the test sees the progress move however fast or slow the machine trains.
PROGRESS_LOGGER = """() => {
  window.__progress = [];
  window.__progressTimer = setInterval(() => {
    const el = document.querySelector('[data-testid="stProgress"]');
    if (!el) return;
    const bar = el.querySelector('[role="progressbar"]');
    const entry = [bar ? Number(bar.getAttribute('aria-valuenow')) : null, el.innerText.trim()];
    const log = window.__progress, last = log[log.length - 1];
    if (!last || last[0] !== entry[0] || last[1] !== entry[1]) log.push(entry);
  }, 50);
}"""


# -- helpers --------------------------------------------------------------------------------------------------------
def open_page(page, url: str) -> None:
    page.goto(url)
    wait_for_app(page)
    assert_no_exception(page)


def progress_bar(page):
    return page.get_by_test_id("stProgress")


def main_thread_load(page, seconds: float) -> tuple[float, float]:
    """(share of wall time the page's main thread ran tasks, its longest task in ms) over `seconds`.

    From Chrome's Performance metrics (CDP) and the Long Tasks API: a busy main thread delays every click."""
    page.evaluate("""() => { window.__longTasks = [];
      new PerformanceObserver(list => list.getEntries().forEach(e => window.__longTasks.push(e.duration)))
        .observe({type: 'longtask'}); }""")
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("Performance.enable")

        def task_seconds() -> float:
            return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}["TaskDuration"]

        before, t0 = task_seconds(), time.monotonic()
        page.wait_for_timeout(seconds * 1000)
        busy = (task_seconds() - before) / (time.monotonic() - t0)
    finally:
        cdp.detach()
    longest = page.evaluate("() => Math.max(0, ...window.__longTasks)")
    return busy, float(longest)


def stop_if_training(page) -> None:
    """Leave no job training in the shared server after a test, whatever happened in it."""
    try:
        stop = page.get_by_role("button", name="Stop", exact=True)
        if stop.count() and stop.is_visible():
            stop.click(timeout=5_000)
            expect(page.get_by_text(re.compile("Stopped|Finished"))).to_be_visible(timeout=15_000)
    except Exception:  # best effort: the test's own failure is the one to report
        pass


def trained_file(server, stem: str) -> Path | None:
    """A checkpoint the app saved for some session of this test run (anywhere under LATENT_LAB_USER_DIR)."""
    hits = sorted(Path(server.user_dir).rglob(f"{stem}.pt"))
    return hits[0] if hits else None


def checkpoint_meta(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["meta"]


# -- 1. the app opens on the bundled MNIST VAE --------------------------------------------------------------------
def test_app_opens_on_the_mnist_vae_quickly(server, page):
    first = server.first_open
    assert "error" not in first, f"the first page never showed its title and the default model: {first['error']}"
    print(f"\napp open: {first['from_health']:.2f} s after the health endpoint answered "
          f"({first['from_process_start']:.2f} s after the process started; "
          f"health after {first['health_after']:.2f} s)")
    record_figure("app_open_seconds", round(first["from_health"], 3))
    record_figure("app_open_seconds_from_process_start", round(first["from_process_start"], 3))
    record_figure("server_health_seconds", round(first["health_after"], 3))

    # The same page again, warm: title, picker and the default model's card, no exception.
    open_page(page, server)
    expect(page.get_by_role("heading", name=FIRST_PAGE_TITLE, level=1)).to_be_visible()
    expect(sidebar_picker(page)).to_have_value(re.compile(re.escape(DEFAULT_MODEL_TITLE)))
    expect(page.get_by_role("heading", name=DEFAULT_MODEL_TITLE)).to_be_visible()
    screenshot(page, "app-open")

    assert first["from_health"] < APP_OPEN_LIMIT_S, (
        f"the first page took {first['from_health']:.2f} s after the health answer to show '{FIRST_PAGE_TITLE}' "
        f"and '{DEFAULT_MODEL_TITLE}' (limit {APP_OPEN_LIMIT_S} s)")


def test_the_welcome_page_answers_one_click_on_the_pad_with_a_large_crisp_digit(server, page):
    """The first minute of a demo: the instruction and the pad are on the first screen; one click on the pad
    draws the digit of that point at once, 280 px wide with every pixel a crisp block; the release reaches the
    link, so the other pages follow."""
    import numpy as np

    from tests.browser.test_latent_pad import READY_JS, canvas_rgb, sha_of, state, url_point

    open_page(page, server)
    instruction = page.get_by_text("Click or drag anywhere on the square")
    expect(instruction).to_be_visible()
    page.wait_for_function(READY_JS, arg=sha_of("mnist-vae-2d"), timeout=60_000)
    pad, image = page.locator("canvas.latent-pad"), page.locator("canvas.latent-image")
    expect(image).to_be_visible()
    shown = image.evaluate("""el => [el.width, el.height, el.clientWidth, el.clientHeight,
                                     getComputedStyle(el).imageRendering]""")  # (inside its 1 px border)
    assert shown == [28, 28, 280, 280, "pixelated"], shown  # 10 screen pixels per image pixel, no smoothing
    box, viewport = pad.bounding_box(), page.viewport_size
    assert box["y"] + box["height"] <= viewport["height"], "the pad is not on the first screen"
    assert image.bounding_box()["y"] + 280 <= viewport["height"], "the digit is not on the first screen"
    before = canvas_rgb(page)
    page.mouse.click(box["x"] + 0.8 * box["width"], box["y"] + 0.2 * box["height"])  # one click, no drag
    assert not np.array_equal(canvas_rgb(page), before), "the click did not draw another digit"
    z = state(page)["z"]
    deadline = time.monotonic() + 30
    while url_point(page) != pytest.approx(z, abs=1e-5):  # the release's rerun writes the point to the link
        assert time.monotonic() < deadline, f"the link kept z={url_point(page)}, the pad is at {z}"
        page.wait_for_timeout(100)
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "welcome-after-one-click")


# -- 2. every page of the navigation renders ---------------------------------------------------------------------
def nav_links(page) -> list[tuple[str, str]]:
    """(label, href) of every page in the sidebar navigation, expanding a collapsed list first."""
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav).to_be_visible()
    more = nav.get_by_test_id("stSidebarNavViewButton")
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    links = nav.get_by_test_id("stSidebarNavLink")
    return [(links.nth(i).inner_text().split("\n")[-1].strip(), links.nth(i).get_attribute("href"))
            for i in range(links.count())]


def test_every_page_renders(server, page):
    open_page(page, server)
    links = nav_links(page)
    paths = [urlparse(href).path for _, href in links]
    assert {"/", "/train", "/library"} <= set(paths), f"the navigation lacks a known page: {links}"
    # The navigation must be the app's own (st.navigation), listing pages only, never a helper module.
    helpers = [p for p in paths if p.strip("/") in {"app", "ui", "_ui", "figures", "_figures"}]
    assert not helpers, f"helper modules are listed as pages: {helpers}"

    for label, href in links:
        path = urlparse(href).path
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=label, exact=True).click()
        expect(page).to_have_url(re.compile(re.escape(href.rstrip("/")) + r"/?(\?.*)?$"))
        wait_for_app(page)
        title = page.get_by_role("heading", level=1).first
        expect(title).to_be_visible()
        assert title.inner_text().strip(), f"{path}: the page title is empty"
        active = page.get_by_test_id("stSidebarNavLink").filter(has_text=label).first
        expect(active).to_have_attribute("aria-current", "page")
        assert_no_exception(page)
        expect(sidebar_picker(page)).to_be_visible()
        screenshot(page, f"page-{path.strip('/').replace('/', '-') or 'root'}")


# -- 3. train a model from the Train page -------------------------------------------------------------------------
def test_train_digits_model_live(server, page):
    name = "browser test digits"
    open_page(page, f"{server}/train")
    expect(page.get_by_role("heading", name="Train a model", level=1)).to_be_visible()
    expect(page.get_by_label("Data", exact=True)).to_have_value(re.compile("^MNIST"))  # the page's default
    choose_training_data(page, "Digits")  # the 8x8 digits: a run of a few seconds, to interact with while it trains
    set_slider(page, "Epochs", home=True, right=EPOCHS - 1, expect_text=str(EPOCHS))
    set_slider(page, "Batch size", home=True, expect_text="16")
    set_model_name(page, name)

    page.evaluate(PROGRESS_LOGGER)
    try:
        page.get_by_role("button", name="Start training").click()
        started = time.monotonic()
        expect(progress_bar(page)).to_contain_text(re.compile(rf"Epoch \d+ of {EPOCHS}"), timeout=60_000)
        expect(page.get_by_role("button", name="Start training")).to_be_disabled()

        # While it trains the page keeps answering: a client-side toggle, then a full rerun through the server.
        t0 = time.monotonic()
        page.locator('[data-testid="stExpander"] summary').filter(has_text="More settings").click()
        expect(page.get_by_label("Seed", exact=True)).to_be_visible(timeout=30_000)
        expander_s = time.monotonic() - t0
        picker = sidebar_picker(page)
        picker.click()
        option = page.get_by_role("option", name=re.compile(r"^Digits autoencoder \(2-D\)"))
        expect(option).to_be_visible()
        t0 = time.monotonic()
        option.click()
        expect(page.get_by_test_id("stSidebar").get_by_text("AE, mlp, z=2 · trained on digits")).to_be_visible(
            timeout=30_000)
        rerun_s = time.monotonic() - t0
        still_training = progress_bar(page).is_visible()
        print(f"\nwhile training: expander answered in {expander_s:.2f} s, a full rerun (model picker) in "
              f"{rerun_s:.2f} s; still training afterwards: {still_training}")
        record_figure("ui_answer_while_training_seconds", round(max(expander_s, rerun_s), 3))

        expect(page.get_by_text("Loss (lower is better)")).to_be_visible(timeout=60_000)
        latent_title = page.get_by_text(re.compile(r"Latent map of the test set after epoch \d+"))
        expect(latent_title).to_be_visible(timeout=60_000)
        # Plotly is a large lazily loaded chunk: on a busy machine the first chart takes a while to draw.
        expect(page.get_by_test_id("stPlotlyChart").nth(1)).to_be_visible(timeout=60_000)
        assert_no_exception(page)
        screenshot(page, "train-during")

        expect(alert(page, "Finished")).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        train_s = time.monotonic() - started
        wait_for_app(page)
    finally:
        stop_if_training(page)

    # The bar moved while it trained: its text always read "Epoch N of 10", and the bar and the epoch only went
    # forward. (How many redraws a run gets depends on the machine's load: at least two are needed.)
    seen = page.evaluate("window.__progress")
    texts = [text for _, text in seen]
    assert texts and all(EPOCH_RE.search(t) and EPOCH_RE.search(t).group(2) == str(EPOCHS) for t in texts), texts
    epochs = [int(EPOCH_RE.search(t).group(1)) for t in texts]
    values = [v for v, _ in seen]
    print(f"progress seen: epochs {sorted(set(epochs))}, bar {values[0]}% .. {values[-1]}% in {len(seen)} redraws "
          f"over {train_s:.1f} s from Start to Finished")
    assert len(seen) >= 2 and values[-1] > values[0], f"the progress did not move while training: {seen}"
    assert epochs == sorted(epochs) and values == sorted(values), f"the progress went backwards: {seen}"
    assert still_training, "training ended before the responsiveness check ran: the check proved nothing"

    # The new model is saved, listed and selected in the picker, and it follows the user to another page.
    label = f"{name} · trained by you"
    expect(sidebar_picker(page)).to_have_value(label, timeout=30_000)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    assert_no_exception(page)
    screenshot(page, "train-after")
    saved = trained_file(server, "browser-test-digits")
    assert saved is not None, f"no checkpoint saved under {server.user_dir}"
    meta = checkpoint_meta(saved)
    assert meta["status"] == "done" and len(meta["history"]) == EPOCHS and meta["samples_per_s"] > 0

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Welcome", exact=True).click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name=FIRST_PAGE_TITLE, level=1)).to_be_visible()
    expect(sidebar_picker(page)).to_have_value(label)
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "train-after-welcome")

    # Checked last, so a slow machine still gets the functional checks above. Timed from the click call (it
    # returns once the browser has dispatched the click) to the visible answer.
    assert max(expander_s, rerun_s) <= UI_ANSWER_LIMIT_MS / 1000, (
        f"while training the page answered a click in {expander_s:.2f} s (expander) and {rerun_s:.2f} s "
        f"(model picker, a rerun through the server): limit {UI_ANSWER_LIMIT_MS / 1000:.0f} s")


# -- 4. stop a run --------------------------------------------------------------------------------------------------
def test_stop_a_long_run_keeps_the_model(server, page):
    name = "browser stop test"
    open_page(page, f"{server}/train")
    # A run that cannot end before Stop by its size, whatever the machine's speed: shapes at batch 16 are 1,000
    # conv steps an epoch, 200,000 in all (at least 40 s on any CPU, see LONG_RUN in test_classroom.py), where
    # 200 epochs of the 8x8 digits (18,000 small steps) could end within seconds on a fast quiet machine.
    choose_training_data(page, "Shapes")
    set_slider(page, "Epochs", end=True, expect_text="200")
    set_slider(page, "Batch size", home=True, expect_text="16")
    set_model_name(page, name)
    try:
        page.get_by_role("button", name="Start training").click()
        # Epoch 2 under way: the first epoch is finished, so there is something to keep.
        # (a hang guard, not a speed requirement: the first shapes epoch took minutes at load 10 on 2 cores)
        expect(progress_bar(page)).to_contain_text(re.compile(r"Epoch ([2-9]|\d{2,}) of 200"), timeout=420_000)
        busy, longest_task_ms = main_thread_load(page, 3.0)
        stop = page.get_by_role("button", name="Stop", exact=True)
        t0 = time.monotonic()
        stop.click(timeout=30_000)  # returns once the browser has dispatched the click
        t1 = time.monotonic()
        expect(alert(page, "Stopped")).to_be_visible(timeout=30_000)
        t2 = time.monotonic()
    finally:
        stop_if_training(page)
    print(f"\nStop: while training the page's main thread was busy {busy:.0%} of the time (longest task "
          f"{longest_task_ms:.0f} ms); the click took "
          f"{t1 - t0:.2f} s to be dispatched, then 'Stopped' showed {t2 - t1:.2f} s later ({t2 - t0:.2f} s in all)")
    record_figure("stop_seconds", round(t2 - t0, 3))
    record_figure("stop_click_dispatch_seconds", round(t1 - t0, 3))
    record_figure("renderer_busy_fraction_while_training", round(busy, 3))
    record_figure("renderer_longest_task_ms_while_training", round(longest_task_ms))
    expect(alert(page, "Stopped")).to_contain_text("saved and listed in the sidebar")
    expect(sidebar_picker(page)).to_have_value(f"{name} · trained by you", timeout=30_000)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_have_count(0)
    assert_no_exception(page)
    screenshot(page, "train-stopped")
    saved = trained_file(server, "browser-stop-test")
    assert saved is not None, f"the stopped run's checkpoint was not saved under {server.user_dir}"
    meta = checkpoint_meta(saved)
    assert meta["status"] == "cancelled" and 1 <= len(meta["history"]) < 200

    assert t2 - t0 <= STOP_LIMIT_S, (f"'Stopped' showed {t2 - t0:.2f} s after pressing Stop (limit {STOP_LIMIT_S} s): "
                                     f"{t1 - t0:.2f} s before the page could take the click, {t2 - t1:.2f} s after")


# -- 5. bad uploads on the Model library page ---------------------------------------------------------------------
def test_bad_uploads_are_refused_clearly(server, page, tmp_path):
    import torch

    marker = tmp_path / "MARKER"
    hostile = tmp_path / "hostile.pt"
    torch.save({"format": "latent-lab", "format_version": 1, "meta": {"name": Hostile(f"touch {marker}")}}, hostile)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(random.Random(0).randbytes(4096).replace(b"PK", b"pk"))
    truncated = tmp_path / "truncated.pt"
    whole = (APP_DIR / "checkpoints" / "digits-vae-2d.pt").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    good = tmp_path / "my-autoencoder.pt"
    good.write_bytes((APP_DIR / "checkpoints" / "digits-ae-2d.pt").read_bytes())

    open_page(page, f"{server}/library")
    expect(page.get_by_role("heading", name="Model library", level=1)).to_be_visible()

    # (a) a pickle that would run `touch MARKER` when loaded
    upload(page, hostile)
    expect(alert(page, "hostile.pt")).to_contain_text("refused", timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "library-refused-hostile")
    assert not marker.exists(), "the hostile checkpoint ran code on the server: the marker file was created"
    assert not (APP_DIR / "MARKER").exists()

    # (b) random bytes named .pt
    upload(page, junk)
    expect(alert(page, "junk.pt")).to_contain_text("not a Latent Lab checkpoint", timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "library-refused-junk")

    # (c) a real checkpoint cut in half
    upload(page, truncated)
    expect(alert(page, "truncated.pt")).to_contain_text("corrupt or truncated", timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)

    # None of them reached the picker; a good file does (the uploader itself works).
    picker = sidebar_picker(page)
    picker.click()
    expect(page.get_by_role("option", name=re.compile("uploaded"))).to_have_count(0)
    picker.press("Escape")
    upload(page, good)
    expect(alert(page, "It is now in the model picker")).to_be_visible(timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    picker.click()
    expect(page.get_by_role("option", name=re.compile("· uploaded$"))).to_have_count(1)
    picker.press("Escape")
    assert not marker.exists()
