"""Timings of the data layer that the tests used to assert with wall-clock limits (issue 12: a test asserts
behaviour, a time belongs here). The tests now check the behaviour those limits stood for; this prints the times.

  * drawing the procedural shapes set, 20,000 sprites at 32x32 and at 64x64 (the set the app generates once per
    process)                                                                                    target < 2 s each
  * refusing a zip bomb (one member declaring 600 MiB, ~3 MB on disk)                           target < 2 s
  * refusing a zip whose 600 members of 1 MiB add up past the 512 MiB limit                     target < 2 s

Medians over --reps runs, after one warm-up; read them with the load average printed at the end (2 shared cores).

    .venv/bin/python bench/data_timings.py [--reps 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_core.data import load_image_folder, make_shapes  # noqa: E402
from vae_core.errors import DataError  # noqa: E402


def median_s(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up: imports, allocator
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def refused(path: Path) -> Callable[[], None]:
    def run() -> None:
        try:
            load_image_folder(path)
        except DataError:
            return
        raise SystemExit(f"{path.name} was not refused")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for size in (32, 64):
        seconds = median_s(lambda: make_shapes(20_000, size, seed=0), args.reps)
        rows.append((f"make_shapes(20,000, {size})", seconds, 2.0))
    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "bomb.zip"
        with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("a/0.png", b"x")
            with zf.open("b/zeros.png", "w", force_zip64=True) as f:
                zeros = bytes(1 << 20)
                for _ in range(600):
                    f.write(zeros)
        many = Path(tmp) / "many.zip"
        with zipfile.ZipFile(many, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for i in range(600):
                zf.writestr(f"c{i % 2}/{i}.bmp", bytes(1 << 20))
        rows.append(("refuse a zip bomb", median_s(refused(bomb), args.reps), 2.0))
        rows.append(("refuse 600 x 1 MiB members", median_s(refused(many), args.reps), 2.0))
    for what, seconds, target in rows:
        print(f"{what:32s} {seconds:7.3f} s   (target < {target:g} s){'' if seconds < target else '  OVER'}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
