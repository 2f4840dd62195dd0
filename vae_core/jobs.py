"""Background training jobs for the app: a worker process per job, a server-wide cap, no Streamlit calls inside.

    limiter = JobLimiter(max_running=2)          # one per server (the app keeps it in st.cache_resource)
    job = TrainingJob(model_config, train_config, data, limiter, save_to=folder / "model.pt").start()
    job.snapshot()   # a consistent copy of state, progress, history, latest map and reconstructions
    job.cancel()     # stops within one mini-batch; what was learnt is kept and saved

The UI polls `snapshot()`; a thread of the server reads the worker's messages and writes them under a lock, and
never waits on the UI.

Why a process, not a thread: a training loop in the server's process fights every student's page for the GIL
(each small torch op gives it up and must wait to get it back), and what it allocates stays in the server after
it ends. In its own process (forked from a `forkserver` that has torch imported already, so a start costs
milliseconds, not an interpreter start-up) it runs at the CLI's speed, a crash cannot take the server down, and
its memory goes back to the system when it exits. The worker stops by itself if the server dies.

Limits, so that one student cannot take the class's server (issue 15): one unfinished job per owner (a student's
session or locker, `JobLimiter.claim`), a wall-clock cap per job (LATENT_LAB_MAX_JOB_MINUTES, default 30: the job
is stopped as by Stop, keeping what it learnt), and in the worker a memory limit (LATENT_LAB_WORKER_MEMORY_MB,
default 4096, as RLIMIT_DATA) and an OOM score of 1000, so that when the machine runs out of memory the kernel
kills a worker (a failed run for one student) before the server (everyone's pages).
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from vae_core.config import ModelConfig, TrainConfig
from vae_core.errors import QuotaError
from vae_core.latent import encode_dataset, reconstruct
from vae_core.models import build_model
from vae_core.thread_tuner import ThreadTuner
from vae_core.train import TrainEvent
from vae_core.training_run import train_and_save

MAX_STEP_POINTS = 2000  # step metrics kept for the live curve; older ones are thinned
STEP_KEYS = ("loss", "recon", "kl", "elbo")
# the objective's own terms, relayed when the model has them: the WAE's MMD, the β-TCVAE's MI, TC and dimension-wise KL
STEP_EXTRA_KEYS = ("mmd", "mi", "tc", "dwkl")
MAP_POINTS = 2000  # test images on the live latent map: a fixed sample beyond that (MNIST's 10,000 would slow it)
# A worker's data memory (RLIMIT_DATA: heap and private mappings, which is where tensors live), torch's own ~0.8 GB
# after the fork included. 4 GB holds the largest model the settings admit (16 M parameters: weights, gradients and
# Adam's two moments are 256 MB) with MNIST as float32 (220 MB) and batches of 256 with room to spare.
DEFAULT_WORKER_MEMORY_MB = 4096
DEFAULT_MAX_JOB_MINUTES = 30.0  # wall clock per job, from the moment it starts training (queueing not counted)
STOP_GRACE_S = 60.0  # a worker still running this long after a stop (it obeys within one mini-batch) is killed
log = logging.getLogger("latent_lab.jobs")

# Workers are forked from a server process that has imported this module (hence torch) once, and torch._dynamo:
# every torch.optim optimizer imports it on its first use (to keep its methods out of torch.compile's tracing), which
# cost each worker 1.4-2.3 s of CPU before its first step, against 0.02 s with it preloaded (a forkserver child
# building an Adam and taking one step, load 2-3). We never compile; the import is the price of torch.optim.
WORKER_PRELOAD = ("vae_core.jobs", "torch._dynamo")
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(list(WORKER_PRELOAD))


_START_LOCK = threading.Lock()


def step_metrics(metrics: dict) -> dict:
    """The step metrics the Train page plots: STEP_KEYS (kl and elbo None for the WAE) and the objective's own terms
    present in this model's events (STEP_EXTRA_KEYS)."""
    return {**{k: metrics.get(k) for k in STEP_KEYS}, **{k: metrics[k] for k in STEP_EXTRA_KEYS if k in metrics}}


