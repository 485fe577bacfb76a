"""The only module that writes SQL: one method per operation on jobs and workers.

Every state change is guarded by the statuses the transition table allows, and every write on
behalf of a running execution also by its fencing token (`lease_token`): zero rows updated means
the job is no longer that execution's, and the caller drops its stale outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)

from durableq.core import payloads
from durableq.core.errors import JobNotFound
from durableq.core.jobs import (
    TRANSITIONS,
    Action,
    ClaimedJob,
    Job,
    JobStatus,
    NewJob,
    cancel_action_for,
    check_transition,
)
from durableq.core.outcomes import Finish
from durableq.store.changes import ChangeWatcher, watcher_for
from durableq.store.core import queues as queue_ops
from durableq.store.core.base import PENDING, RUNNING, J, W, status_guard
from durableq.store.core.claims import CoreClaims
from durableq.store.core.leadership import LeadershipOps
from durableq.store.core.reads import Reads
from durableq.store.core.upkeep import Upkeep, renew_rows
from durableq.store.records import (
    HeartbeatReport,
    JobFilter,
    RescueReport,
    Stats,
    Turn,
    WorkerInfo,
)
from durableq.store.schema import (
    UTCDateTime,
    jobs_table,
    workers_table,
)
from durableq.store.sqlite.hotpath import SqliteHotPath

__all__ = [
    "HeartbeatReport",
    "JobFilter",
    "Repository",
    "RescueReport",
    "Stats",
    "Turn",
    "WorkerInfo",
]


class Repository(Reads, Upkeep, queue_ops.QueueOps, LeadershipOps):
    """Jobs' whole life in SQL: produced and claimed here, read in Reads, kept in Upkeep."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._claims = CoreClaims()
        self._finish = self._finish_statement()
        self._insert_job = insert(jobs_table)
        self._hot = SqliteHotPath(engine) if self.dialect == "sqlite" else None

    def close(self) -> None:
        if self._hot is not None:
            self._hot.close()

    def change_watcher(self) -> ChangeWatcher:
        return watcher_for(self.engine)

    # -- producers ----------------------------------------------------------------------

    def enqueue(self, job: NewJob, now: datetime) -> int:
        if self._hot is not None:
            return self._hot.enqueue(job, now)
        with self._write() as connection:
            queue_ops.admit(connection, [job], now)
            result = connection.execute(self._insert_job.returning(J.id), self._new_row(job, now))
            job_id = int(result.scalar_one())
            self._notify(connection)
            return job_id

    def enqueue_many(self, jobs: Sequence[NewJob], now: datetime) -> list[int]:
        """All or nothing, in one transaction; ids in the order given."""
        if not jobs:
            return []
        if self._hot is not None:
            return self._hot.enqueue_many(jobs, now)
        rows = [self._new_row(job, now) for job in jobs]
        statement = self._insert_job.returning(J.id, sort_by_parameter_order=True)
        with self._write() as connection:
            queue_ops.admit(connection, jobs, now)
            ids = [int(row[0]) for row in connection.execute(statement, rows)]
            self._notify(connection)
            return ids

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

    def _notify(self, connection: Connection) -> None:
        if self.dialect == "postgresql":
            connection.exec_driver_sql("NOTIFY durableq_jobs")

    # -- workers: claim, heartbeat, finish ----------------------------------------------

    def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
        lease: float,
    ) -> list[ClaimedJob]:
        """Atomically take up to `limit` due jobs, best priority first."""
        return self.finish_and_claim((), worker_id, queues, limit, now, lease).claimed

    def finish(self, finishes: Sequence[Finish], now: datetime) -> list[int]:
        """Write the outcomes of executions; returns the ids whose outcome was stale."""
        if not finishes:
            return []
        return self.finish_and_claim(finishes, "", (), 0, now, 0.0).stale

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
        """A worker's turn in one transaction (one commit): save outcomes, then claim.

        With `renew`, the turn also renews the leases of the worker's running jobs and its
        liveness, as a heartbeat would: free while the worker is busy. Returns the ids whose
        outcome was stale (the job is no longer that execution's), the newly claimed jobs and
        the renewed ones. `now` may be a clock: it is then read once the write lock is held,
        so that the leases it grants are whole however long the lock took.

        The claim honours every queue's controls (paused, concurrency across all daemons,
        rate) and `caps`, what this daemon may still start per queue by its own limits.
        """
        for item in finishes:
            assert item.status in TRANSITION_TARGETS[item.action], item
        if self._hot is not None:
            return self._hot.finish_and_claim(
                finishes,
                worker_id,
                queues,
                limit,
                now,
                lease,
                renew=renew,
                hurry_at=hurry_at,
                caps=caps,
            )
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
                connection, worker_id, queues, caps or {}, limit, now, lease
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
                J.status == literal(RUNNING),
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
        }

    def _record_errors(
        self, connection: Connection, items: Sequence[Finish], now: datetime
    ) -> None:
        rows = [
            {
                "job_id": item.job_id,
                "attempt": item.attempt,
                "error": item.error,
                "traceback": item.traceback,
                "failed_at": now,
            }
            for item in items
            if item.error is not None
        ]
        if rows:
            connection.execute(self._insert_error, rows)

    # -- operators ------------------------------------------------------------------------

    def cancel(self, job_id: int, now: datetime) -> Job:
        """Cancel a pending job at once; ask the worker of a running one to stop."""
        with self._write() as connection:
            status = self._status_of(connection, job_id)
            action = cancel_action_for(status, job_id)
            values: dict[str, Any] = {"updated_at": now}
            if action is Action.CANCEL:
                values.update(status=JobStatus.CANCELED.value, finished_at=now)
            else:
                values.update(cancel_requested=True)
            connection.execute(
                update(jobs_table).where(J.id == job_id, status_guard(action)).values(**values)
            )
            return self._get(connection, job_id)

    def retry(self, job_id: int, now: datetime) -> Job:
        """Give a failed or canceled job another attempt, now."""
        with self._write() as connection:
            check_transition(Action.RETRY, self._status_of(connection, job_id), job_id)
            connection.execute(
                update(jobs_table)
                .where(J.id == job_id, status_guard(Action.RETRY))
                .values(
                    status=PENDING,
                    run_at=now,
                    updated_at=now,
                    finished_at=None,
                    cancel_requested=False,
                    max_attempts=case(
                        (J.max_attempts > J.attempts, J.max_attempts), else_=J.attempts + 1
                    ),
                )
            )
            self._notify(connection)
            return self._get(connection, job_id)

    def _status_of(self, connection: Connection, job_id: int) -> JobStatus:
        # Locked until the transaction ends, so the status cannot change between this read and
        # the guarded write that follows (PostgreSQL; SQLite's writers are serialised anyway).
        status = connection.execute(
            select(J.status).where(J.id == job_id).with_for_update()
        ).scalar()
        if status is None:
            raise JobNotFound(job_id)
        return JobStatus(status)


TRANSITION_TARGETS = {action: transition.targets for action, transition in TRANSITIONS.items()}
