"""SQLite's reads in plain DBAPI: jobs, their errors, filtered lists, stats, queues, workers and
the leader. No SQLAlchemy here.

The SQLite store reads through these (one SQL path for SQLite), and so does the CLI's read side
on a ready database (sqlite/ready.py), which thereby skips importing SQLAlchemy: that import was
most of a read command's time. PostgreSQL reads through Core (core/reads.py and friends).
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from durableq.core import payloads
from durableq.core.errors import JobNotFound
from durableq.core.jobs import Job, JobError, JobStatus
from durableq.core.queues import QueueInfo, Rate, named
from durableq.store.records import JobFilter, Leader, Stats, WorkerInfo
from durableq.store.timestamps import decode, encode

PENDING, RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value
LEADER = "leader"  # the leadership row's name (core/leadership.py)
LIKE_ESCAPE = "/"


class SqliteReads:
    """Every read, on the connection `_reading()` lends in a read transaction (one snapshot)."""

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- jobs ------------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self._reading() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    def get_many(self, job_ids: Sequence[int]) -> list[Job]:
        ids = list(job_ids)
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        with self._reading() as connection:
            rows = connection.execute(f"SELECT * FROM jobs WHERE id IN ({marks})", ids)
            return [_job(row) for row in rows]

    def errors(self, job_id: int) -> list[JobError]:
        with self._reading() as connection:
            rows = connection.execute(
                "SELECT job_id, attempt, error, traceback, failed_at FROM job_errors "
                "WHERE job_id = ? ORDER BY id",
                (job_id,),
            ).fetchall()
        return [JobError(r[0], r[1], r[2], r[3], decode(r[4])) for r in rows]

    def list_jobs(self, where: JobFilter, limit: int, offset: int = 0) -> list[Job]:
        """Newest first."""
        condition, params = _filtered(where)
        if where.statuses == (JobStatus.RUNNING,):
            # Few, with a partial index of their own: asked for newest first, SQLite would
            # rather walk the whole table by id (seconds at a million finished jobs, none
            # running). Read them through the index, order them here.
            with self._reading() as connection:
                rows = connection.execute(f"SELECT * FROM jobs WHERE {condition}", params)
                found = sorted((_job(row) for row in rows), key=lambda job: -job.id)
            return found[offset : offset + limit]
        sql = f"SELECT * FROM jobs WHERE {condition} ORDER BY id DESC LIMIT ? OFFSET ?"
        with self._reading() as connection:
            return [_job(row) for row in connection.execute(sql, [*params, limit, offset])]

    def count_jobs(self, where: JobFilter, cap: int) -> int:
        """How many jobs match, counting no further than `cap` (a bounded scan)."""
        condition, params = _filtered(where)
        sql = f"SELECT count(*) FROM (SELECT id FROM jobs WHERE {condition} LIMIT ?)"
        with self._reading() as connection:
            return int(connection.execute(sql, [*params, cap]).fetchone()[0])

    def stats(self, now: datetime) -> Stats:
        minute_ago = encode(now - timedelta(minutes=1))
        with self._reading() as connection:
            counts: dict[str, dict[str, int]] = {}
            grouped = "SELECT queue, status, count(*) FROM jobs GROUP BY queue, status"
            for queue, status, n in connection.execute(grouped):
                counts.setdefault(queue, {})[status] = n
            oldest = connection.execute(
                f"SELECT min(run_at) FROM jobs WHERE status = '{PENDING}' AND run_at <= ?",
                (encode(now),),
            ).fetchone()[0]
            recent = dict(
                connection.execute(
                    "SELECT status, count(*) FROM jobs WHERE status IN (?, ?) "
                    "AND finished_at >= ? GROUP BY status",
                    (JobStatus.COMPLETED.value, JobStatus.FAILED.value, minute_ago),
                ).fetchall()
            )
        return Stats(
            counts=counts,
            oldest_due_at=None if oldest is None else decode(oldest),
            completed_last_minute=int(recent.get(JobStatus.COMPLETED.value, 0)),
            failed_last_minute=int(recent.get(JobStatus.FAILED.value, 0)),
        )

    # -- queues, workers, the leader -----------------------------------------------------------

    def queue(self, name: str, now: datetime) -> QueueInfo:
        return named(self.queues(now, names=[name]), name)

    def queues(self, now: datetime, names: Sequence[str] = ()) -> list[QueueInfo]:
        """Every queue with a row or a job, by name, with its counts."""
        params = list(names)
        only = f" AND {_in('queue', names)}" if names else ""
        with self._reading() as connection:
            rows = {
                row["name"]: row
                for row in connection.execute(
                    f"SELECT * FROM queues{' WHERE ' + _in('name', names) if names else ''}",
                    params,
                )
            }
            tallies: dict[str, dict[str, int]] = collections.defaultdict(dict)
            # One status at a time, as a literal, so that each count reads its partial index
            # (pending or running rows only), never the finished history.
            for status in (PENDING, RUNNING):
                counts = connection.execute(
                    f"SELECT queue, count(*) FROM jobs WHERE status = '{status}'{only} "
                    "GROUP BY queue",
                    params,
                )
                for queue, n in counts:
                    tallies[queue][status] = int(n)
            oldest = dict(
                connection.execute(
                    f"SELECT queue, min(run_at) FROM jobs WHERE status = '{PENDING}' "
                    f"AND run_at <= ?{only} GROUP BY queue",
                    [encode(now), *params],
                ).fetchall()
            )
        return [
            _queue(name, rows.get(name), tallies[name], oldest.get(name), now)
            for name in sorted(set(rows) | set(tallies))
        ]

    def list_workers(self, now: datetime, default_lease: float) -> list[WorkerInfo]:
        """The live workers, each judged by its own lease; oldest first."""
        with self._reading() as connection:
            rows = connection.execute("SELECT * FROM workers ORDER BY started_at").fetchall()
        found = (
            WorkerInfo(
                id=row["id"],
                host=row["host"],
                pid=row["pid"],
                queues=() if row["queues"] == "*" else tuple(row["queues"].split(",")),
                concurrency=row["concurrency"],
                started_at=decode(row["started_at"]),
                heartbeat_at=decode(row["heartbeat_at"]),
                lease=row["lease"],
            )
            for row in rows
        )
        return [worker for worker in found if worker.alive(now, default_lease)]

    def leader(self, now: datetime) -> Leader | None:
        """The daemon leading now, if any."""
        with self._reading() as connection:
            row = connection.execute(
                "SELECT holder, term, elected_at, expires_at FROM leadership WHERE name = ?",
                (LEADER,),
            ).fetchone()
        if row is None or row["holder"] is None or row["expires_at"] is None:
            return None
        expires = decode(row["expires_at"])
        if expires < now:
            return None
        return Leader(row["holder"], int(row["term"]), decode(row["elected_at"]), expires)


@contextmanager
def read_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN ... COMMIT around a reader's statements (one snapshot of the WAL for them all),
    with rows by name (the connection's own row factory is put back: it may be pooled)."""
    before = connection.row_factory
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            if connection.in_transaction:
                connection.execute("COMMIT")
    finally:
        connection.row_factory = before


