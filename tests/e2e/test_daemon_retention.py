"""A running daemon prunes finished jobs past their retention, as set in the environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.support.daemons import Daemons
from tests.support.factories import insert_jobs


def test_the_daemon_prunes_old_finished_jobs_and_keeps_the_rest(
    client: Client, db_path: Path, daemons: Daemons
) -> None:
    now = datetime.now(UTC)
    old = insert_jobs(client.engine, 5, JobStatus.COMPLETED, finished_at=now - timedelta(hours=2))
    recent = insert_jobs(client.engine, 3, JobStatus.COMPLETED, finished_at=now)
    failed = insert_jobs(client.engine, 2, JobStatus.FAILED, finished_at=now - timedelta(hours=2))
    pending = client.enqueue("noop", delay=3600)

    worker = daemons.start(
        db_path, "--log-level", "info", DURABLEQ_RETAIN_COMPLETED="1h", DURABLEQ_RETAIN_FAILED="0"
    )
    daemons.wait_for_log(worker, "pruned finished jobs past their retention: 5 completed")
    remaining = {job.id for job in client.jobs(limit=100)}
    assert not remaining & set(old)
    assert remaining == {*recent, *failed, pending}
