"""Training jobs on a Ray cluster: the second backend of vae_core.jobs, chosen by LATENT_LAB_RAY_ADDRESS.

    limiter = new_job_limiter()                 # vae_core.jobs: a ClusterLimiter when LATENT_LAB_RAY_ADDRESS is set
    job = TrainingJob(model_config, train_config, data, limiter, owner=..., name="my vae").start()
    job.snapshot(); job.cancel()                # exactly as with local worker processes

The pages see the same TrainingJob; only where it trains and who keeps the queue differ:

- **The queue and the limits are the cluster's.** One named, detached actor (`latent-lab-scheduler`, on the head
  node, no CPU) keeps a first-come queue for every replica, admits a training when one of the pool's trainers (below)
  is free (the pool is counted again every few seconds, so a node that joins or leaves changes it), and holds the
  one-unfinished-job-per-student rule (owner -> job). Entries are leases: a replica polls and touches its jobs; an
  entry not heard of for LEASE_S (its replica was killed) is dropped, so a dead replica never holds a slot or a
  student's claim for long.
- **The trainings run in a pool of long-lived trainer actors**: one per CPU of each node (`trainer:<node>:<k>`,
  num_cpus=1, detached, pinned to its node), created by the scheduler when it first sees the node (`cluster up`
  asks for them at start-up: `python -m vae_core.ray_jobs warm`) and reused, one training after another. A trainer
  imports torch once, when it starts, rather than at a student's Start: with a fresh actor per training each one
  paid a new process, Ray's worker start and torch's import (seconds of CPU, minutes on a loaded 2-core machine:
  the load test's trainings timed out behind them). The scheduler hands a free trainer to the job it admits; the
  training is the trainer's method `train`, run as a task named `train:<model name>`, so Ray's state shows it by the
  student's model name (`ray list tasks`), on its trainer and node (`ray list actors` lists the trainers). It runs
  the worker's own code, vae_core.jobs._worker_main, with a cancel flag checked at every mini-batch and the same
  typed messages (StepReport, EpochReport, RunEnded), which it buffers; the replica's job thread collects them twice
  a second.
- **Stop** sets the run's flag (it ends its mini-batch and saves what it learnt, as locally); a trainer that
  ignores it for STOP_GRACE_S is killed, and the scheduler starts a new one in its place. The wall-clock cap works
  as locally, from the replica.
- **A lost node** (or a killed trainer) ends the job as a failed run with a message that says so, and frees the
  slot; its trainers leave the pool with it (a node that comes back gets new ones).
- **A killed replica** stops its trainings: their leases run out (LEASE_S) and the scheduler tells their trainers
  to stop, as Stop does (they save what they learnt). Checkpoints are written by the trainer into the shared model
  store (LATENT_LAB_USER_DIR, the same path on every machine), atomically, so a student finds what finished on any
  replica through their locker code.

The cluster's machines need this checkout (same path, same .venv) on PYTHONPATH; `./run.sh cluster up` starts a
local one. No Streamlit here.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import threading
import time

import numpy as np
import ray

from vae_core.errors import QuotaError
from vae_core.jobs import STOP_GRACE_S, EpochReport, JobLimiter, TrainingJob, _duration, _worker_main

log = logging.getLogger("latent_lab.ray_jobs")

NAMESPACE = "latent_lab"
SCHEDULER_NAME = "latent-lab-scheduler"
LEASE_S = 30.0  # a queue or running entry not touched this long belongs to a replica that died: dropped
POOL_REFRESH_S = 3.0  # how often the scheduler looks for nodes that joined or left, and for trainers that died
POLL_S = 0.5  # how often a job thread asks the scheduler for its turn and the actor for its messages
TOUCH_S = 5.0  # how often a running job renews its lease
CALL_TIMEOUT_S = 30.0  # a scheduler or actor call that takes longer is retried (a busy head, a slow node)
LOST_AFTER_S = 60.0  # an actor unreachable this long is taken for lost

_CONNECT_LOCK = threading.Lock()


def connect(address: str) -> None:
    """Join the Ray cluster at `address` as a driver (once per process); workers' logs stay on their nodes."""
    with _CONNECT_LOCK:
        if ray.is_initialized():
            return
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=False)


def task_name(job: TrainingJob) -> str:
    """What `ray list tasks` shows for a training: the student's model name."""
    return f"train:{job.name}"


