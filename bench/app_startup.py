"""App start-up and in-app training throughput, measured in a real Chromium against a real `streamlit run app.py`.

(a) Time to first render of the Welcome page: from navigation start until the page shows its title "Latent Lab"
    and the sidebar picker shows the default MNIST VAE. The first load after the server starts is the cold one
    (imports, model loading); then `--loads` fresh browser contexts (new sessions) load it again: their median is
    the warm figure.
(b) Training throughput, page vs CLI, same settings: the digits VAE (latent 2, hidden 256,128, batch 64,
    lr 2e-3, `--epochs` epochs, seed 0) trained once from the Train page in the browser (the samples/s is read
    from the saved checkpoint's meta, the same figure `python -m vae_core train --json` prints: training
    examples per second of optimisation, evaluation excluded) and once with `python -m vae_core train --json`,
    alternating page, CLI, page, CLI ... for `--rounds` rounds. Prints both medians and page/CLI (target >= 0.85).

    .venv/bin/python bench/app_startup.py [--loads 3] [--rounds 2] [--epochs 30] [--skip-train] [--skip-open]
                                          [--also-away] [--cli-threads N]

--also-away adds, each round, a page run where the browser leaves the Train page once training runs: the gap
between it and the normal page run is what drawing the live view costs the training.

Here Chromium shares the server's cores, which a student's browser does not: on 2 cores its drawing takes CPU the
training would have (page/CLI 0.48-0.72 measured, and as noisy). bench/worker_vs_cli.py measures the server's
training path without a browser. --browser-nice N runs Chromium at that nice level.

Uses Debian's /usr/bin/chromium (no `playwright install`), one server and one browser. Figures are also merged
into $LATENT_LAB_ARTIFACTS/figures.json (default test-artifacts/). LATENT_LAB_APP_DIR runs another checkout.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.harness import (APP_DIR, DEFAULT_MODEL_TITLE, FIRST_PAGE_TITLE, artifacts_dir,  # noqa: E402
                           choose_training_data, cpu_seconds, descendants, launch_chromium, record_figure,
                           sidebar_picker, start_server, stop_server, tree_cpu_seconds, wait_for_app)

SETTINGS = dict(dataset="digits", latent_dim=2, hidden=(256, 128), batch_size=64, lr=2e-3, seed=0)
TARGET_RATIO = 0.85


def time_first_render(browser, url: str) -> tuple[float, float]:
    """(seconds to title + default model in the picker, seconds until the app is idle) in a fresh context."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        t0 = time.monotonic()
        page.goto(url, wait_until="commit")
        expect(page.get_by_role("heading", name=FIRST_PAGE_TITLE, level=1)).to_be_visible(timeout=120_000)
        expect(sidebar_picker(page)).to_have_value(re.compile(re.escape(DEFAULT_MODEL_TITLE)), timeout=120_000)
        shown = time.monotonic() - t0
        wait_for_app(page, timeout_ms=120_000)
        return shown, time.monotonic() - t0
    finally:
        context.close()


