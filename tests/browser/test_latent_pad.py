"""The Latent pad in a real browser: the page's own decoder reproduces torch for every bundled model, a drag
repaints the image on every animation frame, the canvas equals the server's picture, the weights travel once,
switching models needs no reload, and the released point reaches Python and the URL. The same pad on the Decode page
(its traversal grid and link follow the release; its start buttons move the pad) and below the Latent map.

A real `streamlit run app.py` and headless Chromium (see conftest.py). The component lives in a shadow root:
Playwright's locators reach into it; page.evaluate uses the component's hook window.__latentLab.
"""
from __future__ import annotations

import base64
import functools
import io
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pytest
import torch
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import (assert_no_exception, mouse_path, record_figure, screenshot, sidebar_picker,
                                    wait_for_app)
from vae_core.checkpoint import file_sha256, load_checkpoint
from vae_core.latent import decode, image_grid

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = sorted((ROOT / "checkpoints").glob("*.pt"))
# The 28x28 MNIST zoo, named so that a missing checkpoint fails here instead of dropping out of the parametrisation.
MNIST_MODELS = ["mnist-vae-2d", "mnist-ae-2d", "mnist-betavae-2d", "mnist-wae-2d", "mnist-cvae-2d", "mnist-conv-vae-16d"]
DECODER_MODELS = sorted({p.stem for p in CHECKPOINTS} | set(MNIST_MODELS))  # every bundled model
MLP_MODELS = [p.stem for p in CHECKPOINTS if p.stem.startswith("digits-")]
FRAME_MODELS = MLP_MODELS + MNIST_MODELS  # a repaint on every frame: the MLPs and the MNIST conv model
COLLAPSED = {"digits-betavae4-2d"}  # posterior collapse: its decoder all but ignores z, the picture barely moves
TOLERANCE = 1e-4  # per pixel, before 8-bit quantisation

READY_JS = """(sha) => { const s = window.__latentLab && window.__latentLab.state();
                        return !!s && s.ready && s.decoderId === sha; }"""

