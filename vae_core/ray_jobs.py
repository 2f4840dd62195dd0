"""Training jobs on a Ray cluster: the second backend of vae_core.jobs, chosen by LATENT_LAB_RAY_ADDRESS.

    limiter = new_job_limiter()                 # vae_core.jobs: a ClusterLimiter when LATENT_LAB_RAY_ADDRESS is set
    job = TrainingJob(model_config, train_config, data, limiter, owner=..., name="my vae").start()
    job.snapshot(); job.cancel()                # exactly as with local worker processes

The pages see the same TrainingJob; only where it trains and who keeps the queue differ:

- **The queue and the limits are the cluster's.** One named, detached actor (`latent-lab-scheduler`, on the head
  node, no CPU) keeps a first-come queue for every replica, admits at most as many trainings as the cluster has CPUs
  (counted again at each admission, so a node that joins or leaves changes it), and holds the one-unfinished-job-per-
  student rule (owner -> job). Entries are leases: a replica polls and touches its jobs; an entry not heard of for
  LEASE_S (its replica was killed) is dropped, so a dead replica never holds a slot or a student's claim for long.
- **Each training is one Ray actor** (`train:<model name>:<job id>`, num_cpus=1), so `ray list actors` shows it by
  the student's model name; its method `train` (a task named `train:<model name>`) runs the worker's own code,
  vae_core.jobs._worker_main, with a cancel flag checked at every mini-batch and the same typed messages
  (StepReport, EpochReport, RunEnded), which it buffers; the replica's job thread collects them twice a second.
- **Stop** sets the actor's flag (the run ends its mini-batch and saves what it learnt, as locally); an actor that
  ignores it for STOP_GRACE_S is killed. The wall-clock cap works as locally, from the replica.
- **A lost node** (or a killed actor) ends the job as a failed run with a message that says so, and frees the slot.
- **A killed replica** takes its trainings with it: the actors are owned by the replica's Ray driver and Ray ends
  them with it, as a local worker ends with its server. Checkpoints are written by the actor into the shared model
  store (LATENT_LAB_USER_DIR, the same path on every machine), atomically, so a student finds what finished on any
  replica through their locker code.

The cluster's machines need this checkout (same path, same .venv) on PYTHONPATH; `./run.sh cluster up` starts a
local one. No Streamlit here.
"""
from __future__ import annotations

import dataclasses
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


def actor_name(job: TrainingJob) -> str:
    """What `ray list actors` shows for a training: the student's model name and the job's id (unique)."""
    return f"train:{job.name}:{job.id}"


# -- the cluster's scheduler ------------------------------------------------------------------------------------------
class SchedulerState:
    """The cluster's queue and ledger, shared by every replica: FIFO, at most `capacity()` running, one
    unfinished job per owner. Every entry is a lease renewed by its replica (admit, touch). A plain class (tested
    without a cluster); the actor is `Scheduler` below."""

    def __init__(self, max_running: int | None = None, lease_s: float = LEASE_S):
        self.max_running = max_running  # None: the cluster's CPUs
        self.lease_s = lease_s
        self.queue: list[str] = []
        self.running: set[str] = set()
        self.jobs: dict[str, dict] = {}  # job id -> {"owner", "name", "seen"}
        self.owners: dict[str, str] = {}  # owner -> their unfinished job's id
        self.started = 0
        self._cpus, self._cpus_at = 1, 0.0

    def capacity(self) -> int:
        if self.max_running:
            return self.max_running
        if time.monotonic() - self._cpus_at > 2.0:
            self._cpus = int(ray.cluster_resources().get("CPU", 0))
            self._cpus_at = time.monotonic()
        return max(1, self._cpus)

    def _expire(self) -> None:
        now = time.monotonic()
        for job_id, entry in list(self.jobs.items()):
            if now - entry["seen"] > self.lease_s:
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
        """Renew the lease; 0 if the job may start now (it is then running), its place in the queue (1 = next),
        or None if the scheduler does not know it (expired)."""
        self._expire()
        if job_id not in self.jobs:
            return None
        self.jobs[job_id]["seen"] = time.monotonic()
        if job_id in self.running:
            return 0
        if self.queue and self.queue[0] == job_id and len(self.running) < self.capacity():
            self.queue.pop(0)
            self.running.add(job_id)
            self.started += 1
            return 0
        return self.queue.index(job_id) + 1

    def touch(self, job_id: str) -> None:
        if job_id in self.jobs:
            self.jobs[job_id]["seen"] = time.monotonic()

    def release(self, job_id: str) -> None:
        entry = self.jobs.pop(job_id, None)
        if job_id in self.queue:
            self.queue.remove(job_id)
        self.running.discard(job_id)
        if entry is not None and entry["owner"] is not None and self.owners.get(entry["owner"]) == job_id:
            del self.owners[entry["owner"]]

    def job_of(self, owner: str) -> tuple[str, str] | None:
        """(job id, name) of the owner's unfinished job, or None."""
        self._expire()
        job_id = self.owners.get(owner)
        return (job_id, self.jobs[job_id]["name"]) if job_id in self.jobs else None

    def status(self) -> dict:
        self._expire()
        return {"capacity": self.capacity(), "running": len(self.running), "waiting": len(self.queue),
                "started": self.started, "owners": len(self.owners)}


