"""A worker wakes for the retries it scheduled when they fall due, not at its next poll."""

from __future__ import annotations

import itertools
from pathlib import Path

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons, wait_for_status


def test_retries_run_when_due_even_with_a_long_poll_interval(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    job_id = client.enqueue("fail", max_attempts=3)
    daemons.start(
        db_path,
        DURABLEQ_POLL_INTERVAL="10s",  # a poll could not explain sub-second retries
        DURABLEQ_BACKOFF_BASE="300ms",
        DURABLEQ_BACKOFF_JITTER="0",
    )
    wait_for_status(client, job_id, JobStatus.FAILED, timeout=20)
    failed_at = [error.failed_at for error in client.errors(job_id)]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(failed_at)]
    assert len(gaps) == 2
    assert 0.3 <= gaps[0] < 3 and 0.6 <= gaps[1] < 3, gaps  # 0.3 s and 0.6 s backoffs
