"""The SQLite store: the hot operations in plain DBAPI, the rest shared in Core (core/store.py).

SQLAlchemy Core costs about 2-3x over the sqlite3 module per statement here (measured: a claim
of 16 jobs plus their completion took 60 + 77 us/job through Core, 25 + 35 through sqlite3), and
these few statements (sqlite/statements.py, by name) are all a busy producer or worker runs.
The store conformance suite (tests/integration, `any_client`) runs every store.
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

from sqlalchemy import Connection, Engine

from durableq.core.jobs import ClaimedJob, NewJob
from durableq.core.outcomes import Finish
from durableq.core.queues import QueueControls, QueueFilter, claim_within_controls
from durableq.core.uniqueness import Enqueued
from durableq.store.changes import ChangeWatcher
from durableq.store.core.store import CoreStore
from durableq.store.engine import busy_timeout_of, translate_errors, turns_of
from durableq.store.records import ErrorEntry, Turn
from durableq.store.sqlite.changes import SqliteChangeWatcher
from durableq.store.sqlite.inserts import insert_jobs
from durableq.store.sqlite.queues import read_controls, running_counts, set_tat
from durableq.store.sqlite.reads import SqliteReads, read_transaction
from durableq.store.sqlite.statements import (
    BEAT,
    CLAIM,
    FINISH,
    INSERT_ERROR,
    RENEW,
    write_transaction,
)
from durableq.store.sqlite.turns import relax_sync
from durableq.store.timestamps import decode as decode_timestamp
from durableq.store.timestamps import encode as timestamp
from durableq.store.timestamps import encode_optional as optional_timestamp


class SqliteStore(SqliteReads, CoreStore):
    """Reads from sqlite/reads.py (before CoreStore's Core reads in the MRO), the hot writes
    below, the rest from CoreStore."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.busy_timeout = busy_timeout_of(engine)
        self._worker_connection: sqlite3.Connection | None = None
        self._worker_lock = threading.Lock()
        self._spares: list[sqlite3.Connection] = []
        self._spares_lock = threading.Lock()
        self._closed = False
        # Producers' and the worker's own connections write in turns and, where relax_sync
        # could set them to NORMAL (the same for every connection to the file), sync after it.
        self._turns = turns_of(engine)
        self._flush = False

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        pooled = self.engine.raw_connection()
        connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        try:
            with translate_errors(self.engine), read_transaction(connection):
                yield connection
        finally:
            pooled.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A producer's write, on a connection of the producers' own spares (one per thread
        writing at once), taken out of SQLAlchemy's pool for good: that saves the pool's
        check-out and reset and two PRAGMA toggles of the busy handler, which these keep off
        (begin_immediate does the waiting), on every enqueue (profiled: a third of what an
        enqueue cost beyond its commit)."""
        connection = self._spare_connection()
        try:
            with self._write_transaction(connection):
                yield connection
        finally:
            self._give_back(connection)

    def _spare_connection(self) -> sqlite3.Connection:
        with self._spares_lock:
            if self._spares:
                return self._spares.pop()
        pooled = self.engine.raw_connection()
        connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        pooled.detach()
        return self._own(connection)

    def _own(self, connection: sqlite3.Connection) -> sqlite3.Connection:
        """A connection taken out of the pool for good: SQLite's busy handler off (begin_immediate
        does the waiting) and, where it can, the commit's fsync after the write turn."""
        connection.execute("PRAGMA busy_timeout = 0")
        if self._turns is not None:
            self._flush = relax_sync(connection)
        return connection

    def _give_back(self, connection: sqlite3.Connection) -> None:
        with self._spares_lock:
            if not self._closed and not connection.in_transaction:
                self._spares.append(connection)
                return
        connection.close()  # a failed rollback, or a closed store: never reused

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
                self._worker_connection = self._own(connection)
            worker_connection = self._worker_connection
            with self._write_transaction(worker_connection, hurry_at):
                yield worker_connection

    @contextmanager
    def _write_transaction(
        self, connection: sqlite3.Connection, hurry_at: float | None = None
    ) -> Iterator[None]:
        with (
            translate_errors(self.engine),
            write_transaction(
                connection, self.busy_timeout, False, hurry_at, self._turns, self._flush
            ),
        ):
            yield

    def close(self) -> None:
        with self._spares_lock:
            self._closed = True
            spares, self._spares = self._spares, []
        for spare in spares:
            spare.close()
        with self._worker_lock:
            if self._worker_connection is not None:
                self._worker_connection.close()
                self._worker_connection = None

    def change_watcher(self) -> ChangeWatcher:
        assert self.engine.url.database is not None
        return SqliteChangeWatcher(self.engine.url.database)

    # -- producers ----------------------------------------------------------------------

    def enqueue_many(self, jobs: Sequence[NewJob], now: datetime) -> Enqueued:
        if not jobs:
            return Enqueued([])
        with self._transaction() as connection:
            return insert_jobs(connection, jobs, now)

    def _insert_within(
        self, connection: Connection, jobs: Sequence[NewJob], now: datetime
    ) -> Enqueued:
        # The same transaction, on the sqlite3 connection underneath SQLAlchemy's.
        driver: sqlite3.Connection = connection.connection.driver_connection  # type: ignore[assignment]
        return insert_jobs(driver, jobs, now)

    # -- workers ------------------------------------------------------------------------

    def _turn(
        self,
        finishes: Sequence[Finish],
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime | Callable[[], datetime],
        lease: float,
        renew: bool | Callable[[], bool],
        hurry_at: float | None,
        caps: Mapping[str, int],
    ) -> Turn:
        """Write outcomes, renew leases if asked, then claim up to `limit` jobs: one commit."""
        renewed: dict[int, str] = {}
        with self._worker_transaction(hurry_at) as connection:
            now = now() if callable(now) else now  # a clock: read with the write lock held
            stamp = timestamp(now)
            stale = self._finish_rows(connection, finishes, stamp) if finishes else []
            if renew if isinstance(renew, bool) else renew():  # a callable: asked now
                expires = timestamp(now + timedelta(seconds=lease))
                rows = connection.execute(RENEW, (expires, worker_id)).fetchall()
                renewed = {job_id: token for job_id, token in rows}
                connection.execute(BEAT, (stamp, worker_id))
            expires = timestamp(now + timedelta(seconds=lease))
            claimed, wake_in, held = claim_within_controls(
                _Claim(connection, worker_id, stamp, expires),
                queues,
                caps,
                limit,
                now.timestamp(),
            )
        return Turn(stale, claimed, renewed, wake_in, held)

    @staticmethod
    def _finish_rows(
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
                    item.report.progress,
                    item.report.progress_message,
                    item.report.meta_json,
                    optional_timestamp(item.started_at),
                ),
            ).rowcount
            if not updated:
                stale.append(item.job_id)
            elif (entry := ErrorEntry.of(item)) is not None:
                errors.append(entry.values(stamp))
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
                run_at=decode_timestamp(run_at),
                meta=None if meta is None else json.loads(meta),
                priority=priority,
            )
            for (
                job_id,
                queue,
                job_type,
                payload,
                attempts,
                max_attempts,
                timeout,
                run_at,
                meta,
                priority,
            ) in rows
        ]


__all__ = ["SqliteStore"]
