"""Jobs claimed ahead of the free slots (worker/prefetch.py), tried with a real daemon.

Every test first runs a few no-op jobs, so the daemon has measured its jobs as quick and claims
ahead; then a slow job takes the only slot while later jobs wait, claimed, in the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons, wait_for_status
from tests.support.processes import wait_until

ONE_SLOT = ("--concurrency", "1", "--log-format", "json")


def slow_then(client: Client, seconds: float, *later: dict[str, Any]) -> tuple[int, list[int]]:
    """Five quick jobs first, then a slow one, then `later` (in that order: priorities)."""
    client.enqueue_many([{"type": "record", "priority": 10}] * 5)
    slow = client.enqueue("record", {"seconds": seconds}, priority=5)
    ids = [client.enqueue("record", **{"priority": 0, **job}) for job in later]
    return slow, ids


def claimed_ahead(client: Client, daemons: Daemons, slow: int, waiting: list[int]) -> None:
    """The slow job runs and the later ones wait in the daemon, claimed (status running)."""
    daemons.wait_for_record(slow, "start")
    statuses = {job_id: client.get(job_id).status for job_id in waiting}
    assert set(statuses.values()) == {JobStatus.RUNNING}, statuses
    assert all(not daemons.records(job_id) for job_id in waiting)


def test_a_job_claimed_ahead_times_out_from_its_start_not_its_claim(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    slow, (timed,) = slow_then(client, 0.8, {"payload": {"seconds": 0.4}, "timeout": 1.0})
    worker = daemons.start(db_path, "--burst", *ONE_SLOT)
    claimed_ahead(client, daemons, slow, [timed])
    assert worker.wait(timeout=60) == 0, daemons.log(worker)

    job = client.get(timed)
    # Claimed ~0.8 s before its start: counted from the claim, 1.0 s would have run out.
    assert (job.status, job.attempts) == (JobStatus.COMPLETED, 1), job.last_error
    (start,) = daemons.records(timed, "start")
    (slow_end,) = daemons.records(slow, "end")
    assert start["t"] >= slow_end["t"]
    # The stored started_at is when the handler started, not when the job was claimed.
    assert job.started_at is not None
    assert abs(job.started_at.timestamp() - start["t"]) < 0.05, (job.started_at, start)


def test_jobs_claimed_ahead_of_a_slow_job_go_back_for_another_daemon(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    slow, waiting = slow_then(client, 6.0, {}, {}, {})
    first = daemons.start(db_path, *ONE_SLOT)
    claimed_ahead(client, daemons, slow, waiting)
    for job_id in waiting:  # after prefetch.HOLD_LIMIT, not claimed again by the busy daemon
        wait_for_status(client, job_id, JobStatus.PENDING, timeout=4)
    second = daemons.start(db_path, *ONE_SLOT)
    for job_id in waiting:
        wait_for_status(client, job_id, JobStatus.COMPLETED, timeout=20)
    assert client.get(slow).status is JobStatus.RUNNING  # they did not wait for it
    for worker in (first, second):
        assert daemons.stop(worker)[0] == 0, daemons.log(worker)

    assert client.get(slow).status is JobStatus.COMPLETED
    for job_id in waiting:
        job = client.get(job_id)
        assert job.attempts == 1  # the give-back did not count an attempt
        (run,) = daemons.records(job_id, "start")
        assert run["pid"] == second.pid
    given_back = [
        line
        for line in map(json.loads, daemons.log(first).splitlines())
        if "giving it back" in line["message"]
    ]
    assert sorted(line["message"].split(":")[0] for line in given_back) == [
        f"job {job_id}" for job_id in sorted(waiting)
    ]


def test_a_job_canceled_while_claimed_ahead_never_starts(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    slow, (doomed,) = slow_then(client, 2.0, {})
    worker = daemons.start(db_path, "--burst", *ONE_SLOT)
    claimed_ahead(client, daemons, slow, [doomed])
    client.cancel(doomed)
    assert worker.wait(timeout=60) == 0, daemons.log(worker)

    assert client.get(doomed).status is JobStatus.CANCELED
    assert client.get(slow).status is JobStatus.COMPLETED
    assert daemons.records(doomed) == []  # its handler never ran


def test_a_draining_daemon_gives_back_what_it_claimed_ahead_at_once(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    slow, waiting = slow_then(client, 3.0, {}, {})
    worker = daemons.start(db_path, *ONE_SLOT)
    claimed_ahead(client, daemons, slow, waiting)
    worker.send_signal(15)
    # Back in the queue while the slow job still runs: not after the drain.
    wait_until(
        lambda: all(client.get(i).status is JobStatus.PENDING for i in waiting),
        timeout=2,
        what="the jobs claimed ahead to be pending again",
    )
    assert client.get(slow).status is JobStatus.RUNNING
    assert worker.wait(timeout=30) == 0, daemons.log(worker)

    assert client.get(slow).status is JobStatus.COMPLETED
    for job_id in waiting:
        job = client.get(job_id)
        assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
        assert daemons.records(job_id) == []
