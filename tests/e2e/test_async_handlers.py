"""Async handlers run on the worker's event loop and are really cancelled (at their next await)."""

from __future__ import annotations

import time
from pathlib import Path

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons, wait_for_status


def test_async_handlers_finish_promptly(client: Client, db_path: Path, daemons: Daemons) -> None:
    ids = [client.enqueue("async_sleep", {"seconds": 0.001}) for _ in range(20)]
    worker = daemons.start(db_path, "--burst", "--concurrency", "1")
    assert worker.wait(timeout=60) == 0, daemons.log(worker)
    jobs = [client.get(job_id) for job_id in ids]
    assert all(job.status is JobStatus.COMPLETED for job in jobs)
    # Each result is noticed when the coroutine ends, not at the next look at ctx.cancelled.
    durations = [(job.finished_at - job.started_at).total_seconds() for job in jobs]  # type: ignore[operator]
    assert sorted(durations)[len(durations) // 2] < 0.018, durations  # a 20 ms poll: >= 0.02


def test_timeout_cancels_an_async_handler(client: Client, db_path: Path, daemons: Daemons) -> None:
    job_id = client.enqueue("async_sleep", {"seconds": 60}, timeout=0.5, max_attempts=1)
    daemons.start(db_path)
    started = time.monotonic()
    job = wait_for_status(client, job_id, JobStatus.FAILED, timeout=20)
    assert time.monotonic() - started < 10
    assert job.last_error is not None and job.last_error.startswith("timed out after 0.5s")


def test_cancel_reaches_an_async_handler(client: Client, db_path: Path, daemons: Daemons) -> None:
    job_id = client.enqueue("async_sleep", {"seconds": 60})
    daemons.start(db_path)
    wait_for_status(client, job_id, JobStatus.RUNNING, timeout=20)
    client.cancel(job_id)
    job = wait_for_status(client, job_id, JobStatus.CANCELED, timeout=10)
    assert job.attempts == 1 and client.errors(job_id) == []
