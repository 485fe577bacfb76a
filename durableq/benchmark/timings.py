"""Figures read back from the jobs table: the timestamps durableq itself recorded.

Read with the stdlib sqlite3 module, outside any transaction of durableq's, so that measuring
costs the daemons nothing but a WAL reader. Only jobs with `id > after_id` count, which leaves out
a pre-built history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from durableq.benchmark.harness import BenchError


@contextmanager
def reading(db: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as connection:
        yield connection


def unfinished(db: Path) -> int:
    """Pending plus running jobs: both counts are answered by a partial index."""
    with reading(db) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM jobs WHERE status = 'pending')"
            " + (SELECT count(*) FROM jobs WHERE status = 'running')"
        ).fetchone()
    return int(row[0])


def worker_registered(db: Path, pid: int) -> bool:
    """The daemon has opened the database and is about to claim: it is ready."""
    with reading(db) as connection:
        row = connection.execute("SELECT count(*) FROM workers WHERE pid = ?", (pid,)).fetchone()
    return bool(row[0])


def max_job_id(db: Path) -> int:
    with reading(db) as connection:
        row = connection.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()
    return int(row[0])


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


def run_of(db: Path, after_id: int = 0) -> Run:
    with reading(db) as connection:
        row = connection.execute(
            "SELECT count(*), sum(status = 'completed'), min(created_at), min(started_at),"
            " max(finished_at) FROM jobs WHERE id > ?",
            (after_id,),
        ).fetchone()
    jobs, processed, created, started, finished = row
    if not jobs or not processed or started is None or finished is None:
        raise BenchError(f"no job was processed in {db.name} ({jobs or 0} enqueued)")
    return Run(
        jobs=int(jobs),
        processed=int(processed),
        first_created=_instant(created),
        first_started=_instant(started),
        last_finished=_instant(finished),
    )


def pickup_latencies_ms(db: Path, after_id: int = 0) -> list[float]:
    """Enqueue-to-start of every started job: how long each waited for a daemon."""
    with reading(db) as connection:
        rows = connection.execute(
            "SELECT created_at, started_at FROM jobs WHERE id > ? AND started_at IS NOT NULL",
            (after_id,),
        ).fetchall()
    return [
        (_instant(started) - _instant(created)).total_seconds() * 1000 for created, started in rows
    ]


def _instant(text: str) -> datetime:
    # durableq stores UTC as fixed-width text, e.g. '2026-01-31 09:30:00.000000'.
    return datetime.fromisoformat(text)


def _positive(delta: timedelta) -> float:
    # Timestamps have microsecond resolution: a span is zero only for a single tiny run.
    return max(delta.total_seconds(), 1e-6)