@contextlib.contextmanager
def _workers_skip_main_module():
    """Start worker processes without re-running the parent's __main__ in them.

    multiprocessing makes a new process import the parent's main module first (so pickled functions defined there
    resolve). Inside Streamlit, __main__ is the page script being run: every worker would run app.py and the page
    again, in bare mode, before training. Our worker's code lives in this module, so it needs none of that."""
    from multiprocessing import spawn

    original = spawn.get_preparation_data

    def without_main(name):
        data = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    with _START_LOCK:
        spawn.get_preparation_data = without_main
        try:
            yield
        finally:
            spawn.get_preparation_data = original


def warm_up_workers() -> None:
    """Start the fork server now (it imports torch: ~2 s), so the first student's Start does not wait for it; with
    LATENT_LAB_RAY_ADDRESS set, connect to the Ray cluster instead (trainings run there, see vae_core.ray_jobs)."""
    if ray_address():
        from vae_core.ray_jobs import connect

        connect(ray_address())
        return
    _ensure_fork_server()


def ray_address() -> str:
    """The Ray cluster that trains the jobs (LATENT_LAB_RAY_ADDRESS, e.g. "10.0.0.5:6379"), or "" for the embedded
    default: local worker processes and an in-memory limiter."""
    return os.environ.get("LATENT_LAB_RAY_ADDRESS", "").strip()


def new_job_limiter(max_running: int | None = None) -> "JobLimiter":
    """The server's limiter, which also decides where jobs train: this machine's worker processes (max_running at
    once), or with LATENT_LAB_RAY_ADDRESS the Ray cluster, whose scheduler actor holds the queue and the
    one-job-per-student rule for every replica (vae_core.ray_jobs.ClusterLimiter)."""
    if ray_address():
        from vae_core.ray_jobs import ClusterLimiter

        return ClusterLimiter(ray_address())
    return JobLimiter(max_running)


def _ensure_fork_server() -> None:
    """Start the fork server, if it is not running, with OpenMP's default waiting rather than the server's.

    The Streamlit server sets OMP_WAIT_POLICY=PASSIVE (app.py): its pages share the cores. A worker is different:
    its thread tuner (vae_core.thread_tuner) gives it two threads only when they run faster, i.e. when it has the
    cores, and there passive waiting costs ~25% (measured: digits MLP, 2 threads, 11.3k vs 15.4k samples/s).
    OpenMP reads the policy once, when torch loads, which in the workers happens in the fork server: so the fork
    server is started without it. The environment is changed only for the instant of that start, under a lock."""
    from multiprocessing import forkserver

    with _START_LOCK:
        saved = os.environ.pop("OMP_WAIT_POLICY", None)
        try:
            forkserver.ensure_running()
        finally:
            if saved is not None:
                os.environ["OMP_WAIT_POLICY"] = saved


def _env_number(name: str, default: float) -> float:
    """A positive number from the environment, else `default` (a typo must not switch a limit off)."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        log.warning("%s=%r is not a number: using %s", name, os.environ.get(name), default)
        return default
    return value if value > 0 else default


def worker_memory_mb() -> int:
    """The memory limit of each training worker, in MB (LATENT_LAB_WORKER_MEMORY_MB, default 4096)."""
    return int(_env_number("LATENT_LAB_WORKER_MEMORY_MB", DEFAULT_WORKER_MEMORY_MB))


def max_job_seconds() -> float:
    """The wall-clock cap of one training job, in seconds (LATENT_LAB_MAX_JOB_MINUTES, default 30)."""
    return 60.0 * _env_number("LATENT_LAB_MAX_JOB_MINUTES", DEFAULT_MAX_JOB_MINUTES)


def job_threads(running: int, cores: int | None = None) -> int:
    """The most torch threads one job may use: a fair share of the cores among the jobs running.

    The job then picks between this and fewer by measuring (vae_core.thread_tuner): alone on a quiet server two
    threads train fastest; while the browser and the pages take a core, one does."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, running))