Scheduler = ray.remote(num_cpus=0, max_restarts=-1)(SchedulerState)


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
    """JobLimiter's interface over the cluster's scheduler; `run` trains the job as a Ray actor."""

    def __init__(self, address: str, max_running: int | None = None):
        super().__init__(1)
        connect(address)
        self.address = address
        self._scheduler = scheduler(max_running)
        self._positions: dict[str, int] = {}
        self._local: dict[str, TrainingJob] = {}

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
                place = self._call("admit", job_id)
            except ray.exceptions.GetTimeoutError:
                continue
            if place is None:  # dropped by the scheduler (restarted, or this replica stalled past the lease)
                self._call("enqueue", job_id, None, job.name if job else job_id)
                continue
            if place == 0:
                with self._cond:
                    self._positions.pop(job_id, None)
                return True
            with self._cond:
                self._positions[job_id] = place
            cancel.wait(POLL_S)
        with self._cond:
            self._positions.pop(job_id, None)
        self._safe_call("release", job_id)
        return False

    def release(self, job_id: str) -> None:
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
        _train_on_ray(job, self)


# -- one training as an actor -----------------------------------------------------------------------------------------
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


@ray.remote(num_cpus=1, max_concurrency=4, max_restarts=0)
class TrainingActor:
    """One student's training: `train` runs it (one thread of the actor), `poll` and `cancel` answer meanwhile."""

    def __init__(self):
        self._outbox = _Outbox()
        self._cancel = threading.Event()

    def train(self, model_config, train_config, data, preview_size, save_to, name, memory_mb) -> None:
        # One thread: the actor holds one CPU. No orphan watch: Ray ends the actor with its owner, the replica.
        _worker_main(self._outbox, self._cancel, model_config, train_config, data, preview_size, save_to, name,
                     1, None, memory_mb)

    def poll(self) -> list:
        return self._outbox.take()

    def cancel(self) -> None:
        self._cancel.set()

    def where(self) -> dict:
        import os
        import socket

        return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}


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


def _train_on_ray(job: TrainingJob, limiter: ClusterLimiter) -> None:
    """Run `job` as a TrainingActor and relay its messages into the job, as TrainingJob._train does for a local
    worker process (same messages, same cancel, cap and grace)."""
    actor = TrainingActor.options(name=actor_name(job), namespace=NAMESPACE).remote()
    job.actor_name = actor_name(job)
    done_ref = actor.train.options(name=f"train:{job.name}").remote(
        job.model_config, job.train_config, job.data, job.preview_size,
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
                    actor.cancel.remote()
                elif now - cancelled_at > STOP_GRACE_S:
                    job._set(state="failed", message=f"training failed: the worker did not stop within "
                                                     f"{STOP_GRACE_S:g} s of being asked to, so it was ended; "
                                                     "nothing of it could be saved")
                    return
            if now - touched > TOUCH_S:
                limiter._safe_call("touch", job.id)
                touched = now
            try:
                messages = ray.get(actor.poll.remote(), timeout=CALL_TIMEOUT_S)
                unreachable_since = None
            except ray.exceptions.GetTimeoutError:  # not placed yet (no CPU free), or a slow node
                continue
            except ray.exceptions.ActorUnavailableError:  # a transient network problem, or the node is going
                unreachable_since = unreachable_since or now
                if now - unreachable_since > LOST_AFTER_S:
                    job._set(state="failed", message=LOST_MESSAGE)
                    return
                time.sleep(POLL_S)
                continue
            except ray.exceptions.RayActorError as exc:  # the actor died: its node was lost, killed, out of memory
                log.warning("training actor %s ended: %s", actor_name(job), exc)
                job._set(state="failed", message=_ended_message(exc))
                return
            for message in messages:
                if job._on_message(_writable(message)):
                    return
            ready, _ = ray.wait([done_ref], timeout=POLL_S)
            if ready:  # train() returned: its last messages are in the outbox (or it raised)
                try:
                    ray.get(done_ref)
                    for message in ray.get(actor.poll.remote(), timeout=CALL_TIMEOUT_S):
                        if job._on_message(_writable(message)):
                            return
                    job._set(state="failed", message="training failed: the worker ended without a result")
                except ray.exceptions.RayActorError as exc:
                    job._set(state="failed", message=_ended_message(exc))
                except Exception as exc:
                    job._set(state="failed", message=f"training failed: {type(exc).__name__}: {exc}")
                return
    finally:
        ray.kill(actor, no_restart=True)


def actor_node(job: TrainingJob) -> dict | None:
    """Where the job's actor runs ({"node_id", "host", "pid"}), for tests and diagnostics."""
    try:
        actor = ray.get_actor(actor_name(job), namespace=NAMESPACE)
        return ray.get(actor.where.remote(), timeout=CALL_TIMEOUT_S)
    except Exception:
        return None


__all__ = ["connect", "ClusterLimiter", "SchedulerState", "Scheduler", "scheduler", "TrainingActor", "actor_name", "actor_node",
           "LOST_MESSAGE", "NAMESPACE", "SCHEDULER_NAME"]
