"""Background training jobs: a server-wide cap with a fair queue, saving, stopping, and the orphan watchdog."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from vae_core.checkpoint import load_checkpoint
from vae_core.config import TrainConfig, model_config_for
from vae_core.jobs import MAP_POINTS, JobLimiter, TrainingJob, map_indices


# A run that cannot end by itself while a test watches it, by its size rather than by the machine's speed:
# 10,000 epochs (TrainConfig's maximum) x ceil(1,438 digits / 16) = 900,000 optimisation steps. Each step of this
# MLP VAE dispatches ~125 PyTorch operators (profiled: forward, backward, fused Adam, the finiteness check), and
# no machine dispatches an operator in under 1 us (eager overhead is 2-10 us), so the run lasts >= 90 s anywhere,
# while what these tests wait for (a cancel at once, or a 0.5 s orphan grace + the watchdog's 1 s poll + one
# mini-batch) takes a few seconds: a 30x margin or more. Its first epoch is still short (90 steps) on a slow
# machine. The tests cancel it, so its length costs nothing.
LONG_RUN = {"epochs": 10_000, "batch_size": 16}
HANG_GUARD_S = 60  # join/wait limits: only there so a hang fails the test; nothing here is a speed requirement


def _job(digits, limiter, tmp_path=None, epochs=2, batch_size=64, hidden=(32,), **kw):
    config = model_config_for(digits.input_shape, digits.num_classes, latent_dim=2, hidden=hidden)
    save_to = tmp_path / f"m{time.monotonic_ns()}.pt" if tmp_path else None
    return TrainingJob(config, TrainConfig(epochs=epochs, batch_size=batch_size), digits, limiter, save_to=save_to,
                       **kw)


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class TestLimiter:
    def test_first_come_first_served_with_positions(self):
        limiter = JobLimiter(max_running=1)
        cancel = threading.Event()
        order = []
        assert limiter.acquire("a", cancel)
        waiting = [threading.Thread(target=lambda j=j: (limiter.acquire(j, cancel), order.append(j))) for j in "bcd"]
        for t in waiting:
            t.start()
            wait_until(lambda t=t: limiter.waiting == waiting.index(t) + 1)
        assert [limiter.position(j) for j in "bcd"] == [1, 2, 3]
        for expected in "bcd":
            limiter.release(order[-1] if order else "a")
            wait_until(lambda: expected in order)
        assert order == ["b", "c", "d"]

    def test_a_cancelled_waiter_leaves_the_queue(self):
        limiter = JobLimiter(max_running=1)
        limiter.acquire("a", threading.Event())
        cancel = threading.Event()
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("ok", limiter.acquire("b", cancel)))
        t.start()
        wait_until(lambda: limiter.position("b") == 1)
        cancel.set()
        t.join(HANG_GUARD_S)
        assert result["ok"] is False and limiter.waiting == 0


class TestJobs:
    def test_runs_saves_and_reports(self, digits, tmp_path):
        job = _job(digits, JobLimiter(1), tmp_path).start()
        assert job.join(120)
        snap = job.snapshot()
        assert snap.state == "done" and len(snap.history) == 2 and snap.progress == pytest.approx(1.0)
        assert snap.latent["mu"].shape == (len(digits.test), 2) and snap.recon["x_hat"].shape == (8, 1, 8, 8)
        assert snap.latent["index"].tolist() == list(range(len(digits.test)))  # a small test set: every image
        _, meta = load_checkpoint(snap.checkpoint)
        assert meta["status"] == "done" and len(meta["history"]) == 2

    @pytest.mark.parametrize("kind, terms, absent", [("wae", {"mmd"}, {"mi", "tc", "dwkl"}),
                                                     ("tcvae", {"mi", "tc", "dwkl"}, {"mmd"})])
    def test_steps_relay_the_objectives_own_terms(self, digits, kind, terms, absent):
        config = model_config_for(digits.input_shape, digits.num_classes, kind=kind, latent_dim=2, hidden=(32,))
        job = TrainingJob(config, TrainConfig(epochs=1, batch_size=64, steps_per_event=5), digits, JobLimiter(1)).start()
        assert job.join(120)
        steps = job.snapshot().steps
        assert steps and all(terms <= set(s) and not absent & set(s) for s in steps)
        assert all(isinstance(s[k], float) for s in steps for k in terms)
        if kind == "wae":  # no ELBO for a deterministic WAE: relayed as None, not as -recon
            assert all(s["elbo"] is None and s["kl"] is None for s in steps)

    def test_the_cap_queues_the_second_job(self, digits, tmp_path):
        limiter = JobLimiter(1)
        first = _job(digits, limiter, **LONG_RUN).start()
        wait_until(lambda: first.state == "running")
        second = _job(digits, limiter, epochs=1).start()
        wait_until(lambda: second.snapshot().queue_position == 1)
        assert second.state == "queued"
        assert first.state == "running"  # still holding the slot: the second one waited for it, not for luck
        first.cancel()
        assert second.join(120) and second.state == "done"
        assert first.join(HANG_GUARD_S) and first.state == "cancelled"

    def test_stop_keeps_and_saves_what_was_learnt(self, digits, tmp_path):
        job = _job(digits, JobLimiter(1), tmp_path, **LONG_RUN).start()
        wait_until(lambda: len(job.snapshot().history) >= 1)
        job.cancel()
        # Stopping is prompt as behaviour, not as a time: the worker process obeys the cancel mid-run (a run of
        # LONG_RUN's size cannot end on its own meanwhile), in the epoch it was in, and saves that epoch's weights.
        # (That the Trainer stops within one mini-batch of a cancel is test_train.py's TestCancellation.)
        assert job.join(HANG_GUARD_S), "the job did not stop"
        snap = job.snapshot()
        assert snap.state == "cancelled" and snap.checkpoint.is_file()
        assert f"at epoch {len(snap.history) + 1}" in snap.message, snap.message  # the epoch it was stopped in
        _, meta = load_checkpoint(snap.checkpoint)
        assert meta["status"] == "cancelled" and 1 <= len(meta["history"]) == len(snap.history) < LONG_RUN["epochs"]

    def test_a_job_whose_session_closed_is_cancelled(self, digits):
        owner_connected = threading.Event()
        owner_connected.set()
        job = _job(digits, JobLimiter(1), **LONG_RUN, alive=owner_connected.is_set, orphan_grace=0.5).start()
        wait_until(lambda: job.state == "running")
        owner_connected.clear()  # the student closed the tab
        assert job.join(HANG_GUARD_S)
        assert job.state == "cancelled" and "session closed" in job.snapshot().message

    def test_a_failing_worker_frees_its_slot_and_says_why(self, digits):
        limiter = JobLimiter(1)
        job = _job(digits, limiter, epochs=1)
        job.data = None  # the worker will raise on its first touch of the data
        job.start()
        assert job.join(30)
        assert job.state == "failed" and "training failed" in job.snapshot().message
        assert limiter.running == 0


def test_the_live_map_draws_a_fixed_sample_of_a_large_test_set():
    """MNIST's 10,000 test images would make every redraw of the Train page's live map slow: a fixed sample of
    MAP_POINTS is encoded and sent instead, the same images at every epoch."""
    index = map_indices(10_000)
    assert len(index) == MAP_POINTS and len(set(index.tolist())) == MAP_POINTS
    assert index.tolist() == sorted(index.tolist()) and 0 <= int(index.min()) and int(index.max()) < 10_000
    assert index.tolist() == map_indices(10_000).tolist()  # fixed: every epoch draws the same images
    assert int(index.max()) > 9_000  # spread over the whole set, not its first images
    assert map_indices(360).tolist() == list(range(360))


def test_a_job_gets_a_fair_share_of_the_cores():
    from vae_core.jobs import job_threads

    assert job_threads(running=1, cores=2) == 2  # at most: the tuner may choose fewer while pages are drawn
    assert job_threads(running=1, cores=8) == 8
    assert job_threads(running=3, cores=8) == 2  # a fair share when several train
    assert job_threads(running=4, cores=2) == 1 and job_threads(running=1, cores=1) == 1  # never zero


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


class TestWorkerProcess:
    def test_training_runs_in_its_own_process_that_ends_with_the_job(self, digits, tmp_path):
        job = _job(digits, JobLimiter(1), tmp_path, **LONG_RUN).start()
        wait_until(lambda: job.state == "running" and job.worker_pid is not None)
        assert job.worker_pid != os.getpid() and _pid_alive(job.worker_pid)
        wait_until(lambda: len(job.snapshot().history) >= 1)
        job.cancel()
        assert job.join(HANG_GUARD_S) and job.state == "cancelled"
        wait_until(lambda: not _pid_alive(job.worker_pid), timeout=HANG_GUARD_S)

    def test_a_killed_worker_fails_the_job_clearly_and_frees_its_slot(self, digits):
        limiter = JobLimiter(1)
        job = _job(digits, limiter, **LONG_RUN).start()
        wait_until(lambda: job.state == "running" and job.worker_pid is not None)
        os.kill(job.worker_pid, signal.SIGKILL)  # out of memory, a crash in native code
        assert job.join(HANG_GUARD_S)
        assert job.state == "failed" and "stopped unexpectedly" in job.snapshot().message
        assert limiter.running == 0

    def test_the_worker_stops_when_the_server_dies(self, tmp_path):
        """SIGKILL a 'server' process mid-training: its worker notices and stops within seconds. The 'server' is a
        script with no `if __name__ == "__main__"` guard, as Streamlit's page scripts are: the worker must not run
        it again (multiprocessing's default), which the script's own log shows."""
        script, runs = tmp_path / "server.py", tmp_path / "runs.txt"
        script.write_text(textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
            from vae_core.config import TrainConfig, model_config_for
            from vae_core.data import load_data
            from vae_core.jobs import JobLimiter, TrainingJob
            with open({str(runs)!r}, "a") as log:
                print("ran", flush=True, file=log)
            data = load_data("digits")
            config = model_config_for(data.input_shape, data.num_classes, latent_dim=2, hidden=(32,))
            job = TrainingJob(config, TrainConfig(epochs=10_000, batch_size=16), data, JobLimiter(1)).start()
            while job.worker_pid is None or job.state != "running":
                time.sleep(0.05)
            print(job.worker_pid, flush=True)
            time.sleep(600)
        """))
        server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        try:
            worker_pid = int(server.stdout.readline())
            assert _pid_alive(worker_pid)
        finally:
            server.kill()
            server.wait()
        wait_until(lambda: not _pid_alive(worker_pid), timeout=HANG_GUARD_S)
        assert runs.read_text().splitlines() == ["ran"], "the worker ran the server's main script again"


