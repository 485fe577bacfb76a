"""The SQLite hot path in plain DBAPI: enqueue, claim and finish.

SQLAlchemy Core costs about 2-3x over the sqlite3 module per statement here (measured: a claim
of 16 jobs plus their completion took 60 + 77 us/job through Core, 25 + 35 through sqlite3), and
these few statements (in db/sqlite_sql.py) are all a busy worker runs. Every other query stays in
Core. The statements mirror the Core ones in repository.py exactly; the repository test suite
runs against both (SQLite takes this path, PostgreSQL the Core one).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from durableq.core.jobs import ClaimedJob, NewJob
from durableq.core.outcomes import Finish
from durableq.core.queues import QueueControls, QueueFilter, claim_within_controls
from durableq.store.engine import busy_timeout_of, translate_errors
from durableq.store.records import Turn
from durableq.store.sqlite.queues import read_controls, running_counts, set_tat
from durableq.store.sqlite.statements import (
    BEAT,
    CLAIM,
    FINISH,
    INSERT_ERROR,
    RENEW,
    TIMESTAMP_FORMAT,
    insert_jobs,
    optional_timestamp,
    timestamp,
    write_transaction,
)


class SqliteHotPath:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.busy_timeout = busy_timeout_of(engine)
        self._worker_connection: sqlite3.Connection | None = None
        self._worker_lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        pooled = self.engine.raw_connection()
        connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        try:
            with _write_transaction(self.engine, connection, self.busy_timeout, toggle=True):
                yield connection
        finally:
            pooled.close()

    @contextmanager
    def _worker_transaction(self, hurry_at: float | None = None) -> Iterator[sqlite3.Connection]:
        """The worker's turns run on a connection of their own, taken out of the pool once.

        That saves the pool's check-out and reset on every turn, and lets the connection keep
        SQLite's busy handler off for good (begin_immediate does the waiting).
        """
        with self._worker_lock:
            if self._worker_connection is None:
                pooled = self.engine.raw_connection()
                connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
                pooled.detach()
                connection.execute("PRAGMA busy_timeout = 0")
                self._worker_connection = connection
            worker_connection = self._worker_connection
            with _write_transaction(
                self.engine, worker_connection, self.busy_timeout, False, hurry_at
            ):
                yield worker_connection

    def close(self) -> None:
        with self._worker_lock:
            if self._worker_connection is not None:
                self._worker_connection.close()
                self._worker_connection = None

    # -- producers ----------------------------------------------------------------------

    def enqueue(self, job: NewJob, now: datetime) -> int:
        return self.enqueue_many([job], now)[0]

    def enqueue_many(self, jobs: Sequence[NewJob], now: datetime) -> list[int]:
        with self._transaction() as connection:
            return insert_jobs(connection, jobs, now)

    # -- workers ------------------------------------------------------------------------

    def finish_and_claim(
        self,
        finishes: Sequence[Finish],
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime | Callable[[], datetime],
        lease: float,
        *,
        renew: bool = False,
        hurry_at: float | None = None,
        caps: Mapping[str, int] | None = None,
    ) -> Turn:
        """Write outcomes, renew leases if asked, then claim up to `limit` jobs: one commit."""
        renewed: dict[int, str] = {}
        with self._worker_transaction(hurry_at) as connection:
            now = now() if callable(now) else now  # a clock: read with the write lock held
            stamp = timestamp(now)
            stale = self._finish(connection, finishes, stamp) if finishes else []
            if renew:
                expires = timestamp(now + timedelta(seconds=lease))
                rows = connection.execute(RENEW, (expires, worker_id)).fetchall()
                renewed = {job_id: token for job_id, token in rows}
                connection.execute(BEAT, (stamp, worker_id))
            expires = timestamp(now + timedelta(seconds=lease))
            claimed, wake_in, held = claim_within_controls(
                _Claim(connection, worker_id, stamp, expires),
                queues,
                caps or {},
                limit,
                now.timestamp(),
            )
        return Turn(stale, claimed, renewed, wake_in, held)

    @staticmethod
    def _finish(
        connection: sqlite3.Connection, finishes: Sequence[Finish], stamp: str
    ) -> list[int]:
        stale: list[int] = []
        errors: list[tuple[Any, ...]] = []
        for item in finishes:
            updated = connection.execute(
                FINISH,
                (
                    item.job_id,
                    item.lease_token,
                    item.status.value,
                    stamp if item.finished else None,
                    item.result_json,
                    item.error,
                    optional_timestamp(item.run_at),
                    item.attempt_delta,
                    stamp,
                ),
            ).rowcount
            if not updated:
                stale.append(item.job_id)
            elif item.error is not None:
                errors.append((item.job_id, item.attempt, item.error, item.traceback, stamp))
        if errors:
            connection.executemany(INSERT_ERROR, errors)
        return stale


_WHERE: dict[QueueFilter, str] = {
    "all": "",
    "in": "AND queue IN ({})",
    "not in": "AND queue NOT IN ({})",
}


class _Claim:
    """One claim's statements (queues.ClaimSteps): every one hands out the same fencing token
    and lease."""

    def __init__(
        self, connection: sqlite3.Connection, worker_id: str, stamp: str, expires: str
    ) -> None:
        self.connection = connection
        self.token = uuid.uuid4().hex
        self.head: list[Any] = [stamp, worker_id, self.token, expires]

    def controls(self) -> list[QueueControls]:
        return read_controls(self.connection)

    def running(self, queues: Sequence[str]) -> dict[str, int]:
        return running_counts(self.connection, queues)

    def set_tat(self, queue: str, tat: float) -> None:
        set_tat(self.connection, queue, tat)

    def take(self, limit: int, where: QueueFilter, queues: Sequence[str]) -> list[ClaimedJob]:
        marks = ", ".join(f"?{6 + i}" for i in range(len(queues)))
        sql = CLAIM.format(queues=_WHERE[where].format(marks))
        rows = self.connection.execute(sql, [*self.head, limit, *queues]).fetchall()
        token = self.token
        return [
            ClaimedJob(
                id=job_id,
                queue=queue,
                type=job_type,
                payload=json.loads(payload),
                attempt=attempts,
                max_attempts=max_attempts,
                timeout=timeout,
                lease_token=token,
            )
            for job_id, queue, job_type, payload, attempts, max_attempts, timeout in rows
        ]


@contextmanager
def _write_transaction(
    engine: Engine,
    connection: sqlite3.Connection,
    busy_timeout: float,
    toggle: bool,
    hurry_at: float | None = None,
) -> Iterator[None]:
    with translate_errors(engine), write_transaction(connection, busy_timeout, toggle, hurry_at):
        yield


__all__ = ["TIMESTAMP_FORMAT", "SqliteHotPath", "timestamp"]