class JobLimiter:
    """At most `max_running` jobs train at once; the others wait in first-come order and know their place."""

    def __init__(self, max_running: int | None = None):
        self.max_running = max(1, max_running or os.cpu_count() or 1)
        self._cond = threading.Condition()
        self._running: set[str] = set()
        self._queue: deque[str] = deque()
        self._owners: dict[str, "TrainingJob"] = {}  # owner (a student) -> their latest job

    def acquire(self, job_id: str, cancel: threading.Event) -> bool:
        """Wait for a slot; False if cancelled while waiting."""
        with self._cond:
            self._queue.append(job_id)
            while not cancel.is_set():
                if self._queue[0] == job_id and len(self._running) < self.max_running:
                    self._queue.popleft()
                    self._running.add(job_id)
                    self._cond.notify_all()
                    return True
                self._cond.wait(timeout=0.2)  # wake up now and then to notice a cancel
            self._queue.remove(job_id)
            self._cond.notify_all()
            return False

    def release(self, job_id: str) -> None:
        with self._cond:
            self._running.discard(job_id)
            self._cond.notify_all()

    def run(self, job: "TrainingJob") -> None:
        """Train `job` once it holds a slot: here in a local worker process (ClusterLimiter: on Ray)."""
        job._train()

    def claim(self, owner: str, job: "TrainingJob") -> None:
        """Record `job` as `owner`'s job; QuotaError if the owner's previous job has not finished (one job at a time
        per student, across their tabs)."""
        with self._cond:
            previous = self._owners.get(owner)
            if previous is not None and previous is not job and not previous.finished.is_set():
                raise QuotaError(f"you already have a training running (“{previous.name}”), maybe in another tab: "
                                 "one at a time per student. Stop it or wait for it to finish, then start this one")
            self._owners[owner] = job

    def unclaim(self, owner: str, job: "TrainingJob") -> None:
        with self._cond:
            if self._owners.get(owner) is job:
                del self._owners[owner]

    def job_of(self, owner: str) -> "TrainingJob | None":
        """The owner's unfinished job, if any."""
        with self._cond:
            job = self._owners.get(owner)
            return job if job is not None and not job.finished.is_set() else None

    def position(self, job_id: str) -> int | None:
        """1 for the next job to start, None if not waiting."""
        with self._cond:
            return self._queue.index(job_id) + 1 if job_id in self._queue else None

    @property
    def running(self) -> int:
        with self._cond:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)


@dataclass
class JobSnapshot:
    """What the UI needs to draw one poll; copies, safe to read without the lock."""

    id: str
    state: str
    queue_position: int | None
    progress: float
    epoch: int
    epochs: int
    samples_per_s: float
    eta_seconds: float | None
    steps: list[dict]
    history: list[dict]
    latent: dict | None  # {"mu": (N, D), "y": (N,), "index": (N,) tensors, "epoch": int}: the test images of
    #                      map_indices (all of them up to MAP_POINTS), latest epoch
    recon: dict | None  # {"x": (8, C, H, W), "x_hat": (8, C, H, W), "epoch": int}
    message: str
    checkpoint: Path | None
    seconds: float