# Per animation frame: how many pointermoves reached the page since the last frame, and whether the decoded image
# (the latent-image canvas's pixels) changed. Started after the pointer went down.
FRAME_MONITOR_JS = """() => {
  const pad = window.__latentLab.active;
  const ctx = pad.imageCanvas.getContext('2d');
  const w = pad.imageCanvas.width, h = pad.imageCanvas.height;
  const hash = () => { const d = ctx.getImageData(0, 0, w, h).data; let x = 0;
                       for (let i = 0; i < d.length; i++) x = (Math.imul(x, 31) + d[i]) | 0; return x; };
  const mon = window.__frames = {frames: [], moves: 0, running: true};
  window.addEventListener('pointermove', () => { mon.moves++; }, true);
  let last = hash(), paints = window.__latentLab.paints;
  const tick = (ts) => {
    const now = hash();
    mon.frames.push({ts, moves: mon.moves, painted: window.__latentLab.paints - paints, changed: now !== last});
    mon.moves = 0; last = now; paints = window.__latentLab.paints;
    if (mon.running) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""

# Resolves once the page has run the animation-frame callbacks of the next frame (the frame monitor's among them).
NEXT_FRAME_JS = "() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve())))"

# One synthetic pointermove per animation frame, dispatched from a requestAnimationFrame callback, for n frames; each
# frame checks that the previous frame's move repainted the image.
SYNTHETIC_DRAG_JS = """(n) => new Promise((resolve) => {
  const pad = window.__latentLab.active, canvas = pad.padCanvas;
  const ctx = pad.imageCanvas.getContext('2d');
  const w = pad.imageCanvas.width, h = pad.imageCanvas.height;
  const pixels = () => Array.from(ctx.getImageData(0, 0, w, h).data).join(',');
  const r = canvas.getBoundingClientRect();
  const at = (k) => ({clientX: r.left + r.width * (0.25 + 0.5 * k / n), clientY: r.top + r.height * (0.3 + 0.4 * k / n),
                      pointerId: 1, pointerType: 'mouse', button: 0, buttons: 1, bubbles: true, composed: true});
  canvas.dispatchEvent(new PointerEvent('pointerdown', at(0)));
  const out = {changed: 0, frames: 0, handlerMs: [], frameGapsMs: []};
  let before = pixels(), k = 1, lastTs = null;
  const frame = (ts) => {
    if (lastTs !== null) out.frameGapsMs.push(ts - lastTs);
    lastTs = ts;
    if (k > 1) { const now = pixels(); if (now !== before) out.changed++; before = now; out.frames++; }
    if (k > n) { canvas.dispatchEvent(new PointerEvent('pointerup', at(n))); resolve(out); return; }
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', at(k)));
    out.handlerMs.push(performance.now() - t0);
    k++;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})"""

CANVAS_PIXELS_JS = """() => { const c = window.__latentLab.active.imageCanvas;
  return {w: c.width, h: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}; }"""


@functools.lru_cache(maxsize=None)
def model_of(name: str):
    return load_checkpoint(ROOT / "checkpoints" / f"{name}.pt")[0]


@functools.lru_cache(maxsize=None)
def sha_of(name: str) -> str:
    return file_sha256(ROOT / "checkpoints" / f"{name}.pt")


class Traffic:
    """Bytes the server sent over the app's websocket."""

    def __init__(self, page):
        self.bytes = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.bytes += len(payload) if isinstance(payload, (bytes, str)) else 0

    def take(self) -> int:
        n, self.bytes = self.bytes, 0
        return n


def open_pad(page, server, name: str, **params) -> None:
    page.goto(f"{server}/pad?{urlencode({'model': f'zoo/{name}', **params})}")
    wait_for_app(page)
    page.wait_for_function(READY_JS, arg=sha_of(name), timeout=60_000)
    assert_no_exception(page)


def pad_box(page) -> dict:
    canvas = page.locator("canvas.latent-pad")
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()  # below the Latent map it starts out of the window
    return canvas.bounding_box()


def drag(page, points, *, steps: int = 1) -> None:
    """Press at the first (fx, fy) fraction of the pad, move through the others, release."""
    mouse_path(page, pad_box(page), points, steps=steps)


URL_FOLLOWS_JS = """() => { const s = window.__latentLab.state(), q = new URLSearchParams(location.search).get('z');
  if (!s || !q) return false;
  const u = q.split(',').map(Number);
  return u.length === s.z.length && u.every((v, i) => Math.abs(v - s.z[i]) < 1e-6); }"""


def wait_for_release(page) -> None:
    """After a pointer up: wait until the release's rerun has put the pad's point in the URL, then until idle (on a
    loaded machine the rerun may not have started when the app first looks idle)."""
    page.wait_for_function(URL_FOLLOWS_JS, timeout=30_000)
    wait_for_app(page)


def canvas_rgb(page) -> np.ndarray:
    got = page.evaluate(CANVAS_PIXELS_JS)
    return np.asarray(got["data"], dtype=np.uint8).reshape(got["h"], got["w"], 4)[..., :3]


def server_render(name: str, z, y=None) -> np.ndarray:
    """The server's uint8 rendering of one decoded image (vae_core.latent.image_grid, one pixel per pixel)."""
    images = decode(model_of(name), torch.tensor([z], dtype=torch.float32), y)
    return image_grid(images, nrow=1)


def state(page) -> dict:
    return page.evaluate("() => window.__latentLab.state()")


def url_point(page) -> list[float]:
    return [float(v) for v in parse_qs(urlparse(page.url).query)["z"][0].split(",")]


# -- correctness ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DECODER_MODELS)
def test_the_browser_decoder_matches_torch(page, server, name):
    open_pad(page, server, name)
    model = model_of(name)
    rng = np.random.default_rng(7)
    z = (rng.normal(size=(100, model.config.latent_dim)) * 1.5).astype(np.float32)
    y = rng.integers(0, model.config.num_classes, size=100) if model.config.is_conditional else None
    got = np.asarray(page.evaluate("([zs, ys, sha]) => window.__latentLab.decodeMany(zs, ys, sha)",
                                   [z.tolist(), None if y is None else y.tolist(), sha_of(name)]), dtype=np.float64)
    with torch.no_grad():
        want = model.decode_mean(torch.from_numpy(z), None if y is None else torch.from_numpy(y)).double()
    want = want.reshape(100, -1).numpy()
    error = float(np.abs(got - want).max())
    record_figure(f"latent_pad.max_abs_error.{name}", error)
    assert got.shape == want.shape
    assert error <= TOLERANCE, f"{name}: browser and torch differ by up to {error:.2e}"


@pytest.mark.parametrize("name", ["digits-vae-2d", "shapes-vae", "mnist-vae-2d", "mnist-conv-vae-16d"])
def test_the_canvas_equals_the_servers_picture(page, server, name):
    open_pad(page, server, name)
    drag(page, [(0.35, 0.4), (0.55, 0.6), (0.6, 0.45)], steps=5)
    wait_for_app(page)
    s = state(page)
    shown = canvas_rgb(page)
    np.testing.assert_array_equal(shown, server_render(name, s["z"]))
    # The released point is the server's point: its own fallback path draws the same picture.
    page.get_by_text("Decode in the browser").click()
    wait_for_app(page)
    image = page.get_by_test_id("stImage").filter(has_text="Decoded on the server").locator("img")
    expect(image).to_be_visible()
    src = image.get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    server_picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))
    scale = server_picture.shape[0] // shown.shape[0]
    np.testing.assert_array_equal(server_picture[::scale, ::scale], shown)
    assert page.locator("canvas.latent-pad").count() == 0
    screenshot(page, f"latent-pad-server-path-{name}")