def trainer_name(node_id: str, index: int) -> str:
    """What `ray list actors` shows for a trainer: its node (the id's start) and its place there."""
    return f"trainer:{node_id[:8]}:{index}"


# -- the cluster's scheduler ------------------------------------------------------------------------------------------
class SchedulerState:
    """The cluster's queue and ledger, shared by every replica: FIFO, one job per slot (the cluster's scheduler: per
    trainer of its pool), one unfinished job per owner. Every entry is a lease renewed by its replica (admit, touch).
    A plain class with `max_running` plain slots (tested without a cluster); the actor is `ClusterScheduler` below."""

    def __init__(self, max_running: int | None = None, lease_s: float = LEASE_S):
        self.max_running = max_running  # None: every slot there is
        self.lease_s = lease_s
        self.queue: list[str] = []
        self.assigned: dict[str, str] = {}  # running job id -> its slot
        self.jobs: dict[str, dict] = {}  # job id -> {"owner", "name", "seen"}
        self.owners: dict[str, str] = {}  # owner -> their unfinished job's id
        self.started = 0

    def all_slots(self) -> list[str]:
        """Where jobs can run, in order of preference; here `max_running` plain names."""
        return [f"slot-{i}" for i in range(max(1, self.max_running or 1))]

    def slots(self) -> list[str]:
        every = self.all_slots()
        return every[:self.max_running] if self.max_running else every

    def capacity(self) -> int:
        return len(self.slots())

    def abandoned(self, job_id: str, slot: str) -> None:
        """A running job whose replica stopped renewing its lease (ClusterScheduler: stop its training)."""

    def _free_slot(self) -> str | None:
        taken = set(self.assigned.values())
        return next((slot for slot in self.slots() if slot not in taken), None)

    def _expire(self) -> None:
        now = time.monotonic()
        for job_id, entry in list(self.jobs.items()):
            if now - entry["seen"] > self.lease_s:
                if job_id in self.assigned:
                    self.abandoned(job_id, self.assigned[job_id])
                self.release(job_id)

    def enqueue(self, job_id: str, owner: str | None, name: str) -> str | None:
        """Queue a job (idempotent); a refusal (the owner's other unfinished job's name) or None."""
        self._expire()
        if job_id in self.jobs:
            self.jobs[job_id]["seen"] = time.monotonic()
            return None
        if owner is not None:
            other = self.owners.get(owner)
            if other is not None and other != job_id and other in self.jobs:
                return self.jobs[other]["name"]
            self.owners[owner] = job_id
        self.jobs[job_id] = {"owner": owner, "name": name, "seen": time.monotonic()}
        self.queue.append(job_id)
        return None

    def admit(self, job_id: str) -> int | None:
        """Renew the lease; 0 if the job may start now (it then holds a slot: `turn` says which), its place in the
        queue (1 = next), or None if the scheduler does not know it (expired)."""
        self._expire()
        if job_id not in self.jobs:
            return None
        self.jobs[job_id]["seen"] = time.monotonic()
        if job_id in self.assigned:
            return 0
        if self.queue and self.queue[0] == job_id:
            slot = self._free_slot()
            if slot is not None:
                self.queue.pop(0)
                self.assigned[job_id] = slot
                self.started += 1
                return 0
        return self.queue.index(job_id) + 1

    def turn(self, job_id: str) -> tuple[int | None, str | None]:
        """admit() and, once admitted, the job's slot (one call for the replica's poll)."""
        place = self.admit(job_id)
        return place, self.assigned.get(job_id) if place == 0 else None

    def touch(self, job_id: str) -> None:
        if job_id in self.jobs:
            self.jobs[job_id]["seen"] = time.monotonic()

    def release(self, job_id: str) -> None:
        entry = self.jobs.pop(job_id, None)
        if job_id in self.queue:
            self.queue.remove(job_id)
        self.assigned.pop(job_id, None)
        if entry is not None and entry["owner"] is not None and self.owners.get(entry["owner"]) == job_id:
            del self.owners[entry["owner"]]

    def job_of(self, owner: str) -> tuple[str, str] | None:
        """(job id, name) of the owner's unfinished job, or None."""
        self._expire()
        job_id = self.owners.get(owner)
        return (job_id, self.jobs[job_id]["name"]) if job_id in self.jobs else None

    def status(self) -> dict:
        self._expire()
        return {"capacity": self.capacity(), "running": len(self.assigned), "waiting": len(self.queue),
                "started": self.started, "owners": len(self.owners)}