class TestLimits:
    """Issue 15, finding 7: one job at a time per student, a wall-clock cap per job, and workers that are limited
    in memory and are the OOM killer's first choice."""

    def test_one_unfinished_job_per_owner(self, digits):
        from vae_core.errors import QuotaError

        limiter = JobLimiter(2)
        first = _job(digits, limiter, owner="ana", **LONG_RUN).start()
        second = _job(digits, limiter, owner="ana", epochs=1)
        with pytest.raises(QuotaError, match="one at a time"):
            second.start()  # another tab of the same student
        assert second.state == "queued" and not second._thread.is_alive()  # nothing started
        assert limiter.job_of("ana") is first
        other = _job(digits, limiter, owner="ben", epochs=1).start()  # another student is not held up
        assert other.join(120) and other.state == "done"
        first.cancel()
        assert first.join(HANG_GUARD_S)
        assert limiter.job_of("ana") is None
        again = _job(digits, limiter, owner="ana", epochs=1).start()  # once it finished, the next may start
        assert again.join(120) and again.state == "done"

    def test_the_wall_clock_cap_stops_a_job_as_stop_does(self, digits, tmp_path):
        job = _job(digits, JobLimiter(1), tmp_path, max_seconds=2, **LONG_RUN).start()
        assert job.join(HANG_GUARD_S), "the cap did not stop the job"
        snap = job.snapshot()
        assert snap.state == "cancelled" and "limit of 2 seconds" in snap.message, snap.message
        # What it learnt is kept exactly as with Stop: a checkpoint whenever an epoch had ended.
        assert (snap.checkpoint is not None) == bool(snap.history)
        if snap.checkpoint:
            assert load_checkpoint(snap.checkpoint)[1]["status"] == "cancelled"

    def test_the_default_limits_come_from_the_environment(self, monkeypatch):
        from vae_core.jobs import max_job_seconds, worker_memory_mb

        monkeypatch.delenv("LATENT_LAB_WORKER_MEMORY_MB", raising=False)
        monkeypatch.delenv("LATENT_LAB_MAX_JOB_MINUTES", raising=False)
        assert worker_memory_mb() == 4096 and max_job_seconds() == 30 * 60
        monkeypatch.setenv("LATENT_LAB_WORKER_MEMORY_MB", "2048")
        monkeypatch.setenv("LATENT_LAB_MAX_JOB_MINUTES", "5")
        assert worker_memory_mb() == 2048 and max_job_seconds() == 300
        monkeypatch.setenv("LATENT_LAB_MAX_JOB_MINUTES", "soon")  # a typo does not switch the cap off
        assert max_job_seconds() == 30 * 60

    def test_the_worker_is_the_oom_killers_first_choice_and_has_a_memory_limit(self, digits):
        job = _job(digits, JobLimiter(1), memory_mb=3000, **LONG_RUN).start()
        try:
            wait_until(lambda: job.state == "running" and job.worker_pid is not None)
            pid = job.worker_pid
            wait_until(lambda: len(job.snapshot().history) >= 1)  # past the worker's set-up
            assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "1000"
            assert Path("/proc/self/oom_score_adj").read_text().strip() != "1000"  # never the server
            limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
            data_line = next(line for line in limits if line.startswith("Max data size"))
            assert data_line.split()[3] == str(3000 * 2**20), data_line  # the soft limit, in bytes
        finally:
            job.cancel()
            assert job.join(HANG_GUARD_S)

    def test_a_worker_over_its_memory_limit_fails_clearly_and_frees_its_slot(self, digits):
        limiter = JobLimiter(1)
        # 4.3 M weights (17 MB, and Adam's two moments as much again): more than the worker has mapped already. (A
        # tiny model's training can fit in memory the fork server had mapped already, whatever the cap.)
        job = _job(digits, limiter, epochs=1, memory_mb=1, hidden=(1024, 2048)).start()
        assert job.join(HANG_GUARD_S)
        snap = job.snapshot()
        assert snap.state == "failed" and "more than the 1 MB of memory" in snap.message, snap.message
        assert "Traceback" not in snap.message and limiter.running == 0


