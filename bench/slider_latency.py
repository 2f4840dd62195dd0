"""Decode page: how long from a slider key press to the new decoded image on screen, in a real browser.

Starts `streamlit run app.py` on a free loopback port (or uses --url), opens the Decode page on its server path
(`?decoder=server`: Streamlit sliders, each move decoded by PyTorch on the server; the page's default, the latent pad
decoding in the browser, is bench/pad_latency.py's) in headless Chromium (Debian's /usr/bin/chromium through
Playwright), starts at test image 0's code ("Encode"), focuses the z[0] slider's thumb (--dim) and presses
ArrowRight --presses times. For each press the page itself records the keydown time and, through a MutationObserver
on the decoded image's `src`, the time its new picture has loaded and the next frame begins (paint), both on
performance.now(); after each press the app is left to go idle. Prints the median and the 95th percentile in ms
(target: median < 250 ms), with the load average (the machine is shared: read the figures with it).

    .venv/bin/python bench/slider_latency.py [--model zoo/digits-vae-2d] [--dim z[0]] [--presses 30] [--url URL]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import (launch_chromium, start_server, stop_server,  # noqa: E402
                                    wait_for_app)

# Installed once in the page: keydown times, and for each change of the decoded image's src the time its picture
# loaded plus one animation frame (the frame that paints it).
PROBE_JS = """() => {
  const lat = window.__latency = {down: [], painted: [], srcs: []};
  document.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') lat.down.push(performance.now());
  }, true);
  let last = document.querySelector('.st-key-decoded img')?.getAttribute('src');
  const check = () => {
    const img = document.querySelector('.st-key-decoded img');
    if (!img) return;
    const src = img.getAttribute('src');
    if (src === last) return;
    last = src;
    const painted = () => requestAnimationFrame(() => { lat.painted.push(performance.now()); lat.srcs.push(src); });
    if (img.complete && img.naturalWidth > 0 && img.currentSrc === src) painted();
    else img.addEventListener('load', painted, {once: true});
  };
  new MutationObserver(check).observe(document.querySelector('[data-testid="stMain"]'),
                                      {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def thumb(page, label: str = "z[0]"):
    """The thumb of the slider labelled `label`: in Streamlit 1.67 an <input type="range"> (role slider, no role
    attribute) carrying the slider's label."""
    return page.locator(f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]')


def measure(page, base: str, model: str, presses: int, dim: str) -> list[float]:
    page.goto(f"{base}/decode?model={model}&decoder=server")
    wait_for_app(page)
    # Start at a real image's code (test image 0): at the centre some models draw an empty image, which a small
    # move leaves empty (no new picture to wait for).
    page.get_by_role("button", name="Encode").click()
    wait_for_app(page)
    page.evaluate(PROBE_JS)
    slider = thumb(page, dim)
    slider.focus()
    for i in range(presses):
        page.keyboard.press("ArrowRight")
        page.wait_for_function("(n) => window.__latency.painted.length >= n", arg=i + 1, timeout=30_000)
        wait_for_app(page)  # idle before the next press: one press, one measurement
    lat = page.evaluate("() => window.__latency")
    if len(lat["down"]) != presses or len(set(lat["srcs"])) != presses:
        raise RuntimeError(f"expected {presses} presses and new images, saw {len(lat['down'])} and "
                           f"{len(set(lat['srcs']))}")
    return [p - d for d, p in zip(lat["down"], lat["painted"])]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="zoo/digits-vae-2d")
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--dim", default="z[0]", help="the slider to move: one the model uses, or the image may not "
                                                      "change (shapes-vae: z[4])")
    parser.add_argument("--url", help="an already running app (default: start one)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.url is None:
            server = start_server(Path(tmp) / "users", Path(tmp) / "server.log")
        base = args.url or str(server)
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                # The root first: a fresh server runs a deep link's page alone (pages/-folder mode) until a
                # session has run app.py. Then one visit as a warm-up: imports, caches, first paint.
                for path in ("", f"/decode?model={args.model}&decoder=server"):
                    page.goto(base + path)
                    wait_for_app(page)
                started = time.monotonic()
                latencies = measure(page, base, args.model, args.presses, args.dim)
                browser.close()
        finally:
            if server is not None:
                stop_server(server.process)
    load = os.getloadavg()
    print(f"slider key press -> new decoded image painted, {args.model} {args.dim}, {len(latencies)} presses "
          f"({time.monotonic() - started:.0f} s), load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"  median {statistics.median(latencies):.0f} ms   p95 {percentile(latencies, 95):.0f} ms   "
          f"min {min(latencies):.0f} ms   max {max(latencies):.0f} ms   (target: median < 250 ms)")


if __name__ == "__main__":
    main()
