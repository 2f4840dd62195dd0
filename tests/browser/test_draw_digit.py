"""The drawing box in a real browser: the page's own encoder reproduces vae_core for the 28x28 models, a stroke drawn
with the mouse moves the code and repaints the reconstruction on every move (latency measured), and the release
reaches Python and the URL (the latent pad above follows).

A real `streamlit run app.py` and headless Chromium (see conftest.py); the component's test hook is
window.__latentDraw (ui/draw_digit/draw.js).
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pytest
import torch
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, mouse_path, record_figure, screenshot, wait_for_app
from tests.browser.test_latent_pad import MNIST_MODELS, model_of, sha_of
from vae_core.data import load_data

pytestmark = pytest.mark.timeout(300)
TOLERANCE = 1e-4  # per output (mu and logvar)

READY_JS = """(sha) => { const d = window.__latentDraw; return !!d && d.encoders.has(sha) &&
  (d.decoders.has(sha) || !!(window.__latentLab && window.__latentLab.decoders.has(sha))); }"""

# The draw box has painted once (its first, blank, reconstruction): only then is it the active one.
DRAWN_JS = "() => !!(window.__latentDraw && window.__latentDraw.active)"
RECON_JS = """() => { const c = window.__latentDraw.active.recon;
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


def open_home(page, server, name: str) -> None:
    page.goto(f"{server}/?{urlencode({'model': f'zoo/{name}'})}")
    wait_for_app(page)
    page.wait_for_function(READY_JS, arg=sha_of(name), timeout=120_000)
    page.wait_for_function(DRAWN_JS, timeout=60_000)  # the pad can be ready a frame before the draw box
    assert_no_exception(page)


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_the_browser_encoder_matches_vae_core(page, server, name):
    open_home(page, server, name)
    model = model_of(name)
    test = load_data("mnist", seed=0).test
    rng = np.random.default_rng(3)
    real = test.x[:12].reshape(12, -1).numpy()
    noise = rng.random((8, 784), dtype=np.float32)
    sparse = (rng.random((4, 784)) < 0.1).astype(np.float32)  # mostly black, like a drawing
    x = np.concatenate([real, noise, sparse]).astype(np.float32)
    y = rng.integers(0, 10, size=len(x)) if model.config.is_conditional else None
    got = page.evaluate("""([xs, ys, sha]) => xs.map((x, i) => window.__latentDraw.encode(x, ys ? ys[i] : null, sha))""",
                        [x.tolist(), None if y is None else y.tolist(), sha_of(name)])
    with torch.no_grad():
        mu, logvar = model.encode(torch.from_numpy(x).reshape(-1, 1, 28, 28), None if y is None else torch.from_numpy(y))
    error = float(np.abs(np.asarray([g["mu"] for g in got]) - mu.double().numpy()).max())
    if logvar is not None:
        error = max(error, float(np.abs(np.asarray([g["logvar"] for g in got]) - logvar.double().numpy()).max()))
    else:
        assert all(g["logvar"] is None for g in got)
    record_figure(f"draw_digit.encoder_max_abs_error.{name}", error)
    assert error <= TOLERANCE, f"{name}: browser and vae_core encoders differ by up to {error:.2e}"


def stroke(page, points, steps: int) -> None:
    canvas = page.locator("canvas.draw-input")
    canvas.scroll_into_view_if_needed()
    mouse_path(page, canvas.bounding_box(), points, steps=steps)


Z_MOVED_JS = "(z) => { const q = new URLSearchParams(location.search).get('z'); return !!q && q !== z; }"


def raw_z(page) -> str | None:
    return page.evaluate("() => new URLSearchParams(location.search).get('z')")


def url_z(page) -> list[float] | None:
    q = parse_qs(urlparse(page.url).query).get("z")
    return [float(v) for v in q[0].split(",")] if q else None


@pytest.mark.parametrize("name", ["mnist-vae-2d", "mnist-conv-vae-16d"])
def test_drawing_moves_the_code_repaints_and_the_release_reaches_python(page, server, name):
    open_home(page, server, name)
    expect(page.locator("canvas.draw-input")).to_be_visible()
    blank = page.evaluate(RECON_JS)
    before = raw_z(page)
    # a "7": the top bar, then the long diagonal down
    stroke(page, [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)], steps=30)
    after_first = page.evaluate(RECON_JS)
    assert after_first != blank, "the reconstruction did not change"
    x = np.asarray(page.evaluate("() => window.__latentDraw.input()")).reshape(28, 28)
    ys, xs = np.nonzero(x > 0)
    assert 0 <= x.min() and x.max() <= 1 and max(np.ptp(ys), np.ptp(xs)) + 1 in (19, 20, 21)
    com = [(x * (np.arange(28)[:, None] + 0.5)).sum() / x.sum(), (x * (np.arange(28)[None, :] + 0.5)).sum() / x.sum()]
    assert np.allclose(com, 14, atol=0.75), com
    page.wait_for_function(Z_MOVED_JS, arg=before, timeout=30_000)
    wait_for_app(page)
    mu = page.evaluate("() => Array.from(window.__latentDraw.active.mu)")
    assert url_z(page) == pytest.approx(mu, abs=1e-6)  # Python took the released code and wrote it to the URL
    pad = page.evaluate("() => window.__latentLab && window.__latentLab.state()")
    assert pad is not None and pad["z"] == pytest.approx(mu, abs=1e-5)  # the latent pad moved to it

    # a second stroke (a bar across: a "7" with a cross) moves the code again
    first_mu, before = mu, raw_z(page)
    stroke(page, [(0.35, 0.55), (0.7, 0.55)], steps=20)
    assert page.evaluate(RECON_JS) != after_first
    page.wait_for_function(Z_MOVED_JS, arg=before, timeout=30_000)
    wait_for_app(page)
    assert url_z(page) != pytest.approx(first_mu, abs=1e-6)
    screenshot(page, f"draw-digit-{name}")

    # latency: pointer event to both views painted, and to the next animation frame, over a long scribble
    page.evaluate("() => { window.__latentDraw.latency.length = 0; }")
    path = [(0.2 + 0.6 * (k % 2), 0.15 + 0.7 * k / 8) for k in range(9)]
    stroke(page, path, steps=25)
    lat = page.evaluate("() => window.__latentDraw.latency.filter(e => e.kind === 'pointermove' && e.frame !== null)")
    assert len(lat) >= 150
    handler = np.asarray([e["t1"] - e["t0"] for e in lat])
    to_frame = np.asarray([e["frame"] - e["tEvent"] for e in lat])  # includes the wait for the next vsync
    handler_to_frame = np.asarray([e["frame"] - e["t0"] for e in lat])
    figures = {"events": len(lat), "handler_p50_ms": float(np.percentile(handler, 50)),
               "handler_p95_ms": float(np.percentile(handler, 95)),
               "handler_to_frame_p95_ms": float(np.percentile(handler_to_frame, 95)),
               "event_to_frame_p50_ms": float(np.percentile(to_frame, 50)),
               "event_to_frame_p95_ms": float(np.percentile(to_frame, 95))}
    print(f"\n{name}: {figures}")
    record_figure(f"draw_digit.latency.{name}", figures)
    # "Within one frame", as behaviour rather than milliseconds (a time bound passes or fails with the machine's
    # load; the figures above go to test-artifacts/figures.json, and bench/pad_latency.py times the pad): every
    # pointer move paints the ellipse and the reconstruction in its own handler (t1, after both paints), so the
    # very next animation frame shows both.
    assert all(e["t0"] <= e["t1"] <= e["frame"] for e in lat)


