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
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import app_page, wait_for_app  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))
from pad_latency import percentile, server_presses  # noqa: E402  (the same probe the pad bench times the server with)


def measure(page, base: str, model: str, presses: int, dim: str) -> list[float]:
    page.goto(f"{base}/decode?model={model}&decoder=server")
    wait_for_app(page)
    # Start at a real image's code (test image 0): at the centre some models draw an empty image, which a small
    # move leaves empty (no new picture to wait for).
    page.get_by_role("button", name="Encode").click()
    wait_for_app(page)
    return server_presses(page, ".st-key-decoded img", dim, presses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="zoo/digits-vae-2d")
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--dim", default="z[0]", help="the slider to move: one the model uses, or the image may not "
                                                      "change (shapes-vae: z[4])")
    parser.add_argument("--url", help="an already running app (default: start one)")
    args = parser.parse_args()

    with app_page(args.url) as (page, base):
        # The root, then one visit of the page as a warm-up: imports, caches, first paint.
        for path in ("", f"/decode?model={args.model}&decoder=server"):
            page.goto(base + path)
            wait_for_app(page)
        started = time.monotonic()
        latencies = measure(page, base, args.model, args.presses, args.dim)
    load = os.getloadavg()
    print(f"slider key press -> new decoded image painted, {args.model} {args.dim}, {len(latencies)} presses "
          f"({time.monotonic() - started:.0f} s), load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"  median {statistics.median(latencies):.0f} ms   p95 {percentile(latencies, 95):.0f} ms   "
          f"min {min(latencies):.0f} ms   max {max(latencies):.0f} ms   (target: median < 250 ms)")


if __name__ == "__main__":
    main()