class TrainingJob:
    """One training run: a daemon thread waits for a slot, then a worker process trains and saves the checkpoint
    while the thread relays its progress."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, data, limiter: JobLimiter, *,
                 save_to: Path | None = None, name: str = "", on_finish: Callable[["TrainingJob"], None] | None = None,
                 preview_size: int = 8, alive: Callable[[], bool] | None = None, orphan_grace: float = 30.0,
                 owner: str | None = None, max_seconds: float | None = None, memory_mb: int | None = None):
        """owner: who the job is for (one unfinished job per owner, see JobLimiter.claim); max_seconds: the
        wall-clock cap once training started (default max_job_seconds(); 0 for none); memory_mb: the worker's
        memory limit (default worker_memory_mb(); 0 for none)."""
        self.id = uuid.uuid4().hex[:12]
        self.name = name or model_config.label
        self.model_config = model_config
        self.train_config = train_config
        self.data = data
        self.limiter = limiter
        self.save_to = Path(save_to) if save_to else None
        self.on_finish = on_finish
        self.preview_size = preview_size
        self.worker_pid: int | None = None  # the training process, once started
        self.owner = owner
        self.max_seconds = max_job_seconds() if max_seconds is None else max_seconds
        self.memory_mb = worker_memory_mb() if memory_mb is None else memory_mb
        self._cancel = _PROCESSES.Event()  # shared with the worker process
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=f"train-{self.id}", daemon=True)
        self._alive = alive
        self._orphan_grace = orphan_grace
        self._start_time = time.time()
        # State below is written under the lock by the thread that relays the worker's messages (_train).
        self._state = "queued"
        self._progress = 0.0
        self._epoch = 0
        self._samples_per_s = 0.0
        self._eta: float | None = None
        self._steps: list[dict] = []
        self._history: list[dict] = []
        self._latent: dict | None = None
        self._recon: dict | None = None
        self._message = ""
        self._checkpoint: Path | None = None
        self._message_on_cancel = ""
        self.finished = threading.Event()

    # -- control from the UI --------------------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        """Queue the job; QuotaError (nothing started) if its owner already has an unfinished one."""
        if self.owner is not None:
            self.limiter.claim(self.owner, self)
        self._thread.start()
        if self._alive is not None:
            threading.Thread(target=self._watch_owner, name=f"watch-{self.id}", daemon=True).start()
        return self

    def _watch_owner(self, poll_seconds: float = 1.0) -> None:
        """Cancel the job once its owner (the student's browser session) has been gone for `orphan_grace` s."""
        gone_since = None
        while not self.finished.wait(poll_seconds):
            try:
                alive = self._alive()
            except Exception:  # a probe that fails must not kill a student's run
                alive = True
            if alive:
                gone_since = None
            elif gone_since is None:
                gone_since = time.monotonic()
            elif time.monotonic() - gone_since >= self._orphan_grace:
                self._message_on_cancel = "the browser session closed, so training stopped"
                self.cancel()
                return

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def is_active(self) -> bool:
        return self.state in ("queued", "running")

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                id=self.id, state=self._state, queue_position=self.limiter.position(self.id) if self._state == "queued" else None,
                progress=self._progress, epoch=self._epoch, epochs=self.train_config.epochs,
                samples_per_s=self._samples_per_s, eta_seconds=self._eta, steps=list(self._steps),
                history=list(self._history), latent=self._latent, recon=self._recon, message=self._message,
                checkpoint=self._checkpoint, seconds=time.time() - self._start_time)

    # -- the worker -----------------------------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            if not self.limiter.acquire(self.id, self._cancel):
                self._set(state="cancelled", message="cancelled before it started")
                return
            try:
                self.limiter.run(self)
            finally:
                self.limiter.release(self.id)
        except Exception as exc:  # never die silently: the student sees the error
            self._set(state="failed", message=f"training failed: {type(exc).__name__}: {exc}")
        finally:
            if self.on_finish:  # before `finished`, so join() returns only once the callback has run
                try:
                    self.on_finish(self)
                except Exception:
                    pass
            self.finished.set()
            if self.owner is not None:
                self.limiter.unclaim(self.owner, self)

    def _train(self) -> None:
        messages = _PROCESSES.Queue()
        worker = _PROCESSES.Process(
            target=_worker_main, name=f"train-{self.id}", daemon=True,
            args=(messages, self._cancel, self.model_config, self.train_config, self.data, self.preview_size,
                  self.save_to, self.name, job_threads(self.limiter.running), os.getpid(), self.memory_mb))
        _ensure_fork_server()
        with _workers_skip_main_module():
            worker.start()
        self.worker_pid = worker.pid
        self._set(state="running")
        deadline = time.monotonic() + self.max_seconds if self.max_seconds else None
        cancelled_at, stuck = None, False
        ended = False
        while not ended:
            if deadline is not None and time.monotonic() > deadline and not self._cancel.is_set():
                self._message_on_cancel = (f"it reached the limit of {_duration(self.max_seconds)} a training may run "
                                           "on this server")
                self._cancel.set()  # as Stop: the worker ends its mini-batch and saves what it learnt
            if self._cancel.is_set():
                cancelled_at = cancelled_at or time.monotonic()
                if time.monotonic() - cancelled_at > STOP_GRACE_S and worker.is_alive():
                    stuck = True  # it does not answer the stop: end it (nothing of it can be saved)
                    worker.kill()
            try:
                message = messages.get(timeout=0.5)
            except queue.Empty:
                if not worker.is_alive():
                    worker.join()
                    try:  # its last words may have arrived between the timeout above and the check
                        message = messages.get(timeout=1.0)
                    except queue.Empty:  # died without a word: killed, out of memory, a crash in native code
                        if stuck:
                            message = (f"training failed: the worker did not stop within {STOP_GRACE_S:g} s of being "
                                       "asked to, so it was ended; nothing of it could be saved")
                        else:
                            message = (f"training failed: the worker process stopped unexpectedly (exit code "
                                       f"{worker.exitcode}, maybe out of memory); try a smaller model or batch")
                        self._set(state="failed", message=message)
                        return
                    ended = self._on_message(message)
                continue
            ended = self._on_message(message)
        worker.join(timeout=10)

    def _on_message(self, message: "WorkerMessage") -> bool:
        """Apply one message of the worker; True for its last one."""
        if isinstance(message, StepReport):
            m = message.metrics
            with self._lock:
                self._steps.append({"step": message.step, "epoch": message.epoch, **step_metrics(m)})
                if len(self._steps) > MAX_STEP_POINTS:
                    self._steps = self._steps[::2]
                self._progress, self._samples_per_s, self._epoch = m["progress"], m["samples_per_s"], message.epoch
        elif isinstance(message, EpochReport):
            m, epoch, latent, recon = message.metrics, message.epoch, message.latent, message.recon
            with self._lock:
                self._history.append(m)
                self._progress, self._samples_per_s, self._eta = m["progress"], m["samples_per_s"], m["eta_seconds"]
                self._epoch = epoch
                self._latent = {"mu": torch.from_numpy(latent["mu"]), "y": torch.from_numpy(latent["y"]),
                                "index": torch.from_numpy(latent["index"]), "epoch": epoch}
                self._recon = {"x": torch.from_numpy(recon["x"]), "x_hat": torch.from_numpy(recon["x_hat"]),
                               "epoch": epoch}
        elif isinstance(message, RunEnded):
            text = message.text
            if message.status == "cancelled" and self._message_on_cancel:
                text = self._message_on_cancel
            self._set(state=message.status, message=text,
                      checkpoint=Path(message.checkpoint) if message.checkpoint else None)
            return True
        return False  # WorkerStarted: nothing to show

    def _set(self, **fields) -> None:
        with self._lock:
            for key, value in fields.items():
                setattr(self, f"_{key}", value)


