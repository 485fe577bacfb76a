"""Failures, retries with backoff, timeouts and cancellation, through a running daemon."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons, wait_for_status
from tests.support.processes import run_cli

BASE = 0.25  # seconds before the first retry; doubling, no jitter
FAST_RETRIES = {
    "DURABLEQ_BACKOFF_BASE": f"{BASE}s",
    "DURABLEQ_BACKOFF_FACTOR": "2",
    "DURABLEQ_BACKOFF_JITTER": "0",
    # Retries are due at a future instant that no commit announces: poll often to see them.
    "DURABLEQ_POLL_INTERVAL": "20ms",
}


def test_retries_follow_the_backoff_until_success_or_the_last_attempt(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    flaky = client.enqueue("flaky", {"succeed_on": 4}, max_attempts=5)
    doomed = client.enqueue("fail", max_attempts=3)
    worker = daemons.start(db_path, **FAST_RETRIES)
    wait_for_status(client, flaky, JobStatus.COMPLETED, JobStatus.FAILED)
    wait_for_status(client, doomed, JobStatus.COMPLETED, JobStatus.FAILED)
    assert daemons.stop(worker)[0] == 0

    job = client.get(flaky)
    assert (job.status, job.attempts, job.result) == (JobStatus.COMPLETED, 4, {"attempt": 4})
    starts = [line["t"] for line in daemons.records(flaky, "start")]
    assert [line["attempt"] for line in daemons.records(flaky, "start")] == [1, 2, 3, 4]
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    print("gaps between attempts:", [f"{gap:.3f}s" for gap in gaps])
    for attempt, gap in enumerate(gaps, start=1):
        delay = BASE * 2 ** (attempt - 1)
        assert delay <= gap < delay + 2.0, (attempt, gaps)
    assert gaps[2] > 2 * gaps[0], gaps  # growing exponentially, not linearly
    errors = client.errors(flaky)
    assert [(e.attempt, e.error) for e in errors] == [
        (n, f"RuntimeError: flaky failure on attempt {n}") for n in (1, 2, 3)
    ]

    job = client.get(doomed)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
    assert job.last_error == "RuntimeError: this job always fails"
    errors = client.errors(doomed)
    assert [e.attempt for e in errors] == [1, 2, 3]
    for error in errors:
        assert error.error == "RuntimeError: this job always fails"
        assert error.traceback is not None
        assert "Traceback (most recent call last)" in error.traceback
        assert "in fail" in error.traceback
    failed_gaps = [(b.failed_at - a.failed_at).total_seconds() for a, b in pairwise(errors)]
    assert failed_gaps[0] >= BASE and failed_gaps[1] >= 2 * BASE, failed_gaps


def test_a_timeout_stops_the_handler_and_counts_as_a_failed_attempt(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    worker = daemons.start(db_path, **FAST_RETRIES)
    command = ["enqueue", "sleep", "--payload", '{"seconds": 10}', "--timeout", "500ms"]
    result = run_cli([*command, "--max-attempts", "2"], db_path)
    assert result.returncode == 0, result.stderr
    job_id = int(result.stdout)
    began = time.monotonic()
    job = wait_for_status(client, job_id, JobStatus.COMPLETED, JobStatus.FAILED)
    assert time.monotonic() - began < 8  # far less than the 10 s sleep: it was stopped
    assert daemons.stop(worker)[0] == 0

    assert (job.status, job.attempts, job.timeout) == (JobStatus.FAILED, 2, 0.5)
    errors = client.errors(job_id)
    assert [e.attempt for e in errors] == [1, 2]
    for error in errors:
        assert error.error.startswith("timed out after 0.5s")
        # The sleep handler only returns early when ctx.cancelled is set.
        assert "sleep stopped after" in error.error


def test_cancel_of_a_pending_job_ends_it_at_once(client: Client, db_path: Path) -> None:
    job_id = client.enqueue("record", delay=3600)
    result = run_cli(["cancel", str(job_id)], db_path)
    assert result.returncode == 0, result.stderr
    job = client.get(job_id)
    assert (job.status, job.attempts) == (JobStatus.CANCELED, 0)
    assert job.finished_at is not None


def test_cancel_of_a_running_job_stops_its_handler_and_ends_it_canceled(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    job_id = client.enqueue("record", {"seconds": 30}, max_attempts=5)
    worker = daemons.start(db_path, **FAST_RETRIES)
    daemons.wait_for_record(job_id, "start")

    asked = time.time()
    requested = client.cancel(job_id)  # from this process: the daemon must notice by itself
    assert (requested.status, requested.cancel_requested) == (JobStatus.RUNNING, True)
    (stopped,) = daemons.wait_for_record(job_id, "stopped", timeout=10)
    noticed = stopped["t"] - asked
    print(f"cancel noticed by the handler after {noticed:.2f}s")
    assert noticed < 2.5

    job = wait_for_status(client, job_id, JobStatus.CANCELED, JobStatus.FAILED, JobStatus.PENDING)
    assert (job.status, job.attempts, job.last_error) == (JobStatus.CANCELED, 1, None)
    assert client.errors(job_id) == []
    # Not retried: a job enqueued after it runs, and the canceled one still ran only once.
    sentinel = client.enqueue("record")
    wait_for_status(client, sentinel, JobStatus.COMPLETED)
    assert len(daemons.records(job_id, "start")) == 1
    assert client.get(job_id).status is JobStatus.CANCELED
    assert daemons.stop(worker)[0] == 0
