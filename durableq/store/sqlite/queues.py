"""The queue controls in SQLite's plain DBAPI: admitting new jobs, and what a claim may take.

Shared by the SQLite store (sqlite/store.py) and the CLI's enqueue (sqlite/enqueue.py), so
that backpressure holds on every way in. Every function runs inside the caller's write
transaction: SQLite's write lock makes each count-then-act exact.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence

from durableq.core.errors import QueueFull
from durableq.core.jobs import JobStatus, NewJob
from durableq.core.queues import QueueControls, Rate

QUEUE_ROW = "SELECT max_pending FROM queues WHERE name = ?"
NEW_QUEUE = (
    "INSERT INTO queues (name, created_at, updated_at) VALUES (?1, ?2, ?2) "
    "ON CONFLICT (name) DO NOTHING"
)
_PENDING, _RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value
PENDING_IN_QUEUE = f"SELECT count(*) FROM jobs WHERE status = '{_PENDING}' AND queue = ?"
CONTROLS = """
SELECT name, paused_at IS NOT NULL, concurrency, rate_count, rate_period, rate_burst, rate_tat
FROM queues
WHERE paused_at IS NOT NULL OR concurrency IS NOT NULL OR rate_count IS NOT NULL
"""
RUNNING_IN = (
    f"SELECT queue, count(*) FROM jobs WHERE status = '{_RUNNING}' AND queue IN ({{}}) "
    "GROUP BY queue"
)
SET_TAT = "UPDATE queues SET rate_tat = ?1 WHERE name = ?2"


def admit(connection: sqlite3.Connection, jobs: Sequence[NewJob], created: str) -> None:
    """Make the rows of queues used for the first time; refuse a batch a queue has no room for."""
    adding = collections.Counter(job.queue for job in jobs)
    for queue, count in adding.items():
        row = connection.execute(QUEUE_ROW, (queue,)).fetchone()
        if row is None:
            connection.execute(NEW_QUEUE, (queue, created))
            continue
        max_pending = row[0]
        if max_pending is None:
            continue
        pending = int(connection.execute(PENDING_IN_QUEUE, (queue,)).fetchone()[0])
        if pending + count > max_pending:
            raise QueueFull(queue, pending, max_pending, count)


def read_controls(connection: sqlite3.Connection) -> list[QueueControls]:
    """The queues whose claims are limited: paused, capped or rate-limited."""
    return [
        QueueControls(
            name=name,
            paused=bool(paused),
            concurrency=concurrency,
            rate=Rate.from_columns(count, period, burst),
            rate_tat=tat,
        )
        for name, paused, concurrency, count, period, burst, tat in connection.execute(CONTROLS)
    ]


def running_counts(connection: sqlite3.Connection, queues: Sequence[str]) -> dict[str, int]:
    if not queues:
        return {}
    marks = ", ".join("?" * len(queues))
    rows = connection.execute(RUNNING_IN.format(marks), list(queues)).fetchall()
    return {queue: int(count) for queue, count in rows}


def set_tat(connection: sqlite3.Connection, queue: str, tat: float) -> None:
    connection.execute(SET_TAT, (tat, queue))