# -- the worker process -----------------------------------------------------------------------------------------------
# What the worker tells the server, in order: WorkerStarted, StepReport and EpochReport as training goes, then one
# RunEnded. Frozen dataclasses of plain values (tensors as NumPy arrays): they pickle through the queue.
@dataclass(frozen=True)
class WorkerStarted:
    """Sent first: it starts the queue's feeder thread before the memory cap (see _worker_main)."""


@dataclass(frozen=True)
class StepReport:
    step: int  # global mini-batch count
    epoch: int
    metrics: dict  # step_metrics (STEP_KEYS and those of STEP_EXTRA_KEYS present), "progress" and "samples_per_s"


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    metrics: dict  # the epoch's record (vae_core.train)
    latent: dict  # {"mu": (N, D), "y": (N,), "index": (N,)} arrays of the map's test images (map_indices)
    recon: dict  # {"x": (8, C, H, W), "x_hat": (8, C, H, W)} arrays


@dataclass(frozen=True)
class RunEnded:
    status: str  # "done" | "failed" | "cancelled"
    text: str  # what the student reads
    checkpoint: str | None  # the saved file, None when nothing was kept


WorkerMessage = WorkerStarted | StepReport | EpochReport | RunEnded


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:g} minute{'' if minutes == 1 else 's'}" if minutes >= 1 else f"{seconds:g} seconds"