class TrainerPool:
    """The trainers of the cluster: one per CPU of every alive node, started when the node is first seen (or when
    one of them died), each pinned to its node. Looked at again every POOL_REFRESH_S; a trainer counts once its
    start-up (torch's import) is done. Runs inside the scheduler actor."""

    def __init__(self):
        self._trainers: dict[str, tuple] = {}  # name -> (handle, its `ready` call's ref)
        self._ready: set[str] = set()
        self._refreshed_at = float("-inf")

    def ready(self) -> list[str]:
        """The trainers ready to train, spread over the nodes (every node's first trainer, then the seconds...)."""
        if time.monotonic() - self._refreshed_at > POOL_REFRESH_S:
            self.refresh()
        self._collect_started()
        return sorted(self._ready, key=lambda name: (int(name.rsplit(":", 1)[1]), name))

    def wanted(self) -> dict[str, str]:
        """trainer name -> node id: one per CPU of each alive node (a head started with --num-cpus 0 has none)."""
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {trainer_name(n["NodeID"], k): n["NodeID"] for n in nodes
                for k in range(int(n.get("Resources", {}).get("CPU", 0)))}

    def refresh(self) -> None:
        self._refreshed_at = time.monotonic()
        wanted = self.wanted()
        for name in list(self._trainers):
            if name not in wanted or not self._exists(name):
                self._forget(name)
        for name, node_id in wanted.items():
            if name not in self._trainers:
                self._trainers[name] = self._start(name, node_id)

    def _exists(self, name: str) -> bool:
        """Whether the trainer is still there: Ray frees a dead actor's name (killed, its node lost)."""
        try:
            ray.get_actor(name, namespace=NAMESPACE)
            return True
        except ValueError:
            return False

    def _start(self, name: str, node_id: str) -> tuple:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        log.info("starting trainer %s", name)
        # detached: it outlives the replica that happened to ask for it; get_if_exists: a restarted scheduler finds
        # the trainers already running rather than starting more
        handle = Trainer.options(name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                                 scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()
        return handle, handle.where.remote()

    def _collect_started(self) -> None:
        for name, (_, ready_ref) in list(self._trainers.items()):
            if name in self._ready or not ray.wait([ready_ref], timeout=0)[0]:
                continue
            try:
                ray.get(ready_ref)
                self._ready.add(name)
            except Exception as exc:  # died starting: started again at the next refresh if its node is alive
                log.warning("trainer %s did not start: %s", name, exc)
                self._forget(name)

    def _forget(self, name: str) -> None:
        self._trainers.pop(name, None)
        self._ready.discard(name)

    def cancel(self, name: str, job_id: str) -> None:
        if name in self._trainers:
            self._trainers[name][0].cancel.remote(job_id)

    def complete(self) -> bool:
        """Whether every trainer the alive nodes should have is ready."""
        self.refresh()
        self._collect_started()
        return set(self.wanted()) <= self._ready


class ClusterScheduler(SchedulerState):
    """The scheduler actor's state: SchedulerState whose slots are the pool's ready trainers."""

    def __init__(self, max_running: int | None = None, lease_s: float = LEASE_S):
        super().__init__(max_running, lease_s)
        self.pool = TrainerPool()

    def all_slots(self) -> list[str]:
        return self.pool.ready()

    def abandoned(self, job_id: str, slot: str) -> None:
        # its replica is gone and nobody will read its progress: stop it as Stop does (it saves what it learnt)
        self.pool.cancel(slot, job_id)

    def warm(self, timeout_s: float) -> list[str]:
        """Wait (up to timeout_s) until every node's trainers are ready; their names. For `cluster up`."""
        deadline = time.monotonic() + timeout_s
        while not self.pool.complete() and time.monotonic() < deadline:
            time.sleep(0.5)
        return self.pool.ready()


Scheduler = ray.remote(num_cpus=0, max_restarts=-1)(ClusterScheduler)


def scheduler(max_running: int | None = None):
    """The cluster's scheduler actor, created by the first replica that asks (detached: it outlives replicas)."""
    return Scheduler.options(name=SCHEDULER_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                             resources={"node:__internal_head__": 0.001}).remote(max_running)


class _OtherReplicaJob:
    """A student's unfinished job that this replica does not run (another tab on another replica): its name."""

    def __init__(self, job_id: str, name: str):
        self.id, self.name = job_id, name
        self.finished = threading.Event()


class ClusterLimiter(JobLimiter):
    """JobLimiter's interface over the cluster's scheduler; `run` trains the job on the trainer it was given."""

    def __init__(self, address: str, max_running: int | None = None):
        super().__init__(1)
        connect(address)
        self.address = address
        self._scheduler = scheduler(max_running)
        self._positions: dict[str, int] = {}
        self._local: dict[str, TrainingJob] = {}
        self._trainers: dict[str, str] = {}  # admitted job id -> the trainer it trains on

    def _call(self, method, *args):
        return ray.get(getattr(self._scheduler, method).remote(*args), timeout=CALL_TIMEOUT_S)

    # the JobLimiter interface
    def claim(self, owner: str, job: TrainingJob) -> None:
        other = self._call("enqueue", job.id, owner, job.name)
        if other is not None:
            raise QuotaError(f"you already have a training running (“{other}”), maybe in another tab: one at a "
                             "time per student. Stop it or wait for it to finish, then start this one")
        with self._cond:
            self._local[job.id] = job

    def unclaim(self, owner: str, job: TrainingJob) -> None:
        with self._cond:
            self._local.pop(job.id, None)
        self._safe_call("release", job.id)

    def acquire(self, job_id: str, cancel) -> bool:
        with self._cond:
            job = self._local.get(job_id)
        self._call("enqueue", job_id, None, job.name if job else job_id)  # a job without an owner queues here
        while not cancel.is_set():
            try:
                place, trainer = self._call("turn", job_id)
            except ray.exceptions.GetTimeoutError:
                continue
            if place is None:  # dropped by the scheduler (restarted, or this replica stalled past the lease)
                self._call("enqueue", job_id, None, job.name if job else job_id)
                continue
            if place == 0:
                with self._cond:
                    self._positions.pop(job_id, None)
                    self._trainers[job_id] = trainer
                return True
            with self._cond:
                self._positions[job_id] = place
            cancel.wait(POLL_S)
        with self._cond:
            self._positions.pop(job_id, None)
        self._safe_call("release", job_id)
        return False

    def release(self, job_id: str) -> None:
        with self._cond:
            self._trainers.pop(job_id, None)
        self._safe_call("release", job_id)

    def job_of(self, owner: str):
        found = self._safe_call("job_of", owner)
        if found is None:
            return None
        job_id, name = found
        with self._cond:
            local = self._local.get(job_id)
        if local is not None:
            return None if local.finished.is_set() else local
        return _OtherReplicaJob(job_id, name)

    def position(self, job_id: str) -> int | None:
        with self._cond:
            return self._positions.get(job_id)

    @property
    def running(self) -> int:
        return self.status().get("running", 0)

    @property
    def waiting(self) -> int:
        return self.status().get("waiting", 0)

    def status(self) -> dict:
        return self._safe_call("status") or {}

    def _safe_call(self, method, *args):
        try:
            return self._call(method, *args)
        except Exception as exc:  # the scheduler's lease expiry covers a call that did not get through
            log.warning("scheduler call %s failed: %s", method, exc)
            return None

    def run(self, job: TrainingJob) -> None:
        with self._cond:
            trainer = self._trainers[job.id]
        _train_on_ray(job, self, trainer)


# -- the trainers -----------------------------------------------------------------------------------------------------
class _Outbox:
    """What _worker_main puts its messages into (a multiprocessing queue locally): a buffer the job polls."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: list = []

    def put(self, message) -> None:
        with self._lock:
            self._items.append(message)

    def take(self) -> list:
        with self._lock:
            items, self._items = self._items, []
        return items

    def close(self) -> None:
        pass

    def join_thread(self) -> None:
        pass


@dataclasses.dataclass
class _Run:
    """One training on a trainer: its messages, its cancel flag, when it was asked for and when it ended."""

    outbox: _Outbox = dataclasses.field(default_factory=_Outbox)
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    created: float = dataclasses.field(default_factory=time.monotonic)
    ended: float | None = None


RUN_KEPT_S = 120.0  # an ended run's last messages wait this long for their replica's last poll
CANCEL_KEPT_S = 3600.0  # a cancel that came before its training (it never came: its replica died first)


def _restore_data_limit(limits: tuple[int, int]) -> None:
    """Put RLIMIT_DATA back: _worker_main caps it for one training, and this process trains the next one too."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, limits)
    except (ImportError, OSError, ValueError) as exc:
        log.warning("could not restore the trainer's memory limit: %s", exc)


def _give_memory_back() -> None:
    """After a training: free its objects and hand glibc's freed pages back, so an idle trainer stays small."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@ray.remote(num_cpus=1, max_concurrency=8, max_restarts=0)
class Trainer:
    """A long-lived training process (one per CPU of a node): `train` runs one student's training at a time (one
    thread; the actor holds one CPU); `poll` and `cancel` answer meanwhile, by job id."""

    def __init__(self):
        import resource

        import torch

        # What a fresh process per training paid at every Start, paid once here: torch's import (above) and its
        # thread pool's start.
        torch.set_num_threads(1)
        torch.zeros(1 << 16).add_(1)
        self._data_limit = resource.getrlimit(resource.RLIMIT_DATA)
        self._one_at_a_time = threading.Lock()
        self._runs_lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self.trainings = 0

    def _run(self, job_id: str) -> _Run:
        with self._runs_lock:
            return self._runs.setdefault(job_id, _Run())

    def _forget_old_runs(self) -> None:
        now = time.monotonic()
        with self._runs_lock:
            for job_id, run in list(self._runs.items()):
                if (run.ended is not None and now - run.ended > RUN_KEPT_S) or now - run.created > CANCEL_KEPT_S:
                    del self._runs[job_id]

    def train(self, job_id, model_config, train_config, data, preview_size, save_to, name, memory_mb) -> None:
        run = self._run(job_id)
        with self._one_at_a_time:
            self._forget_old_runs()
            try:
                # No orphan watch (server_pid None): the scheduler stops a run whose replica's lease ran out.
                _worker_main(run.outbox, run.cancel, model_config, train_config, data, preview_size, save_to, name,
                             1, None, memory_mb)
            finally:
                run.ended = time.monotonic()
                self.trainings += 1
                _restore_data_limit(self._data_limit)
                _give_memory_back()

    def poll(self, job_id: str) -> list:
        with self._runs_lock:
            run = self._runs.get(job_id)
        return run.outbox.take() if run is not None else []

    def cancel(self, job_id: str) -> None:
        self._run(job_id).cancel.set()  # kept even if the training has not arrived yet: it then stops at once

    def where(self) -> dict:
        import os
        import socket

        return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid(),
                "trainings": self.trainings}


LOST_MESSAGE = ("training failed: the machine it was training on left the cluster (a Ray node was lost) before it "
                "finished, so nothing of it was saved. Start it again: it will run on a machine that is up")


def _ended_message(exc: Exception) -> str:
    text = str(exc)
    if "node" in text.lower() and ("died" in text.lower() or "dead" in text.lower() or "lost" in text.lower()):
        return LOST_MESSAGE
    return ("training failed: its worker on the cluster stopped unexpectedly (maybe out of memory, or it was ended); "
            "nothing of it was saved. Try again, or a smaller model or batch")


def _writable(message):
    """Ray hands NumPy arrays back read-only (zero-copy); the job turns them into tensors, which must own theirs."""
    if isinstance(message, EpochReport):
        return dataclasses.replace(message, latent={k: np.array(v) for k, v in message.latent.items()},
                                   recon={k: np.array(v) for k, v in message.recon.items()})
    return message


def _relay(job: TrainingJob, messages: list) -> bool:
    """Hand the trainer's messages to the job; True once the run has ended."""
    return any(job._on_message(_writable(message)) for message in messages)