def train_in_page(browser, url: str, user_dir: Path, epochs: int, name: str, away: bool = False) -> dict:
    """Train the digits from the Train page (its first settings for them are SETTINGS); the saved checkpoint's meta.

    away: go to the Welcome page once training runs, so the live view (charts redrawn every second) is not drawn:
    the difference to a normal page run is the cost of watching."""
    import torch
    from playwright.sync_api import expect

    from bench.harness import alert, set_model_name, set_slider, slider_value

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{url}/train")
        wait_for_app(page, timeout_ms=120_000)
        choose_training_data(page, "Digits")  # the page opens on MNIST; SETTINGS are the digits' first settings
        if slider_value(page, "Epochs").inner_text().strip() != str(epochs):  # 30 is the digits' default
            set_slider(page, "Epochs", home=True, right=epochs - 1, expect_text=str(epochs))
        for label, shown in (("Latent dimensions", "2"), ("Batch size", "64"), ("Learning rate", "0.002")):
            expect(slider_value(page, label)).to_have_text(shown)
        expect(page.get_by_label("Hidden layers (MLP)", exact=True)).to_have_value("256, 128")
        set_model_name(page, name)
        t0 = time.monotonic()
        page.get_by_role("button", name="Start training").click()
        stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        if away:
            expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=120_000)
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Welcome", exact=True).click()
            deadline = time.monotonic() + 1_800
            while not list(user_dir.rglob(f"{stem}.pt")) and time.monotonic() < deadline:
                time.sleep(0.2)
        else:
            expect(alert(page, "Finished")).to_be_visible(timeout=1_800_000)
        wall = time.monotonic() - t0
    finally:
        context.close()
    files = sorted(user_dir.rglob(f"{stem}.pt"))
    if not files:
        raise RuntimeError(f"the page's checkpoint {stem}.pt was not found under {user_dir}")
    meta = torch.load(files[0], map_location="cpu", weights_only=True)["meta"]
    return {"samples_per_s": meta["samples_per_s"], "seconds": meta["seconds"], "wall": wall,
            "test_elbo": meta["metrics"].get("test_elbo")}


def train_cli(epochs: int, out: Path, threads: int = 0) -> dict:
    cmd = [sys.executable, "-m", "vae_core", "train", "--dataset", SETTINGS["dataset"],
           "--latent-dim", str(SETTINGS["latent_dim"]), "--hidden", *map(str, SETTINGS["hidden"]),
           "--batch-size", str(SETTINGS["batch_size"]), "--lr", str(SETTINGS["lr"]), "--seed", str(SETTINGS["seed"]),
           "--epochs", str(epochs), "--out", str(out), "--json", *(["--threads", str(threads)] if threads else [])]
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=APP_DIR, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"samples_per_s": result["samples_per_s"], "seconds": result["seconds"], "wall": time.monotonic() - t0,
            "test_elbo": result.get("test_elbo")}