def test_on_the_how_page_a_drawing_gets_its_own_numbers(page, server):
    page.goto(f"{server}/how-a-vae-works?model=zoo/mnist-vae-2d")
    wait_for_app(page)
    page.wait_for_function(READY_JS, arg=sha_of("mnist-vae-2d"), timeout=120_000)
    page.wait_for_function(DRAWN_JS, timeout=60_000)
    stroke(page, [(0.5, 0.15), (0.5, 0.85)], steps=20)  # a "1"
    expect(page.get_by_text("Your drawing: μ =")).to_be_visible(timeout=30_000)
    mu = page.evaluate("() => Array.from(window.__latentDraw.active.mu)")
    expect(page.get_by_text(f"μ = ({mu[0]:.2f}, {mu[1]:.2f})")).to_be_visible()
    assert_no_exception(page)

    # the eraser takes ink away (the input and the code change); Clear empties the box and the reconstruction
    drawn = page.evaluate("() => window.__latentDraw.input()")
    page.locator(".draw-root button[data-tool='eraser']").click()
    stroke(page, [(0.3, 0.5), (0.7, 0.5)], steps=10)
    erased = page.evaluate("() => window.__latentDraw.input()")
    assert erased != drawn and sum(erased) > 0
    assert page.evaluate("() => Array.from(window.__latentDraw.active.mu)") != mu
    page.locator(".draw-root button.clear").click()
    assert sum(page.evaluate("() => window.__latentDraw.input()")) == 0
    recon = page.evaluate(RECON_JS)
    assert set(recon[0::4]) == {0} and page.evaluate("() => window.__latentDraw.active.mu") is None