def _train_on_ray(job: TrainingJob, limiter: ClusterLimiter, trainer_id: str) -> None:
    """Run `job` on the trainer the scheduler gave it and relay its messages into the job, as TrainingJob._train
    does for a local worker process (same messages, same cancel, cap and grace)."""
    try:
        trainer = ray.get_actor(trainer_id, namespace=NAMESPACE)
    except ValueError as exc:  # it died since the scheduler last looked (its node was lost)
        job._set(state="failed", message=_ended_message(RuntimeError(f"the trainer died: {exc}; node lost?")))
        return
    job.actor_name = trainer_id
    done_ref = trainer.train.options(name=task_name(job)).remote(
        job.id, job.model_config, job.train_config, job.data, job.preview_size,
        str(job.save_to) if job.save_to else None, job.name, job.memory_mb)
    job._set(state="running")
    deadline = time.monotonic() + job.max_seconds if job.max_seconds else None
    cancelled_at = None
    touched = time.monotonic()
    unreachable_since = None
    try:
        while True:
            now = time.monotonic()
            if deadline is not None and now > deadline and not job._cancel.is_set():
                job._message_on_cancel = (f"it reached the limit of {_duration(job.max_seconds)} a training may run "
                                          "on this server")
                job._cancel.set()
            if job._cancel.is_set():
                if cancelled_at is None:
                    cancelled_at = now
                    trainer.cancel.remote(job.id)
                elif now - cancelled_at > STOP_GRACE_S:
                    ray.kill(trainer, no_restart=True)  # the scheduler's pool starts a new one in its place
                    job._set(state="failed", message=f"training failed: the worker did not stop within "
                                                     f"{STOP_GRACE_S:g} s of being asked to, so it was ended; "
                                                     "nothing of it could be saved")
                    return
            if now - touched > TOUCH_S:
                limiter._safe_call("touch", job.id)
                touched = now
            try:
                messages = ray.get(trainer.poll.remote(job.id), timeout=CALL_TIMEOUT_S)
                unreachable_since = None
            except ray.exceptions.GetTimeoutError:  # a slow node
                continue
            except ray.exceptions.ActorUnavailableError:  # a transient network problem, or the node is going
                unreachable_since = unreachable_since or now
                if now - unreachable_since > LOST_AFTER_S:
                    job._set(state="failed", message=LOST_MESSAGE)
                    return
                time.sleep(POLL_S)
                continue
            except ray.exceptions.RayActorError as exc:  # the trainer died: its node was lost, killed, out of memory
                log.warning("trainer %s ended during %s: %s", trainer_id, task_name(job), exc)
                job._set(state="failed", message=_ended_message(exc))
                return
            if _relay(job, messages):
                return
            ready, _ = ray.wait([done_ref], timeout=POLL_S)
            if ready:  # train() returned: its last messages are in the outbox (or it raised)
                try:
                    ray.get(done_ref)
                    if _relay(job, ray.get(trainer.poll.remote(job.id), timeout=CALL_TIMEOUT_S)):
                        return
                    job._set(state="failed", message="training failed: the worker ended without a result")
                except ray.exceptions.RayActorError as exc:
                    job._set(state="failed", message=_ended_message(exc))
                except Exception as exc:
                    job._set(state="failed", message=f"training failed: {type(exc).__name__}: {exc}")
                return
    finally:
        trainer.cancel.remote(job.id)  # a no-op for an ended run; stops one this thread gave up on


