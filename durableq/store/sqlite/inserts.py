"""Inserting jobs into SQLite inside the caller's write transaction, in plain DBAPI.

Jobs without keys take the fast path: multi-row INSERTs. Jobs with keys (idempotency, unique,
a schedule's tick) go row by row through core/uniqueness.enqueue_with_keys, which looks for
twins first; SQLite's write lock makes that lookup exact, and the unique indexes stand behind it.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from durableq.core.jobs import JobStatus, NewJob
from durableq.core.payloads import encode_payload
from durableq.core.uniqueness import Enqueued, Twin, enqueue_with_keys
from durableq.store.sqlite.queues import admit
from durableq.store.sqlite.statements import (
    BY_IDEMPOTENCY_KEY,
    BY_SCHEDULE_TICK,
    BY_UNIQUE_KEY,
    INSERT,
    INSERT_CHUNK,
    INSERT_HEAD,
    INSERT_KEYED,
    REPLACE_TWIN,
    VALUES,
)
from durableq.store.timestamps import encode as timestamp
from durableq.store.timestamps import encode_optional


def insert_jobs(connection: sqlite3.Connection, jobs: Sequence[NewJob], now: datetime) -> Enqueued:
    """Insert pending jobs inside the caller's write transaction; their ids, in order."""
    created = timestamp(now)
    if any(job.keyed for job in jobs):
        return enqueue_with_keys(_KeySteps(connection, created), jobs)
    admit(connection, jobs, created)
    rows = [job_row(job, created) for job in jobs]
    if len(rows) == 1:
        job_id = connection.execute(INSERT, rows[0]).lastrowid
        assert job_id is not None
        return Enqueued([job_id])
    before = _sequence(connection)
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        connection.execute(_insert_many(len(chunk)), [v for row in chunk for v in row])
    after = _sequence(connection)
    # AUTOINCREMENT under our write lock hands out consecutive ids, in order.
    assert after - before == len(rows), (before, after, len(rows))
    return Enqueued(range(before + 1, after + 1))


def job_row(job: NewJob, created: str) -> tuple[Any, ...]:
    return (
        job.queue,
        job.type,
        encode_payload(job.payload),
        job.priority,
        job.max_attempts,
        job.timeout,
        created if job.run_at is None else timestamp(job.run_at),
        created,
        created,
    )


class _KeySteps:
    """uniqueness.KeySteps on a SQLite connection in a write transaction."""

    def __init__(self, connection: sqlite3.Connection, created: str) -> None:
        self.connection = connection
        self.created = created

    def by_idempotency_key(self, key: str) -> Twin | None:
        return self._twin(BY_IDEMPOTENCY_KEY, key)

    def by_unique_key(self, key: str) -> Twin | None:
        return self._twin(BY_UNIQUE_KEY, key)

    def by_schedule_tick(self, schedule: str, tick: datetime) -> Twin | None:
        return self._twin(BY_SCHEDULE_TICK, schedule, timestamp(tick))

    def _twin(self, sql: str, *key: str) -> Twin | None:
        row = self.connection.execute(sql, key).fetchone()
        if row is None:
            return None
        job_id, job_type, payload, status = row
        return Twin(job_id, job_type, json.loads(payload), JobStatus(status))

    def replace(self, twin_id: int, job: NewJob) -> bool:
        run_at = self.created if job.run_at is None else timestamp(job.run_at)
        values = (twin_id, encode_payload(job.payload), run_at, self.created)
        return self.connection.execute(REPLACE_TWIN, values).rowcount == 1

    def admit(self, jobs: Sequence[NewJob]) -> None:
        admit(self.connection, jobs, self.created)

    def insert(self, job: NewJob) -> int | None:
        values = (
            *job_row(job, self.created),
            job.idempotency_key,
            job.unique_key,
            job.unique_states,
            job.schedule,
            encode_optional(job.schedule_tick),
        )
        row = self.connection.execute(INSERT_KEYED, values).fetchone()
        return None if row is None else int(row[0])


@functools.cache
def _insert_many(rows: int) -> str:
    return INSERT_HEAD + ", ".join([VALUES] * rows)


def _sequence(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone()
    return 0 if row is None else int(row[0])
