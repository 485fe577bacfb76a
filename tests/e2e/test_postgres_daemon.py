"""The same daemon on PostgreSQL: claims with SKIP LOCKED, wakes on NOTIFY, drains on SIGTERM."""

from __future__ import annotations

import signal

from durableq.client import Client
from durableq.core.config import Settings
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons, wait_for_status
from tests.support.processes import run_cli, stop


def test_two_daemons_share_the_work_on_postgres(postgres_url: str, daemons: Daemons) -> None:
    with Client.open(Settings(database=postgres_url)) as client:
        ids = client.enqueue_many([{"type": "record"} for _ in range(300)])
        workers = [daemons.start(postgres_url, "--burst", "--concurrency", "4") for _ in range(2)]
        assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
        jobs = client.store.get_many(ids)
    assert len(jobs) == 300
    assert all(job.status is JobStatus.COMPLETED and job.attempts == 1 for job in jobs)
    starts = daemons.records(event="start")
    assert sorted(r["job"] for r in starts) == sorted(ids)  # each ran exactly once


def test_notify_wakes_an_idle_daemon_and_cancel_reaches_it(
    postgres_url: str, daemons: Daemons
) -> None:
    worker = daemons.start(postgres_url)
    with Client.open(Settings(database=postgres_url)) as client:
        done = run_cli(["enqueue", "echo", "--payload", '{"n": 1}'], postgres_url)
        assert done.returncode == 0, done.stderr
        job = wait_for_status(client, int(done.stdout), JobStatus.COMPLETED, timeout=10)
        assert job.result == {"n": 1}
        # Well under the 1 s poll interval: the daemon woke on NOTIFY, not on its poll.
        assert job.started_at is not None
        assert (job.started_at - job.created_at).total_seconds() < 0.5

        sleeper = client.enqueue("record", {"seconds": 60})
        wait_for_status(client, sleeper, JobStatus.RUNNING, timeout=10)
        client.cancel(sleeper)
        wait_for_status(client, sleeper, JobStatus.CANCELED, timeout=10)
    assert stop(worker, signal.SIGTERM) == 0