def _prefer_oom_kill() -> None:
    """Make this process the OOM killer's first choice (score adjustment 1000, the most): when memory runs out, a
    worker dies (one failed run) rather than the server. Raising one's own score needs no privilege."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError as exc:  # not Linux, or /proc read-only: train anyway
        log.warning("could not set the worker's oom_score_adj: %s", exc)


def _limit_memory(memory_mb: int | None) -> int | None:
    """Cap this process's data memory (RLIMIT_DATA's soft limit) at memory_mb MB; returns the hard limit to lift
    it back to (None when no limit was set). RLIMIT_DATA rather than RLIMIT_AS: torch maps ~3 GB of address space
    it never touches, and its heap is what grows. A failing setrlimit is logged, and training goes on."""
    if not memory_mb:
        return None
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = int(memory_mb) * 2**20
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        return hard
    except (ImportError, OSError, ValueError) as exc:
        log.warning("could not limit the worker's memory to %s MB: %s", memory_mb, exc)
        return None


def _lift_memory_limit(hard: int | None) -> None:
    """Back to the hard limit, so that the worker can still report after an allocation failed."""
    if hard is None:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))
    except (ImportError, OSError, ValueError):
        pass


def _out_of_memory(text: str) -> bool:
    """Whether an error message is an allocation failure (torch's allocator or Python's MemoryError)."""
    return any(s in text for s in ("MemoryError", "can't allocate memory", "Cannot allocate memory", "[Errno 12]",
                                   "not enough memory", "std::bad_alloc", "failed to map segment"))


def _memory_message(memory_mb: int | None) -> str:
    return (f"training failed: it needed more than the {memory_mb:,} MB of memory one training may use on this "
            "server; try a smaller model, smaller batches or smaller images")


def _worker_main(messages, cancel, model_config: ModelConfig, train_config: TrainConfig, data, preview_size: int,
                 save_to: Path | None, name: str, threads: int, server_pid: int | None,
                 memory_mb: int | None = None) -> None:
    """Train in this process and report to the server through `messages` (WorkerMessage: StepReports and
    EpochReports, then one RunEnded). Tensors travel as NumPy arrays (plain pickles).

    First the process makes itself the OOM killer's first choice and caps its memory at memory_mb MB; an
    allocation over the cap fails the run with a message that says so (the cap is lifted to report it). Every
    thread the worker needs is started before the cap: a thread whose start-up cannot allocate never signals
    that it started, and Thread.start() would wait for it forever."""
    _prefer_oom_kill()
    hard = None
    try:
        # a fixed count if the config asks for one, else measured as the machine's load changes
        tuner = None if train_config.num_threads else ThreadTuner(threads)
        if tuner is None:
            torch.set_num_threads(train_config.num_threads)
        if server_pid is not None:  # None on Ray, where the actor shares its driver's fate (vae_core.ray_jobs)
            threading.Thread(target=_stop_if_orphaned, args=(server_pid,), daemon=True).start()
        messages.put(WorkerStarted())  # starts the queue's feeder thread
        torch.zeros(1 << 16).add_(1)  # and torch's thread pool (a parallel op)
        hard = _limit_memory(memory_mb)
        model = build_model(model_config, seed=train_config.seed)
        preview_x, preview_y = data.test.x[:preview_size], data.test.y[:preview_size]

        def on_event(event: TrainEvent) -> None:
            nonlocal hard
            m = event.metrics
            if event.kind == "step":
                if tuner is not None:
                    tuner.step(event.step)
                messages.put(StepReport(event.step, event.epoch,
                                        {**step_metrics(m), "progress": m["progress"],
                                         "samples_per_s": m["samples_per_s"]}))
            elif event.kind == "epoch":
                messages.put(EpochReport(event.epoch, m, *_previews(model, data, preview_x, preview_y)))
            elif event.kind == "failed" and _out_of_memory(event.message):
                _lift_memory_limit(hard)  # now, so that saving what was learnt and reporting can allocate
                hard = None

        # a stopped run keeps and saves what it learnt
        result, checkpoint = train_and_save(model, data, train_config, save_to, callbacks=[on_event], cancel=cancel,
                                            extra_meta=lambda _: {"name": name}, keep_partial=True)
        message = result.message
        if result.status == "failed" and _out_of_memory(result.message):
            message = _memory_message(memory_mb)
        elif result.status == "cancelled" and not result.history:
            message = "stopped before the first epoch ended: nothing to keep"
        messages.put(RunEnded(result.status, message, str(checkpoint) if checkpoint else None))
    except Exception as exc:  # never die silently: the student sees the error
        _lift_memory_limit(hard)
        text = f"training failed: {type(exc).__name__}: {exc}"
        messages.put(RunEnded("failed", _memory_message(memory_mb) if _out_of_memory(text) else text, None))
    finally:
        messages.close()
        messages.join_thread()  # everything put is flushed to the server before the process exits


def _stop_if_orphaned(server_pid: int, poll_seconds: float = 0.5) -> None:
    """End this process once the server that started it is gone (killed, crashed): no training for nobody. At
    once and without a word: nobody reads the messages any more, so a clean ending could block on a full pipe."""
    while True:
        time.sleep(poll_seconds)
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            os._exit(1)


def map_indices(n_test: int, limit: int = MAP_POINTS) -> torch.Tensor:
    """The test images drawn on the live latent map: all of them up to `limit`, else a fixed random sample of
    `limit` (seed 0, in index order), the same at every epoch so the map's points move rather than change."""
    if n_test <= limit:
        return torch.arange(n_test)
    return torch.randperm(n_test, generator=torch.Generator().manual_seed(0))[:limit].sort().values


def _previews(model, data, preview_x, preview_y) -> tuple[dict, dict]:
    """The latent means of the map's test images (map_indices) and a strip of reconstructions, for the live map
    and strip (eval mode for both; the training flag comes back as it was)."""
    test = data.test
    index = map_indices(len(test.x))
    labels = test.y[index]
    mu = encode_dataset(model, test.x[index], labels).mu  # (N, D)
    x_hat = reconstruct(model, preview_x, preview_y)  # (8, C, H, W)
    return ({"mu": mu.numpy(), "y": labels.numpy(), "index": index.numpy()},
            {"x": preview_x.numpy(), "x_hat": x_hat.numpy()})


__all__ = ["job_threads", "worker_memory_mb", "max_job_seconds", "warm_up_workers", "map_indices", "MAP_POINTS",
           "ray_address", "new_job_limiter", "JobLimiter", "TrainingJob", "JobSnapshot", "WorkerMessage", "WorkerStarted", "StepReport", "EpochReport",
           "RunEnded"]

