"""The yardsticks: the stdlib sqlite3 module inserting one job per transaction, and claiming and
completing one job per transaction.

Same file layout (durableq's own schema, WAL), same durability (synchronous level), same claim
order and the same columns written as durableq's claim and finish, with none of durableq's
machinery around it. durableq's processing rate divided by this one stays comparable across
machines, where raw jobs/s would not.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

LEASE = timedelta(seconds=30)
WORKER_ID = "bare-sqlite3"

CLAIM = """
UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = :now, updated_at = :now,
    worker_id = :worker, lease_token = :token, lease_expires_at = :expires
WHERE id = (
    SELECT id FROM jobs WHERE status = 'pending' AND run_at <= :now
    ORDER BY priority DESC, run_at, id LIMIT 1
)
RETURNING id, queue, type, payload, attempts, max_attempts, timeout
"""

COMPLETE = """
UPDATE jobs SET status = 'completed', finished_at = :now, updated_at = :now, result = NULL,
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL
WHERE id = :id AND status = 'running' AND lease_token = :token
"""


# The columns a single enqueue writes, with the values it writes for a no-op job.
INSERT = """
INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts, run_at,
    created_at, updated_at, cancel_requested)
VALUES ('default', 'noop', '{}', 'pending', 0, 0, 10, :now, :now, :now, 0)
"""


def stamp(moment: datetime) -> str:
    """The text durableq stores for an instant (UTC, fixed width, sortable)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def claim_and_complete_all(db: Path, synchronous: str, busy_timeout: float = 10.0) -> int:
    """Process every due job, one claim and one completion transaction each; returns the count."""
    with closing(sqlite3.connect(db, timeout=busy_timeout, isolation_level=None)) as connection:
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        done = 0
        while _claim_and_complete(connection):
            done += 1
        return done


def _claim_and_complete(connection: sqlite3.Connection) -> bool:
    now = datetime.now(UTC)
    token = uuid.uuid4().hex
    connection.execute("BEGIN IMMEDIATE")
    try:
        claimed = connection.execute(
            CLAIM,
            {"now": stamp(now), "worker": WORKER_ID, "token": token, "expires": stamp(now + LEASE)},
        ).fetchone()
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    if claimed is None:
        return False
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            COMPLETE, {"now": stamp(datetime.now(UTC)), "id": claimed[0], "token": token}
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return True


def insert_one_each(db: Path, synchronous: str, count: int, seconds: float) -> tuple[int, float]:
    """Insert no-op jobs one per transaction (BEGIN IMMEDIATE, INSERT, COMMIT), up to `count`
    or `seconds`: the yardstick for one enqueue. Returns (jobs, seconds taken)."""
    with closing(sqlite3.connect(db, timeout=10.0, isolation_level=None)) as connection:
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        done = 0
        started = time.perf_counter()
        while done < count and time.perf_counter() - started < seconds:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(INSERT, {"now": stamp(datetime.now(UTC))})
            connection.execute("COMMIT")
            done += 1
        return done, time.perf_counter() - started