def actor_node(job: TrainingJob) -> dict | None:
    """Where the job's trainer runs ({"node_id", "host", "pid", "trainings"}), for tests and diagnostics."""
    try:
        actor = ray.get_actor(job.actor_name, namespace=NAMESPACE)
        return ray.get(actor.where.remote(), timeout=CALL_TIMEOUT_S)
    except Exception:
        return None


def main(argv=None) -> int:
    """`python -m vae_core.ray_jobs warm --address HOST:PORT`: create the scheduler and every node's trainers now
    and wait until they are ready, so the first students do not wait for torch's import (`cluster up` runs it)."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("command", choices=["warm"])
    ap.add_argument("--address", required=True)
    ap.add_argument("--timeout", type=float, default=240.0)
    args = ap.parse_args(argv)
    connect(args.address)
    names = ray.get(scheduler().warm.remote(args.timeout), timeout=args.timeout + CALL_TIMEOUT_S)
    print(f"{len(names)} trainer(s) ready: {', '.join(names)}")
    return 0 if names else 1


__all__ = ["connect", "ClusterLimiter", "SchedulerState", "ClusterScheduler", "TrainerPool", "Scheduler",
           "scheduler", "Trainer", "task_name", "trainer_name", "actor_node", "LOST_MESSAGE", "NAMESPACE",
           "SCHEDULER_NAME"]

if __name__ == "__main__":
    raise SystemExit(main())