class CpuMeter:
    """CPU seconds used by the server (with its training workers) and by the browser (every other process below
    this one).

    The browser's figure misses processes that exit during the run (a closed context's renderer): a lower bound."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def read(self) -> tuple[float, dict[int, float]]:
        server = {self.server_pid, *descendants(self.server_pid)}
        browser = {pid: cpu_seconds(pid) for pid in descendants(os.getpid()) if pid not in server}
        return tree_cpu_seconds(self.server_pid), browser

    @staticmethod
    def delta(before, after) -> tuple[float, float]:
        return after[0] - before[0], sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=3, help="fresh page loads after the cold one (median)")
    parser.add_argument("--rounds", type=int, default=2, help="page/CLI training rounds, alternating")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cli-threads", type=int, default=0,
                        help="torch threads of the CLI runs (0: the CLI's default, one per core; the page's job "
                             "uses one core fewer, see vae_core.jobs.job_threads)")
    parser.add_argument("--skip-open", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--also-away", action="store_true",
                        help="each round also trains from the page and then leaves it (no live view drawn)")
    parser.add_argument("--browser-nice", type=int, default=0,
                        help="nice level of Chromium (0: it competes with the training for this machine's cores; "
                             "a student's browser runs on the student's own computer)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    print(f"app: {APP_DIR}   load average at start: {load_average()}   Chromium at nice {args.browser_nice}")
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="latent_lab_bench_") as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        browser = launch_chromium(p, niceness=args.browser_nice)
        server = start_server(tmp / "user_models", artifacts_dir() / "bench-server.log")
        try:
            health = server.healthy_at - server.started_at
            print(f"server health answered {health:.2f} s after the process started")
            if not args.skip_open:
                cold, cold_idle = time_first_render(browser, server)
                print(f"cold first render: {cold:.2f} s (idle after {cold_idle:.2f} s; "
                      f"{server.healthy_at - server.started_at + cold:.2f} s after the process started, approx.)")
                warm = [time_first_render(browser, server) for _ in range(args.loads)]
                shown = [w[0] for w in warm]
                print(f"fresh page loads: {', '.join(f'{s:.2f}' for s in shown)} s -> median "
                      f"{statistics.median(shown):.2f} s (idle: median {statistics.median(w[1] for w in warm):.2f} s)")
                figures.update(bench_cold_first_render_seconds=round(cold, 3),
                               bench_first_render_median_seconds=round(statistics.median(shown), 3))
            if not args.skip_train:
                page_runs, cli_runs, away_runs = [], [], []
                meter = CpuMeter(server.process.pid)

                def metered(run, *a, **k) -> dict:
                    before = meter.read()
                    result = run(*a, **k)
                    after = meter.read()
                    result["server_cpu"], result["browser_cpu"] = CpuMeter.delta(before, after)
                    return result

                def cpu_note(x: dict) -> str:
                    return (f"{x['wall']:.1f} s wall, CPU: server {x['server_cpu']:.1f} s, "
                            f"browser {x['browser_cpu']:.1f} s; load {load_average()}")

                for r in range(args.rounds):
                    page_runs.append(metered(train_in_page, browser, server, tmp / "user_models", args.epochs,
                                             f"bench page run {r + 1}"))
                    print(f"round {r + 1} page: {page_runs[-1]['samples_per_s']:,.0f} samples/s "
                          f"({cpu_note(page_runs[-1])})")
                    if args.also_away:
                        away_runs.append(metered(train_in_page, browser, server, tmp / "user_models", args.epochs,
                                                 f"bench away run {r + 1}", away=True))
                        print(f"round {r + 1} page, left while training: {away_runs[-1]['samples_per_s']:,.0f} "
                              f"samples/s ({cpu_note(away_runs[-1])})")
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cli_runs.append(train_cli(args.epochs, tmp / f"cli-{r}.pt", args.cli_threads))
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cli_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                    print(f"round {r + 1} CLI:  {cli_runs[-1]['samples_per_s']:,.0f} samples/s "
                          f"({cli_runs[-1]['wall']:.1f} s wall incl. start-up, CPU {cli_cpu:.1f} s; "
                          f"load {load_average()})")
                # Not like for like: a page run's server CPU also pays the page's own reruns (loading /train,
                # the model name), the CLI's includes its imports. Wall-time throughput is the figure that counts.
                print(f"CPU seconds per run, medians: server while the page is watched "
                      f"{statistics.median(x['server_cpu'] for x in page_runs):.1f} s"
                      + (f", server with the page left {statistics.median(x['server_cpu'] for x in away_runs):.1f} s"
                         if away_runs else "") + " (the CLI's include its start-up)")
                page_med = statistics.median(x["samples_per_s"] for x in page_runs)
                cli_med = statistics.median(x["samples_per_s"] for x in cli_runs)
                ratio = page_med / cli_med
                verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
                print(f"median samples/s: page {page_med:,.0f}, CLI {cli_med:,.0f}; page/CLI = {ratio:.3f} "
                      f"({verdict} the {TARGET_RATIO} target)")
                figures.update(page_samples_per_s=round(page_med, 1), cli_samples_per_s=round(cli_med, 1),
                               page_vs_cli_throughput_ratio=round(ratio, 3))
                if away_runs:
                    away_med = statistics.median(x["samples_per_s"] for x in away_runs)
                    print(f"median samples/s with the Train page left while training: {away_med:,.0f} "
                          f"(away/CLI = {away_med / cli_med:.3f}, page/away = {page_med / away_med:.3f})")
                    figures.update(page_away_samples_per_s=round(away_med, 1))
        finally:
            stop_server(server.process)
            browser.close()
    for name, value in figures.items():
        record_figure(name, value)
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
