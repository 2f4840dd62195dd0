"""The thread tuner keeps the faster thread count, whichever it is, and measures again when the load changes."""
from vae_core.thread_tuner import ThreadTuner


class FakeMachine:
    """A training loop on a simulated clock: each step takes `step_s[threads]` seconds."""

    def __init__(self, step_s: dict[int, float]):
        self.step_s = step_s
        self.now = 0.0
        self.threads = None
        self.steps = 0

    def clock(self) -> float:
        return self.now

    def set_threads(self, n: int) -> None:
        self.threads = n

    def run(self, tuner: ThreadTuner, steps: int) -> list[int]:
        seen = []
        for _ in range(steps):
            self.now += self.step_s[self.threads]
            self.steps += 1
            tuner.step(self.steps)
            seen.append(self.threads)
        return seen


def make(step_s, **kw):
    machine = FakeMachine(step_s)
    return machine, ThreadTuner(max(step_s), set_threads=machine.set_threads, clock=machine.clock, **kw)


def test_starts_with_one_thread():
    machine, tuner = make({1: 0.01, 2: 0.006})
    assert machine.threads == 1 and tuner.threads_ == 1


def test_keeps_two_threads_on_a_quiet_machine():
    machine, tuner = make({1: 0.01, 2: 0.006})
    seen = machine.run(tuner, 3000)  # about 20 s
    assert seen[-1] == 2
    assert seen.count(2) > 0.75 * len(seen)  # the probes at one thread are a small share


def test_drops_to_one_thread_when_a_core_is_busy():
    machine, tuner = make({1: 0.01, 2: 0.02})  # two threads stall at barriers
    seen = machine.run(tuner, 2000)
    assert seen[-1] == 1
    assert seen.count(1) > 0.75 * len(seen)


def test_follows_a_change_of_load():
    machine, tuner = make({1: 0.01, 2: 0.006})
    machine.run(tuner, 2000)
    machine.step_s = {1: 0.01, 2: 0.02}  # the class opens the page: one core is taken
    seen = machine.run(tuner, 3000)
    assert seen[-1] == 1


def test_one_core_never_switches():
    machine, tuner = make({1: 0.01})
    calls = []
    tuner._set_threads = calls.append
    machine.run(tuner, 1000)
    assert calls == [] and tuner.threads_ == 1