def _filtered(where: JobFilter) -> tuple[str, list[Any]]:
    """The WHERE condition of a job filter and its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    if where.statuses:
        # Literals, not parameters: the partial indexes (pending, running, failed, canceled)
        # serve only a condition that names their status as written.
        statuses = [JobStatus(status).value for status in where.statuses]  # known values only
        parts.append("(" + " OR ".join(f"status = '{status}'" for status in statuses) + ")")
    if where.queues:
        parts.append(_in("queue", where.queues))
        params += where.queues
    if where.types:
        parts.append(_in("type", where.types))
        params += where.types
    if where.created_after is not None:
        parts.append("created_at >= ?")
        params.append(encode(where.created_after))
    if where.created_before is not None:
        parts.append("created_at < ?")
        params.append(encode(where.created_before))
    if where.before_id is not None:
        parts.append("id < ?")
        params.append(where.before_id)
    if where.payload_contains:
        parts.append(f"payload LIKE ? ESCAPE '{LIKE_ESCAPE}'")
        params.append(f"%{_escaped(where.payload_contains)}%")
    return (" AND ".join(parts) or "1 = 1"), params


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join('?' * len(values))})"


def _escaped(text: str) -> str:
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def _optional(text: str | None) -> datetime | None:
    return None if text is None else decode(text)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        queue=row["queue"],
        type=row["type"],
        payload=payloads.decode(row["payload"]),
        status=JobStatus(row["status"]),
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        timeout=row["timeout"],
        run_at=decode(row["run_at"]),
        created_at=decode(row["created_at"]),
        updated_at=decode(row["updated_at"]),
        started_at=_optional(row["started_at"]),
        finished_at=_optional(row["finished_at"]),
        last_error=row["last_error"],
        result=payloads.decode(row["result"]),
        cancel_requested=bool(row["cancel_requested"]),
        worker_id=row["worker_id"],
        lease_expires_at=_optional(row["lease_expires_at"]),
        idempotency_key=row["idempotency_key"],
        unique_key=row["unique_key"],
        schedule=row["schedule"],
        schedule_tick=_optional(row["schedule_tick"]),
        progress=row["progress"],
        progress_message=row["progress_message"],
        meta=payloads.decode(row["meta"]),
    )


def _queue(
    name: str, row: sqlite3.Row | None, tally: dict[str, int], due: str | None, now: datetime
) -> QueueInfo:
    wait = None if due is None else max(0.0, (now - decode(due)).total_seconds())
    return QueueInfo(
        name=name,
        paused_at=None if row is None else _optional(row["paused_at"]),
        concurrency=None if row is None else row["concurrency"],
        max_pending=None if row is None else row["max_pending"],
        rate=None
        if row is None
        else Rate.from_columns(row["rate_count"], row["rate_period"], row["rate_burst"]),
        pending=tally.get(PENDING, 0),
        running=tally.get(RUNNING, 0),
        oldest_due_wait=wait,
    )
