"""Pick a training job's torch thread count by measuring, and keep measuring as the machine's load changes.

Why measure: on a 2-core server the best count depends on what else runs. Alone, a job trains ~1.8x faster on two
threads than on one; while a browser and the server's pages take one core, two OpenMP threads stall at every
parallel barrier and train slower than one. No fixed rule wins both cases (bench/app_startup.py measured both), so
the job tries each candidate for a short window, keeps the fastest, and tries again every so often.
"""
from __future__ import annotations

import time
from typing import Callable

import torch


class ThreadTuner:
    """Feed it `step(steps_done)` from the training loop; it calls `set_threads` when it changes the count.

    Rounds: each candidate (1 up to max_threads) runs for `window_s` seconds of training, measured in steps per
    second; then the fastest holds for `hold_windows` windows before the next round. Times start after the first
    window of a candidate, so a switch's warm-up (thread pool start, caches) is not charged to it.
    """

    def __init__(self, max_threads: int, window_s: float = 0.5, hold_windows: int = 20,
                 set_threads: Callable[[int], None] = torch.set_num_threads, clock: Callable[[], float] = time.monotonic):
        # one thread first: it is never the disaster that threads stalled at barriers on a busy machine can be
        self.candidates = list(range(1, max(1, max_threads) + 1))  # (1, ..., max)
        self.window_s = window_s
        self.hold_windows = hold_windows
        self._set_threads = set_threads
        self._clock = clock
        self.rates_: dict[int, float] = {}  # threads -> steps/s in the latest round
        self.threads_ = self.candidates[0]
        self._plan = self._round_plan()
        self._window_start: tuple[float, int] | None = None
        self._set_threads(self.threads_)

    def _round_plan(self) -> list[tuple[int, bool]]:
        """(threads, measured?) windows of one round: a settle window then a measured one per candidate."""
        if len(self.candidates) == 1:
            return [(self.candidates[0], False)] * self.hold_windows
        return [(t, measured) for t in self.candidates for measured in (False, True)]

    def step(self, steps_done: int) -> None:
        now = self._clock()
        if self._window_start is None:
            self._window_start = (now, steps_done)
            return
        started, steps_then = self._window_start
        if now - started < self.window_s:
            return
        threads, measured = self._plan.pop(0)
        if measured:
            self.rates_[threads] = (steps_done - steps_then) / (now - started)
        if not self._plan:
            self._plan = self._next_plan()
        self._switch(self._plan[0][0])
        self._window_start = (self._clock(), steps_done)

    def _next_plan(self) -> list[tuple[int, bool]]:
        """After a round, hold the fastest; after a hold, measure again."""
        if len(self.rates_) == len(self.candidates) and len(self.candidates) > 1:
            best = max(self.rates_, key=self.rates_.get)
            self.rates_ = {}
            return [(best, False)] * self.hold_windows
        return self._round_plan()

    def _switch(self, threads: int) -> None:
        if threads != self.threads_:
            self.threads_ = threads
            self._set_threads(threads)
