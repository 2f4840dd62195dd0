"""Latent pad: input event -> new decoded image painted, in a real browser, against the server path.

Starts `streamlit run app.py` on a free loopback port (or uses --url) and drives headless Chromium (Debian's
/usr/bin/chromium through Playwright) from outside the page:

  browser path   the Latent pad page, for each model: Playwright mouse drags over the pad (real pointer events,
                 --moves of them) and ArrowRight/Left presses on a latent slider (real input events, --presses).
                 The component itself stamps performance.now() at the event handler's entry (t0), after the
                 canvas paint (putImageData, t1) and at the next animation frame (the frame that shows it); from
                 outside, the image canvas's pixels are read back after every event to confirm it changed.
  server path    a Streamlit slider whose fragment decodes with PyTorch and sends the picture back: the pad
                 page's own fallback ("Decode in the browser" off) and, if the app has it, the Decode page's slider.
                 keydown -> the new picture loaded + one animation frame, each press left to finish first.

Prints p50/p95 per model group, the server path, and the ratio. Targets (p95, event -> the next animation frame):
the MLP models, 8x8 digits and 28x28 MNIST, 17 ms (one frame at 60 Hz); the MNIST conv model 16.7 ms (one frame);
the shapes conv models (32x32, 4x the decoder's work) 33 ms. Read them with the load average it prints: the machine
is shared, and a busy core delays the page's frames as much as the decode.

    .venv/bin/python bench/pad_latency.py [--moves 150] [--presses 40] [--server-presses 25] [--url http://...]
    .venv/bin/python bench/pad_latency.py --models mnist-conv-vae-16d mnist-vae-2d --no-server   # just these
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import app_page, wait_for_app  # noqa: E402
from vae_core.checkpoint import file_sha256, load_checkpoint  # noqa: E402

# group -> (title, models, target p95 in ms); a bundled model not yet built is skipped.
GROUPS = {
    "mlp": ("digits MLP (8x8)", ["digits-vae-2d", "digits-ae-2d", "digits-betavae-2d", "digits-cvae-2d",
                                 "digits-vae-10d"], 17.0),
    "mnist-mlp": ("MNIST MLP (28x28)", ["mnist-vae-2d", "mnist-ae-2d", "mnist-betavae-2d", "mnist-cvae-2d"], 17.0),
    "mnist-conv": ("MNIST conv (28x28)", ["mnist-conv-vae-16d"], 16.7),
    "conv": ("shapes conv (32x32)", ["shapes-vae", "shapes-betavae"], 33.0),
}
SERVER_MODELS = ("digits-vae-2d", "mnist-vae-2d", "shapes-vae")  # the pad's fallback is timed on these

READY_JS = """(sha) => { const s = window.__latentLab && window.__latentLab.state();
                        return !!s && s.ready && s.decoderId === sha; }"""
IMAGE_HASH_JS = """() => { const c = window.__latentLab.active.imageCanvas;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let x = 0;
  for (let i = 0; i < d.length; i++) x = (Math.imul(x, 31) + d[i]) | 0; return x; }"""
ENTRIES_JS = """(kind) => window.__latentLab.latency.filter(e => e.kind === kind && e.frame !== null)
                                              .map(e => [e.t1 - e.t0, e.frame - e.t0])"""

# keydown -> the server's new picture in the element `selector` has loaded and the next frame begins.
SERVER_PROBE_JS = """(selector) => {
  const lat = window.__serverLatency = {down: [], painted: [], srcs: []};
  document.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') lat.down.push(performance.now());
  }, true);
  let last = document.querySelector(selector)?.getAttribute('src');
  const check = () => {
    const img = document.querySelector(selector);
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


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": statistics.median(values), "p95": percentile(values, 95), "max": max(values)}


def open_pad(page, base: str, name: str) -> None:
    page.goto(f"{base}/pad?{urlencode({'model': f'zoo/{name}'})}", wait_until="commit")
    wait_for_app(page)
    page.wait_for_function(READY_JS, arg=file_sha256(ROOT / "checkpoints" / f"{name}.pt"), timeout=60_000)


def browser_path(page, base: str, name: str, moves: int, presses: int) -> dict:
    """In-page latencies of pointer drags and slider presses on one model; pixels checked from outside."""
    open_pad(page, base, name)
    page.evaluate("() => { window.__latentLab.latency.length = 0; }")
    box = page.locator("canvas.latent-pad").bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, 0.38 * box["width"]
    changed = 0
    last = page.evaluate(IMAGE_HASH_JS)
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    for k in range(1, moves + 1):  # a Lissajous path over most of the pad
        t = 2 * math.pi * k / moves
        page.mouse.move(cx + r * math.cos(t), cy + r * math.sin(2 * t))
        now = page.evaluate(IMAGE_HASH_JS)
        changed += now != last
        last = now
    page.mouse.up()
    wait_for_app(page)  # the release's rerun
    slider = page.locator("input.latent-slider").first
    slider.focus()
    for k in range(presses):
        page.keyboard.press("ArrowRight" if (k // 10) % 2 == 0 else "ArrowLeft")
        now = page.evaluate(IMAGE_HASH_JS)
        changed += now != last
        last = now
    page.wait_for_timeout(100)  # the last frame stamps
    pointer = page.evaluate(ENTRIES_JS, "pointer")
    slider_entries = page.evaluate(ENTRIES_JS, "slider")
    wait_for_app(page)
    return {"pointer": pointer, "slider": slider_entries, "events": moves + presses, "image_changed": changed}


def server_presses(page, selector: str, thumb_label: str, presses: int) -> list[float]:
    """keydown -> the server's new picture (`selector`) painted, for presses on the Streamlit slider `thumb_label`."""
    page.evaluate(SERVER_PROBE_JS, selector)
    thumb = page.locator(f'[data-testid="stMain"] input[type="range"][aria-label="{thumb_label}"]').first
    thumb.focus()
    low, high, value = (float(thumb.get_attribute(a)) for a in ("min", "max", "value"))
    key = "ArrowRight" if value < (low + high) / 2 else "ArrowLeft"  # away from the nearer end: every press moves
    for i in range(presses):
        page.keyboard.press(key)
        page.wait_for_function("(n) => window.__serverLatency.painted.length >= n", arg=i + 1, timeout=30_000)
        wait_for_app(page)  # idle before the next press: one press, one measurement
    lat = page.evaluate("() => window.__serverLatency")
    if len(lat["down"]) != presses or len(set(lat["srcs"])) != presses:
        raise RuntimeError(f"expected {presses} presses and new images, saw {len(lat['down'])} and "
                           f"{len(set(lat['srcs']))}")
    return [p - d for d, p in zip(lat["down"], lat["painted"])]


def most_active_dim(name: str) -> int:
    """The latent dimension with the most KL: moving an inactive one may not change the picture at all."""
    kl = load_checkpoint(ROOT / "checkpoints" / f"{name}.pt")[1].get("kl_per_dim") or [1.0]
    return max(range(len(kl)), key=lambda i: kl[i])


def pad_server_path(page, base: str, name: str, presses: int) -> list[float]:
    """The pad page's own server path: "Decode in the browser" off, the slider of its most active dimension."""
    open_pad(page, base, name)
    page.get_by_text("Decode in the browser").click()
    wait_for_app(page)
    return server_presses(page, ".st-key-pad_server_image img", f"z[{most_active_dim(name)}]", presses)


def decode_page_path(page, base: str, presses: int) -> list[float]:
    """The Decode page's z[0] slider on its server path (as bench/slider_latency.py measures it)."""
    page.goto(f"{base}/decode?model=zoo/digits-vae-2d&decoder=server", wait_until="commit")
    wait_for_app(page)
    return server_presses(page, ".st-key-decoded img", "z[0]", presses)


def line(label: str, s: dict, target: float | None = None) -> str:
    if not s.get("n"):
        return f"  {label:<44} (no samples)"
    verdict = "" if target is None else ("  ok" if s["p95"] <= target else f"  OVER the {target:g} ms target")
    return (f"  {label:<44} p50 {s['p50']:7.1f} ms   p95 {s['p95']:7.1f} ms   max {s['max']:7.1f} ms"
            f"   (n={s['n']}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=150, help="pointer moves per model")
    parser.add_argument("--presses", type=int, default=40, help="slider key presses per model (browser path)")
    parser.add_argument("--server-presses", type=int, default=25, help="slider key presses per server-path run")
    parser.add_argument("--url", help="an already running app (default: start one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="only these bundled models (default: all)")
    parser.add_argument("--no-server", action="store_true", help="skip the server-path timings")
    args = parser.parse_args()

    checkpoints = {p.stem for p in (ROOT / "checkpoints").glob("*.pt")}
    if args.models:
        unknown = [m for m in args.models if m not in checkpoints]
        if unknown:
            parser.error(f"no checkpoint for {', '.join(unknown)} in checkpoints/")
        checkpoints &= set(args.models)
    groups = {g: [m for m in models if m in checkpoints] for g, (_, models, _) in GROUPS.items()}
    groups = {g: names for g, names in groups.items() if names}
    raw: dict = {"browser": {}, "server": {}}
    load_before = os.getloadavg()
    started = time.monotonic()
    with app_page(args.url) as (page, base):
        page.context.set_default_timeout(60_000)  # a shared, busy machine: generous, these are not the figures
        # The root first, as a warm-up: imports, caches, first paint.
        page.goto(base)
        wait_for_app(page)
        for group, names in groups.items():
            for name in names:
                raw["browser"][name] = browser_path(page, base, name, args.moves, args.presses)
                print(f"  measured {name}: {raw['browser'][name]['image_changed']} of "
                      f"{raw['browser'][name]['events']} events changed the image", flush=True)
        runs = [] if args.no_server else [
            (f"pad fallback, {name}", lambda name=name: pad_server_path(page, base, name, args.server_presses))
            for name in SERVER_MODELS if name in checkpoints]
        if not args.no_server:
            runs.append(("Decode page, digits-vae-2d", lambda: decode_page_path(page, base, args.server_presses)))
        for label, run in runs:
            try:
                raw["server"][label] = run()
            except Exception as exc:  # reported, and the other figures still printed
                shot = Path(tempfile.gettempdir()) / f"pad_latency-{label.replace(' ', '_')}.png"
                page.screenshot(path=str(shot))
                print(f"  ({label} not measured: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}; "
                      f"probe {page.evaluate('() => window.__serverLatency')}; screenshot {shot})")

    load_after = os.getloadavg()
    print(f"\nLatent pad latency, {time.monotonic() - started:.0f} s, load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} on {os.cpu_count()} cores (read the figures with it)")
    summary: dict = {"load_average": [load_before[0], load_after[0]], "browser": {}, "server": {}, "models": {}}
    print("\nbrowser path: event handler entry -> canvas painted (putImageData) | -> the next animation frame")
    for group, names in groups.items():
        paint = [e[0] for n in names for kind in ("pointer", "slider") for e in raw["browser"][n][kind]]
        frame = [e[1] for n in names for kind in ("pointer", "slider") for e in raw["browser"][n][kind]]
        pointer_frame = [e[1] for n in names for e in raw["browser"][n]["pointer"]]
        slider_frame = [e[1] for n in names for e in raw["browser"][n]["slider"]]
        pointer_paint = [e[0] for n in names for e in raw["browser"][n]["pointer"]]
        title, _, target = GROUPS[group]
        summary["browser"][group] = {"paint": stats(paint), "frame": stats(frame), "pointer_frame": stats(pointer_frame),
                                     "pointer_paint": stats(pointer_paint), "slider_frame": stats(slider_frame),
                                     "models": names, "target_p95_ms": target}
        print(f" {title} ({', '.join(names)}):")
        print(line("event -> painted", stats(paint), target))
        print(line("event -> next frame (on screen)", stats(frame), target))
        print(line("  pointer moves -> painted", stats(pointer_paint), target))
        print(line("  pointer moves -> next frame", stats(pointer_frame), target))
        print(line("  slider inputs -> next frame", stats(slider_frame)))
        for n in names if len(names) > 1 else []:
            per = [e[1] for kind in ("pointer", "slider") for e in raw["browser"][n][kind]]
            print(line(f"  {n}: event -> next frame", stats(per)))
    for name, r in raw["browser"].items():
        summary["models"][name] = {"pointer_frame": stats([e[1] for e in r["pointer"]]),
                                   "pointer_paint": stats([e[0] for e in r["pointer"]]),
                                   "events": r["events"], "image_changed": r["image_changed"]}
    print("\nserver path: key press -> the server's picture painted")
    for label, values in raw["server"].items():
        summary["server"][label] = stats(values)
        print(line(label, stats(values)))
    print("\nratio (server path / browser path, event -> next frame)")
    for label, values in raw["server"].items():
        group = "conv" if "shapes" in label else ("mnist-mlp" if "mnist" in label else "mlp")
        b = summary["browser"].get(group, {}).get("frame", {})
        s = stats(values)
        if b.get("n") and s.get("n"):
            print(f"  {label:<44} p50 x{s['p50'] / b['p50']:6.0f}   p95 x{s['p95'] / b['p95']:6.0f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
