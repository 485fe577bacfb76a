"""The PostgreSQL store: the hot operations in SQLAlchemy Core, the rest shared (core/store.py).

Claims skip locked rows (FOR UPDATE SKIP LOCKED), so daemons never wait on each other's picks;
the rows of controlled queues are locked before counting (postgres/queues.py). Every transaction
that makes work for idle workers sends a NOTIFY that their watchers LISTEN for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    Connection,
    Engine,
    insert,
    update,
)

from durableq.core.jobs import NewJob
from durableq.core.outcomes import Finish
from durableq.core.uniqueness import Enqueued, enqueue_with_keys
from durableq.store.changes import ChangeWatcher
from durableq.store.core.base import J, W
from durableq.store.core.store import CoreStore
from durableq.store.core.upkeep import renew_rows
from durableq.store.postgres import queues as queue_controls
from durableq.store.postgres.changes import CHANNEL, PostgresNotifyWatcher
from durableq.store.postgres.claims import CoreClaims
from durableq.store.postgres.enqueue import OneStatementEnqueue, new_row
from durableq.store.postgres.finish import finish_all, finish_statement
from durableq.store.postgres.keys import PostgresKeySteps
from durableq.store.records import ErrorEntry, Turn
from durableq.store.schema import jobs_table, workers_table


class PostgresStore(CoreStore):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._claims = CoreClaims()
        self._finish = finish_statement()
        self._insert_job = insert(jobs_table)
        self._enqueue_one = OneStatementEnqueue(engine)

    def change_watcher(self) -> ChangeWatcher:
        return PostgresNotifyWatcher(self.engine)

    def _notify(self, connection: Connection) -> None:
        connection.exec_driver_sql(f"NOTIFY {CHANNEL}")

    # -- producers ------------------------------------------------------------------------

    def enqueue_many(self, jobs: Sequence[NewJob], now: datetime) -> Enqueued:
        if not jobs:
            return Enqueued([])
        if len(jobs) == 1 and not jobs[0].keyed:
            job_id = self._enqueue_one(jobs[0], now)
            if job_id is not None:
                return Enqueued([job_id])
        with self._write() as connection:
            enqueued = self._insert_within(connection, jobs, now)
            self._notify(connection)
            return enqueued

    def _insert_within(
        self, connection: Connection, jobs: Sequence[NewJob], now: datetime
    ) -> Enqueued:
        if any(job.keyed for job in jobs):
            steps = PostgresKeySteps(connection, now, new_row, queue_controls.admit)
            return enqueue_with_keys(steps, jobs)
        queue_controls.admit(connection, jobs, now)
        rows = [new_row(job, now) for job in jobs]
        statement = self._insert_job.returning(J.id, sort_by_parameter_order=True)
        return Enqueued([int(row[0]) for row in connection.execute(statement, rows)])

    # -- workers --------------------------------------------------------------------------

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
        renewed: dict[int, str] = {}
        with self._write(hurry_at) as connection:
            now = now() if callable(now) else now
            stale = self._finish_rows(connection, finishes, now)
            if renew if isinstance(renew, bool) else renew():  # a callable: asked now
                kept = renew_rows(connection, worker_id, now, lease)
                renewed = {job_id: token for job_id, (token, _) in kept.items()}
                connection.execute(
                    update(workers_table).where(W.id == worker_id).values(heartbeat_at=now)
                )
            claimed, wake_in, held = self._claims.claim(
                connection, worker_id, queues, caps, limit, now, lease
            )
        return Turn(stale, claimed, renewed, wake_in, held)

    def _finish_rows(
        self, connection: Connection, finishes: Sequence[Finish], now: datetime
    ) -> list[int]:
        if not finishes:
            return []
        done = finish_all(connection, self._finish, finishes, now)
        applied = [item for item in finishes if (item.job_id, item.lease_token) in done]
        self._record_errors(connection, applied, now)
        return [item.job_id for item in finishes if (item.job_id, item.lease_token) not in done]

    def _record_errors(
        self, connection: Connection, items: Sequence[Finish], now: datetime
    ) -> None:
        rows = [entry.row(now) for item in items if (entry := ErrorEntry.of(item)) is not None]
        if rows:
            connection.execute(self._insert_error, rows)
