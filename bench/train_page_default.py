"""The Train page's first settings on MNIST, timed as a student meets them: a real `streamlit run app.py`, a real
Chromium on the same machine, the page opened, Start pressed without touching a setting, until "Finished".

Reports, per run: the wall time from the click to "Finished" (what the student waits), the job's own time from the
saved checkpoint (TrainingJob start to the end of the last epoch, evaluation included), every epoch whose latent
map the page drew ("Latent map of 2,000 of the 10,000 test images after epoch N"), the test ELBO, and the load
average before and after (these 2 cores are shared: the figure is only meaningful next to the load).

    .venv/bin/python bench/train_page_default.py [--runs 1] [--shots]

Uses Debian's /usr/bin/chromium (no `playwright install`). Figures are merged into
$LATENT_LAB_ARTIFACTS/figures.json (default test-artifacts/) as train_page_default.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.harness import (artifacts_dir, launch_chromium, record_figure, start_server,  # noqa: E402
                           stop_server, wait_for_app)

MAP_TITLE = re.compile(r"Latent map of .* after epoch (\d+)")
# Every distinct latent-map title and progress text the page shows, with the time it appeared (page clock, ms).
WATCH_JS = """() => {
  window.__seen = [];
  const t0 = performance.now();
  window.__watch = setInterval(() => {
    const texts = [...document.querySelectorAll('[data-testid="stMarkdownContainer"] strong')].map(e => e.innerText)
      .filter(t => t.startsWith('Latent map of'));
    const bar = document.querySelector('[data-testid="stProgress"]');
    for (const t of [...texts, bar ? bar.innerText.trim() : null].filter(Boolean))
      if (!window.__seen.some(s => s[0] === t)) window.__seen.push([t, (performance.now() - t0) / 1000]);
  }, 100);
}"""


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_once(browser, url: str, user_dir: Path, name: str, shots: Path | None = None) -> dict:
    import torch
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1800 if shots else 900})  # shots: the charts too
    try:
        page = context.new_page()
        page.goto(f"{url}/train")
        wait_for_app(page, timeout_ms=180_000)
        expect(page.get_by_label("Data", exact=True)).to_have_value(re.compile("^MNIST"))
        box = page.get_by_label("Model name", exact=True)
        box.fill(name)
        box.press("Enter")
        wait_for_app(page)
        load_before = load_average()
        page.evaluate(WATCH_JS)
        t0 = time.monotonic()
        page.get_by_role("button", name="Start training").click()
        finished = page.get_by_test_id("stAlert").filter(has_text="Finished")
        shot_epochs: set[int] = set()
        while True:  # (a screenshot of each new latent map with --shots)
            done = finished.is_visible()
            wall = time.monotonic() - t0  # (the last value: when "Finished" was first seen)
            assert time.monotonic() - t0 < 1_800, "no Finished within 30 minutes"
            if shots is not None:
                for text, _ in page.evaluate("window.__seen"):
                    match = MAP_TITLE.search(text)
                    if match and int(match.group(1)) not in shot_epochs:
                        shot_epochs.add(int(match.group(1)))
                        page.screenshot(path=str(shots / f"{name.replace(' ', '-')}-epoch-{match.group(1)}.png"))
            if done:
                break
            page.wait_for_timeout(200)
        load_after = load_average()
        seen = page.evaluate("window.__seen")
    finally:
        context.close()
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    [path] = sorted(user_dir.rglob(f"{stem}.pt"))
    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    maps = [(int(MAP_TITLE.search(t).group(1)), s) for t, s in seen if MAP_TITLE.search(t)]
    config, train = meta["input_shape"], meta["train_config"]
    return {"wall_s": round(wall, 1), "job_s": round(meta["seconds"], 1), "epochs": train["epochs"],
            "batch_size": train["batch_size"], "input_shape": config, "test_elbo": round(meta["metrics"]["test_elbo"], 1),
            "samples_per_s": round(meta["samples_per_s"]), "maps_seen_at_epochs": [e for e, _ in maps],
            "map_seconds": [round(s, 1) for _, s in maps], "load_before": load_before, "load_after": load_after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--shots", action="store_true",
                        help="screenshot the page as each epoch's latent map appears (into $ARTIFACTS/screenshots)")
    args = parser.parse_args()
    shots = artifacts_dir() / "screenshots" if args.shots else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    results = []
    with tempfile.TemporaryDirectory(prefix="latent_lab_bench_") as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        browser = launch_chromium(p)
        server = start_server(tmp / "user_models", artifacts_dir() / "bench-train-default-server.log")
        try:
            for r in range(args.runs):
                result = run_once(browser, server, tmp / "user_models", f"bench default run {r + 1}", shots)
                results.append(result)
                print(f"run {r + 1}: Start to Finished {result['wall_s']} s (the job itself {result['job_s']} s), "
                      f"{result['epochs']} epochs of batch {result['batch_size']}, {result['samples_per_s']:,} "
                      f"samples/s, test ELBO {result['test_elbo']}; latent map drawn after epochs "
                      f"{result['maps_seen_at_epochs']} at {result['map_seconds']} s; load "
                      f"{result['load_before']} -> {result['load_after']}", flush=True)
        finally:
            stop_server(server.process)
            browser.close()
    record_figure("train_page_default", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
