"""Figures read back from the jobs table: the timestamps durableq itself recorded.

Read with the stdlib sqlite3 module (psycopg on a PostgreSQL server), outside any transaction
of durableq's, so that measuring costs the daemons nothing but a WAL reader. Only jobs with
`id > after_id` count, which leaves out a pre-built history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from durableq.benchmark import postgres
from durableq.benchmark.harness import BenchError, Db


def rows(db: Db, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One read; SQL with `?` placeholders, written to run on both."""
    if isinstance(db, str):
        return postgres.rows(db, sql, params)
    with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as connection:
        return connection.execute(sql, params).fetchall()


def unfinished(db: Db) -> int:
    """Pending plus running jobs: both counts are answered by a partial index."""
    ((count,),) = rows(
        db,
        "SELECT (SELECT count(*) FROM jobs WHERE status = 'pending')"
        " + (SELECT count(*) FROM jobs WHERE status = 'running')",
    )
    return int(count)


def worker_registered(db: Db, pid: int) -> bool:
    """The daemon has opened the database and is about to claim: it is ready."""
    ((count,),) = rows(db, "SELECT count(*) FROM workers WHERE pid = ?", (pid,))
    return bool(count)


def max_job_id(db: Db) -> int:
    ((top,),) = rows(db, "SELECT coalesce(max(id), 0) FROM jobs")
    return int(top)


@dataclass(frozen=True)
class Run:
    """The jobs of one workload as the database saw them."""

    jobs: int
    processed: int  # completed
    first_created: datetime
    first_started: datetime
    last_finished: datetime

    @property
    def processing_seconds(self) -> float:
        """From the first claim to the last completion."""
        return _positive(self.last_finished - self.first_started)

    @property
    def end_to_end_seconds(self) -> float:
        """From the first enqueue to the last completion."""
        return _positive(self.last_finished - self.first_created)

    @property
    def processing_rate(self) -> float:
        return self.processed / self.processing_seconds

    @property
    def end_to_end_rate(self) -> float:
        return self.processed / self.end_to_end_seconds


def run_of(db: Db, after_id: int = 0) -> Run:
    ((jobs, processed, created, started, finished),) = rows(
        db,
        "SELECT count(*), sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END),"
        " min(created_at), min(started_at), max(finished_at) FROM jobs WHERE id > ?",
        (after_id,),
    )
    if not jobs or not processed or started is None or finished is None:
        raise BenchError(f"no job was processed in {_name(db)} ({jobs or 0} enqueued)")
    return Run(
        jobs=int(jobs),
        processed=int(processed),
        first_created=_instant(created),
        first_started=_instant(started),
        last_finished=_instant(finished),
    )


def pickup_latencies_ms(db: Db, after_id: int = 0) -> list[float]:
    """Enqueue-to-start of every started job: how long each waited for a daemon."""
    found = rows(
        db,
        "SELECT created_at, started_at FROM jobs WHERE id > ? AND started_at IS NOT NULL",
        (after_id,),
    )
    return [
        (_instant(started) - _instant(created)).total_seconds() * 1000 for created, started in found
    ]


def _instant(value: str | datetime) -> datetime:
    # durableq stores UTC on SQLite as fixed-width text, e.g. '2026-01-31 09:30:00.000000';
    # PostgreSQL hands back aware datetimes.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _name(db: Db) -> str:
    return db.rsplit("/", 1)[-1] if isinstance(db, str) else db.name


def _positive(delta: timedelta) -> float:
    # Timestamps have microsecond resolution: a span is zero only for a single tiny run.
    return max(delta.total_seconds(), 1e-6)
