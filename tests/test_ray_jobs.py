"""The Ray backend's scheduler logic without a cluster (vae_core.ray_jobs.SchedulerState: what the detached
scheduler actor runs): first come first served across replicas, a capacity, one unfinished job per student, and
leases that a dead replica loses. The whole backend on a real cluster is tests/cluster."""
import time

import pytest

pytest.importorskip("ray", reason="Ray is installed for the cluster mode only (./run.sh test installs it)")

from vae_core.ray_jobs import SchedulerState  # noqa: E402


def test_first_come_first_served_within_the_capacity():
    s = SchedulerState(max_running=2)
    for job in "abcd":
        assert s.enqueue(job, f"owner-{job}", f"model {job}") is None
    assert [s.admit(j) for j in "cd"] == [3, 4]  # not first in line: their places
    assert s.admit("a") == 0 and s.admit("b") == 0  # started
    assert s.admit("c") == 1 and s.admit("d") == 2
    s.release("a")
    assert s.admit("d") == 2  # still behind c
    assert s.admit("c") == 0 and s.admit("d") == 1
    assert s.status() == {"capacity": 2, "running": 2, "waiting": 1, "started": 3, "owners": 3}


def test_one_unfinished_job_per_student_across_replicas():
    s = SchedulerState(max_running=4)
    assert s.enqueue("j1", "lockers/abcd-2345", "first") is None
    assert s.enqueue("j2", "lockers/abcd-2345", "second") == "first"  # refused: names the running one
    assert s.job_of("lockers/abcd-2345") == ("j1", "first")
    assert s.enqueue("j1", "lockers/abcd-2345", "first") is None  # idempotent for the same job
    s.release("j1")
    assert s.job_of("lockers/abcd-2345") is None
    assert s.enqueue("j2", "lockers/abcd-2345", "second") is None


def test_a_dead_replicas_jobs_lose_their_lease():
    s = SchedulerState(max_running=1, lease_s=0.2)
    s.enqueue("running", "alice", "a")
    s.enqueue("waiting", "bob", "b")
    assert s.admit("running") == 0
    s.enqueue("other", "carol", "c")
    for _ in range(4):  # carol's replica keeps polling; alice's and bob's died
        time.sleep(0.1)
        s.admit("other")
    assert s.admit("other") == 0  # the slot and the queue place were freed
    assert s.job_of("alice") is None and s.job_of("bob") is None
    assert s.admit("running") is None  # unknown now: its replica would queue it again


def test_each_running_job_holds_a_slot_of_its_own():
    """On the cluster a slot is one trainer of the pool: two jobs must never be handed the same one."""
    s = SchedulerState(max_running=2)
    for job in "abc":
        s.enqueue(job, None, f"model {job}")
    first, second = s.turn("a"), s.turn("b")
    assert first[0] == 0 and second[0] == 0 and first[1] != second[1]
    assert s.turn("c") == (1, None)  # waits: both slots taken
    s.release("a")
    assert s.turn("c") == (0, first[1])  # the freed slot, and only that one


class _RecordingScheduler(SchedulerState):
    """SchedulerState with its `abandoned` hook recorded (the cluster's scheduler stops the training there)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.abandoned_jobs: list[tuple[str, str]] = []

    def abandoned(self, job_id: str, slot: str) -> None:
        self.abandoned_jobs.append((job_id, slot))


def test_a_dead_replicas_running_job_is_stopped_and_a_queued_one_just_dropped():
    s = _RecordingScheduler(max_running=1, lease_s=0.2)
    s.enqueue("running", "alice", "a")
    s.enqueue("waiting", "bob", "b")
    _, slot = s.turn("running")
    time.sleep(0.3)  # neither replica renews its lease
    assert s.status()["running"] == 0
    assert s.abandoned_jobs == [("running", slot)]  # only the one that was training is stopped