def test_workers_wait_like_the_command_line_while_the_server_waits_passively():
    """The server waits passively (its cores are shared); the fork server its workers come from does not have the
    setting, so OpenMP in a worker waits as in a command-line run. The thread tuner decides its threads."""
    from multiprocessing import forkserver

    from vae_core.jobs import warm_up_workers

    assert os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"  # tests/conftest.py, like app.py
    warm_up_workers()
    pid = forkserver._forkserver._forkserver_pid
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not any(v.startswith(b"OMP_WAIT_POLICY=") for v in environ)
    assert os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"  # put back for the server


def test_a_worker_starts_with_what_its_first_optimizer_step_imports():
    """torch.optim imports torch._dynamo on an optimizer's first use (1.4-2.3 s of CPU in a fresh process): the fork
    server has it preloaded, so a worker's first step starts at once. Checked in a real child of the jobs' fork
    server, which reports whether torch._dynamo was already there and times an Adam step."""
    from vae_core.jobs import _PROCESSES, warm_up_workers

    warm_up_workers()
    results = _PROCESSES.Queue()
    code = textwrap.dedent("""
        import sys, time
        preloaded = "torch._dynamo" in sys.modules
        import torch
        layer = torch.nn.Linear(4, 2)
        started = time.perf_counter()
        optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(torch.ones(3, 4)).sum().backward()
        optimizer.step()
        results.put((preloaded, time.perf_counter() - started))
    """)
    child = _PROCESSES.Process(target=exec, args=(code, {"results": results}))  # exec: nothing to import by name
    child.start()
    preloaded, step_seconds = results.get(timeout=HANG_GUARD_S)
    child.join(HANG_GUARD_S)
    assert preloaded, "the fork server does not preload torch._dynamo: every worker imports it before its first step"
    print(f"\nfirst Adam step in a worker: {step_seconds * 1000:.0f} ms")