def test_a_cvae_class_button_redraws_with_that_class(page, server):
    open_pad(page, server, "digits-cvae-2d")
    page.locator("button.class-button", has_text="3").click()
    wait_for_app(page)
    s = state(page)
    assert s["y"] == 3
    np.testing.assert_array_equal(canvas_rgb(page), server_render("digits-cvae-2d", s["z"], 3))
    assert parse_qs(urlparse(page.url).query)["class"] == ["3"]


# -- frame rate -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FRAME_MODELS)
def test_a_drag_repaints_on_every_animation_frame(page, server, name):
    open_pad(page, server, name)
    box = pad_box(page)
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    page.evaluate(FRAME_MONITOR_JS)
    # A real pointer, driven from outside the page, one move per animation frame: each move waits for the page to
    # render a frame after the last one, so the frames that see a move do not depend on how fast this machine
    # dispatches moves (a fast one sent all 60 within a few frames, a slow one spread them out).
    for k in range(1, 61):
        page.mouse.move(box["x"] + (0.3 + 0.4 * k / 60) * box["width"], box["y"] + (0.3 + 0.35 * k / 60) * box["height"])
        page.evaluate(NEXT_FRAME_JS)
    page.evaluate(NEXT_FRAME_JS)  # the last move's frame has been recorded
    frames = page.evaluate("() => { window.__frames.running = false; return window.__frames.frames; }")
    page.mouse.up()
    moved = [f for f in frames if f["moves"]]
    assert len(moved) >= 20, f"only {len(moved)} frames saw a pointermove"
    assert all(f["painted"] >= 1 for f in moved), "a frame with a pointer move got no new image"
    stale = [f for f in moved if not f["changed"]]
    if name not in COLLAPSED:
        assert not stale, f"{len(stale)} of {len(moved)} frames with a pointer move kept the old image"
    # The same, with exactly one move per frame dispatched in the page: 60 frames, 60 new images.
    out = page.evaluate(SYNTHETIC_DRAG_JS, 60)
    assert out["frames"] == 60 and (out["changed"] == 60 or name in COLLAPSED), out
    handler = sorted(out["handlerMs"])  # timing is bench/pad_latency.py's job: recorded here, not asserted
    record_figure(f"latent_pad.synthetic_drag_handler_ms.{name}", {"p50": handler[len(handler) // 2],
                                                                     "p95": handler[int(0.95 * len(handler))]})
    wait_for_app(page)
    assert_no_exception(page)


def test_a_slider_decodes_on_every_input(page, server):
    open_pad(page, server, "digits-vae-10d")
    sliders = page.locator("input.latent-slider")
    expect(sliders).to_have_count(8)
    first = sliders.first
    dim = int(first.get_attribute("data-dim"))
    before = state(page)["z"]
    page.evaluate("() => { window.__latentLab.latency.length = 0; }")
    first.focus()
    images = [canvas_rgb(page)]
    for _ in range(5):
        page.keyboard.press("ArrowRight")
        images.append(canvas_rgb(page))
    entries = page.evaluate("() => window.__latentLab.latency.filter(e => e.kind === 'slider').length")
    assert entries == 5
    after = state(page)["z"]
    assert after[dim] > before[dim]
    assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [dim]  # the slider moves one number
    assert sum(not np.array_equal(a, b) for a, b in zip(images, images[1:])) >= 4
    wait_for_app(page)
    np.testing.assert_array_equal(canvas_rgb(page), server_render("digits-vae-10d", after))


# -- the way back to Python and the page's traffic ---------------------------------------------------------------------
def test_the_release_reaches_python_the_url_and_a_new_session(page, server, browser):
    traffic = Traffic(page)
    open_pad(page, server, "digits-vae-2d")
    first_load = traffic.take()
    decoder_bytes = 4 * 4 / 3 * sum(p.numel() for p in model_of("digits-vae-2d").decoder.parameters())
    assert first_load > decoder_bytes  # the weights came with the first run

    drag(page, [(0.5, 0.5), (0.62, 0.35)], steps=8)
    wait_for_release(page)
    released = traffic.take()
    s = state(page)
    assert url_point(page) == pytest.approx(s["z"], abs=1e-6)
    shown = ", ".join(f"{v:.2f}" for v in s["z"])
    expect(page.get_by_text(f"You released the pad at z = ({shown})")).to_be_visible()

    drag(page, [(0.4, 0.6), (0.3, 0.7)], steps=8)
    wait_for_release(page)
    second = traffic.take()
    print(f"\nwebsocket bytes: first load {first_load}, first release {released}, second release {second}")
    record_figure("latent_pad.websocket_bytes", {"first_load": first_load, "first_release": released,
                                                 "second_release": second})
    assert released < 60_000 and second < 20_000  # no weights again, the component's element not even resent

    # The link opens the same point in a new session.
    link = page.url
    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    try:
        other.goto(link)
        wait_for_app(other)
        other.wait_for_function(READY_JS, arg=sha_of("digits-vae-2d"), timeout=60_000)
        assert state(other)["z"] == pytest.approx(state(page)["z"], abs=1e-6)
        np.testing.assert_array_equal(canvas_rgb(other), canvas_rgb(page))
    finally:
        other.context.close()


def test_switching_models_needs_no_reload(page, server):
    traffic = Traffic(page)
    open_pad(page, server, "digits-vae-2d")
    page.evaluate("() => { window.__noReload = 'still here'; }")
    for name, title in [("shapes-vae", "Shapes VAE (conv, 8-D)"), ("digits-cvae-2d", "Digits CVAE (2-D)"),
                        ("digits-vae-2d", "Digits VAE (2-D latent)")]:
        sidebar_picker(page).click()
        page.get_by_role("option", name=re.compile("^" + re.escape(title))).click()
        traffic.take()
        page.wait_for_function(READY_JS, arg=sha_of(name), timeout=60_000)
        wait_for_app(page)
        sent = traffic.take()
        assert page.evaluate("() => window.__noReload") == "still here"
        assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
        z = state(page)["z"]
        assert len(z) == model_of(name).config.latent_dim
        np.testing.assert_array_equal(canvas_rgb(page), server_render(name, z, 0 if "cvae" in name else None))
        if name == "digits-vae-2d":  # back to the first model: the page still has its decoder
            assert sent < 100_000, f"{sent} bytes to switch back"
    assert_no_exception(page)
    screenshot(page, "latent-pad")


def test_a_page_that_lost_its_decoder_asks_for_it_again(page, server):
    """The page's cache is emptied while the session believes it sent the weights (a remount after a page switch,
    then a reload, which Streamlit reconnects to the same session): the component asks with its `need` trigger and
    the next run sends them, and the released point."""
    open_pad(page, server, "digits-vae-2d")
    drag(page, [(0.5, 0.5), (0.7, 0.3)], steps=4)
    wait_for_release(page)
    released = state(page)["z"]
    page.evaluate("() => { window.__latentLab.decoders.clear(); window.__latentLab.scenes.clear(); }")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Decode").click()
    wait_for_app(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Latent pad").click()
    page.wait_for_function(READY_JS, arg=sha_of("digits-vae-2d"), timeout=60_000)
    wait_for_app(page)
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
    assert state(page)["z"] == pytest.approx(released, abs=1e-6)
    page.reload()
    wait_for_app(page)
    page.wait_for_function(READY_JS, arg=sha_of("digits-vae-2d"), timeout=60_000)
    wait_for_app(page)
    assert state(page)["z"] == pytest.approx(released, abs=1e-6)
    np.testing.assert_array_equal(canvas_rgb(page), server_render("digits-vae-2d", state(page)["z"]))
    assert_no_exception(page)


# -- the pad on the Decode page and below the Latent map -----------------------------------------------------------
TRAVERSAL_JS = """() => { const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  return plot && {tickvals: plot.layout.xaxis.tickvals, ticktext: plot.layout.xaxis.ticktext,
                  shapes: (plot.layout.shapes || []).map(s => (s.x0 + s.x1) / 2)}; }"""


def open_app_page(page, server, path: str, name: str) -> None:
    page.goto(f"{server}/{path}")
    wait_for_app(page)
    page.wait_for_function(READY_JS, arg=sha_of(name), timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)


def framed_values(page) -> list[float]:
    """Per traversal row, the value (σ) of the framed tile: the one nearest the page's point."""
    t = page.evaluate(TRAVERSAL_JS)
    return [float(t["ticktext"][min(range(len(t["tickvals"])), key=lambda c: abs(t["tickvals"][c] - x))])
            for x in t["shapes"]]


def nearest_values(z, values) -> list[float]:
    return [min(values, key=lambda v: abs(v - zi)) for zi in z]


def test_on_the_decode_page_a_drag_redraws_and_the_grid_and_link_follow_the_release(page, server):
    name = "digits-vae-2d"
    open_app_page(page, server, f"decode?model=zoo/{name}", name)
    assert page.locator('[data-testid="stSlider"] input[aria-label="z[0]"]').count() == 0  # the pad, no sliders
    before = canvas_rgb(page)
    np.testing.assert_array_equal(before, server_render(name, [0.0, 0.0]))
    values = [float(v) for v in page.evaluate(TRAVERSAL_JS)["ticktext"]]
    assert framed_values(page) == nearest_values([0.0, 0.0], values)
    box = pad_box(page)
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.85 * box["width"], box["y"] + 0.2 * box["height"], steps=6)
    mid_drag = canvas_rgb(page)  # before the release: only the page's own decoder can have drawn this
    assert not np.array_equal(mid_drag, before)
    page.mouse.up()
    wait_for_release(page)
    assert_no_exception(page)
    z = state(page)["z"]
    assert z[0] > 0.5 and z[1] > 0.5, z  # right and up on the pad
    np.testing.assert_array_equal(canvas_rgb(page), server_render(name, z))
    assert url_point(page) == pytest.approx(z, abs=1e-6)
    expect(page.get_by_text(f"z = ({', '.join(f'{v:.2f}' for v in z)}).")).to_be_visible()
    deadline = time.monotonic() + 10  # plotly redraws the new chart over the next frames
    while framed_values(page) != nearest_values(z, values) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert framed_values(page) == nearest_values(z, values)  # the traversal moved its frames to the new point
    screenshot(page, "decode-latent-pad")


def test_the_decode_pages_start_buttons_move_the_pad(page, server):
    name = "digits-vae-2d"
    open_app_page(page, server, f"decode?model=zoo/{name}", name)
    for _ in range(2):  # the second drag ends where the first did, and Centre sends the point it sent before:
        drag(page, [(0.5, 0.5), (0.2, 0.8)], steps=4)  # that release must still reach Python, the pad still move
        wait_for_release(page)
        z = state(page)["z"]
        assert z != pytest.approx([0.0, 0.0], abs=1e-3)
        assert url_point(page) == pytest.approx(z, abs=1e-6)
        page.get_by_role("button", name="Centre").click()
        wait_for_app(page)
        page.wait_for_function("() => window.__latentLab.state().z.every(v => v === 0)", timeout=30_000)
        np.testing.assert_array_equal(canvas_rgb(page), server_render(name, [0.0, 0.0]))
        assert url_point(page) == [0.0, 0.0]
    page.get_by_role("button", name="Encode").click()  # test image 0's code
    wait_for_app(page)
    page.wait_for_function("() => window.__latentLab.state().z.some(v => v !== 0)", timeout=30_000)
    z = state(page)["z"]
    assert url_point(page) == pytest.approx(z, abs=1e-6)
    np.testing.assert_array_equal(canvas_rgb(page), server_render(name, z))
    assert_no_exception(page)


def test_below_the_latent_map_the_pad_decodes_in_the_browser(page, server):
    name = "digits-vae-10d"  # a PCA map: the pad walks the same plane
    open_app_page(page, server, f"latent-map?model=zoo/{name}", name)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1  # the map is still there
    expect(page.get_by_text("Walk the map in real time")).to_be_visible()
    before = canvas_rgb(page)
    box = pad_box(page)
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.3 * box["height"], steps=6)
    assert not np.array_equal(canvas_rgb(page), before)  # redrawn in the page, mid-drag
    page.mouse.up()
    wait_for_release(page)
    assert_no_exception(page)
    z = state(page)["z"]
    assert len(z) == 10
    np.testing.assert_array_equal(canvas_rgb(page), server_render(name, z))
    assert url_point(page) == pytest.approx(z, abs=1e-6)
    screenshot(page, "latent-map-pad")
