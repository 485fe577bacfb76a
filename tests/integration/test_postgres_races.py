"""Operator commands racing a worker on PostgreSQL, where transactions are READ COMMITTED.

SQLite serialises writers (BEGIN IMMEDIATE), so these interleavings cannot happen there.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import text

from durableq.client import Client
from durableq.core.jobs import JobStatus, NewJob
from tests.support.factories import at
from tests.support.processes import wait_until


def blocked_on_a_row_lock(client: Client) -> bool:
    with client.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar()
    return bool(waiting)


def test_cancel_racing_a_claim_still_cancels(postgres_client: Client) -> None:
    """The cancel reads `pending`; a worker's claim commits before the cancel writes."""
    client = postgres_client
    job_id = client.store.enqueue(NewJob("noop", {}), at(0))
    outcome: dict[str, Any] = {}

    with client.engine.connect() as claimer:
        claimer.begin()
        # A worker's claim, not yet committed: it holds the row lock.
        claimer.execute(
            text(
                "UPDATE jobs SET status = 'running', attempts = 1, worker_id = 'w' WHERE id = :id"
            ),
            {"id": job_id},
        )

        def cancel() -> None:
            try:
                outcome["job"] = client.store.cancel(job_id, at(1))
            except Exception as error:  # reported below, with the job's state
                outcome["error"] = error

        canceling = threading.Thread(target=cancel)
        canceling.start()
        wait_until(lambda: blocked_on_a_row_lock(client), timeout=10, what="cancel to block")
        claimer.commit()
    canceling.join(timeout=30)

    job = client.get(job_id)
    # Either outcome is correct: canceled at once, or running with its worker told to stop.
    # Not acceptable: the cancel returns as if done while nothing was recorded.
    assert job.status is JobStatus.CANCELED or job.cancel_requested, (job, outcome)
