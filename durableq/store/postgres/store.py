"""The PostgreSQL store: the hot operations in SQLAlchemy Core, the rest shared (core/store.py).

Claims skip locked rows (FOR UPDATE SKIP LOCKED), so daemons never wait on each other's picks;
the rows of controlled queues are locked before counting (postgres/queues.py). Every transaction
that makes work for idle workers sends a NOTIFY that their watchers LISTEN for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    update,
)

from durableq.core import payloads
from durableq.core.jobs import JobStatus, NewJob
from durableq.core.outcomes import FINISH_ACTIONS, Finish
from durableq.core.uniqueness import Enqueued, enqueue_with_keys
from durableq.store.changes import ChangeWatcher
from durableq.store.core.base import PENDING, J, W, status_guard
from durableq.store.core.store import CoreStore
from durableq.store.core.upkeep import renew_rows
from durableq.store.postgres import queues as queue_controls
from durableq.store.postgres.changes import CHANNEL, PostgresNotifyWatcher
from durableq.store.postgres.claims import CoreClaims
from durableq.store.postgres.keys import PostgresKeySteps
from durableq.store.records import ErrorEntry, Turn
from durableq.store.schema import UTCDateTime, jobs_table, workers_table


class PostgresStore(CoreStore):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._claims = CoreClaims()
        self._finish = self._finish_statement()
        self._insert_job = insert(jobs_table)

    def change_watcher(self) -> ChangeWatcher:
        return PostgresNotifyWatcher(self.engine)

    def _notify(self, connection: Connection) -> None:
        connection.exec_driver_sql(f"NOTIFY {CHANNEL}")

    # -- producers ------------------------------------------------------------------------

    def enqueue_many(self, jobs: Sequence[NewJob], now: datetime) -> Enqueued:
        if not jobs:
            return Enqueued([])
        with self._write() as connection:
            enqueued = self._insert_within(connection, jobs, now)
            self._notify(connection)
            return enqueued

    def _insert_within(
        self, connection: Connection, jobs: Sequence[NewJob], now: datetime
    ) -> Enqueued:
        if any(job.keyed for job in jobs):
            steps = PostgresKeySteps(connection, now, self._new_row, queue_controls.admit)
            return enqueue_with_keys(steps, jobs)
        queue_controls.admit(connection, jobs, now)
        rows = [self._new_row(job, now) for job in jobs]
        statement = self._insert_job.returning(J.id, sort_by_parameter_order=True)
        return Enqueued([int(row[0]) for row in connection.execute(statement, rows)])

    @staticmethod
    def _new_row(job: NewJob, now: datetime) -> dict[str, Any]:
        return {
            "queue": job.queue,
            "type": job.type,
            "payload": payloads.encode_payload(job.payload),
            "status": PENDING,
            "priority": job.priority,
            "attempts": 0,
            "max_attempts": job.max_attempts,
            "timeout": job.timeout,
            "run_at": job.run_at or now,
            "created_at": now,
            "updated_at": now,
            "cancel_requested": False,
        }

    # -- workers --------------------------------------------------------------------------

    def _turn(
        self,
        finishes: Sequence[Finish],
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime | Callable[[], datetime],
        lease: float,
        renew: bool,
        hurry_at: float | None,
        caps: Mapping[str, int],
    ) -> Turn:
        renewed: dict[int, str] = {}
        with self._write(hurry_at) as connection:
            now = now() if callable(now) else now
            stale = self._finish_rows(connection, finishes, now)
            if renew:
                kept = renew_rows(connection, worker_id, now, lease)
                renewed = {job_id: token for job_id, (token, _) in kept.items()}
                connection.execute(
                    update(workers_table).where(W.id == worker_id).values(heartbeat_at=now)
                )
            claimed, wake_in, held = self._claims.claim(
                connection, worker_id, queues, caps, limit, now, lease
            )
        return Turn(stale, claimed, renewed, wake_in, held)

    def _finish_statement(self) -> Any:
        now = bindparam("now", type_=UTCDateTime())
        new_status = bindparam("status", type_=String())
        # A job whose cancel was requested ends canceled instead of going back to pending.
        ends_canceled = and_(J.cancel_requested, new_status == PENDING)
        status = case((ends_canceled, literal(JobStatus.CANCELED.value)), else_=new_status)
        finished_at = case(
            (ends_canceled, now), else_=bindparam("finished_at", type_=UTCDateTime())
        )
        return (
            update(jobs_table)
            .where(
                J.id == bindparam("job_id"),
                status_guard(*FINISH_ACTIONS),
                J.lease_token == bindparam("token"),
            )
            .values(
                status=status,
                finished_at=finished_at,
                result=bindparam("result", type_=Text()),
                last_error=func.coalesce(bindparam("error", type_=Text()), J.last_error),
                run_at=func.coalesce(bindparam("run_at", type_=UTCDateTime()), J.run_at),
                attempts=J.attempts + bindparam("attempt_delta", type_=Integer()),
                updated_at=now,
                progress=func.coalesce(bindparam("progress", type_=Float()), J.progress),
                progress_message=func.coalesce(
                    bindparam("progress_message", type_=Text()), J.progress_message
                ),
                meta=func.coalesce(bindparam("meta", type_=Text()), J.meta),
                started_at=func.coalesce(
                    bindparam("started_at", type_=UTCDateTime()), J.started_at
                ),
                worker_id=None,
                lease_token=None,
                lease_expires_at=None,
            )
        )

    def _finish_rows(
        self, connection: Connection, finishes: Sequence[Finish], now: datetime
    ) -> list[int]:
        stale: list[int] = []
        applied: list[Finish] = []
        for item in finishes:
            if connection.execute(self._finish, self._finish_row(item, now)).rowcount:
                applied.append(item)
            else:
                stale.append(item.job_id)
        self._record_errors(connection, applied, now)
        return stale

    @staticmethod
    def _finish_row(item: Finish, now: datetime) -> dict[str, Any]:
        return {
            "job_id": item.job_id,
            "token": item.lease_token,
            "status": item.status.value,
            "finished_at": now if item.finished else None,
            "result": item.result_json,
            "error": item.error,
            "run_at": item.run_at,
            "attempt_delta": item.attempt_delta,
            "now": now,
            "progress": item.report.progress,
            "progress_message": item.report.progress_message,
            "meta": item.report.meta_json,
            "started_at": item.started_at,
        }

    def _record_errors(
        self, connection: Connection, items: Sequence[Finish], now: datetime
    ) -> None:
        rows = [entry.row(now) for item in items if (entry := ErrorEntry.of(item)) is not None]
        if rows:
            connection.execute(self._insert_error, rows)
