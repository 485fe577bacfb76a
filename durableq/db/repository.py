"""The only module that writes SQL: one method per operation on jobs and workers.

Every state change is guarded by the statuses the transition table allows, and every write on
behalf of a running execution also by its fencing token (`lease_token`): zero rows updated means
the job is no longer that execution's, and the caller drops its stale outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from durableq import payloads
from durableq.db.changes import ChangeWatcher, watcher_for
from durableq.db.engine import READ_ONLY, translate_errors
from durableq.db.fastpath import SqliteHotPath
from durableq.db.schema import (
    PENDING_ONLY,
    UTCDateTime,
    job_errors_table,
    jobs_table,
    workers_table,
)
from durableq.errors import JobNotFound
from durableq.jobs import (
    TRANSITIONS,
    Action,
    ClaimedJob,
    Job,
    JobError,
    JobStatus,
    NewJob,
    cancel_action_for,
    check_transition,
    sources_of,
)
from durableq.outcomes import Finish

J = jobs_table.c
E = job_errors_table.c
W = workers_table.c

RUNNING = JobStatus.RUNNING.value
PENDING = JobStatus.PENDING.value

RESCUE_BATCH = 500
PURGE_BATCH = 5000


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    queues: tuple[str, ...]  # empty: all queues
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class HeartbeatReport:
    """What a worker learns when it renews its leases."""

    lost: frozenset[int] = frozenset()  # rescued or otherwise taken away: stop caring
    cancel_requested: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RescueReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    canceled: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.requeued) + len(self.failed) + len(self.canceled)


@dataclass(frozen=True)
class JobFilter:
    statuses: tuple[JobStatus, ...] = ()
    queues: tuple[str, ...] = ()
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stats:
    counts: dict[str, dict[str, int]]  # queue -> status -> n
    oldest_due_at: datetime | None
    completed_last_minute: int
    failed_last_minute: int


def _guard(action: Action) -> Any:
    """`status IN (...)` exactly as the transition table allows `action`."""
    return J.status.in_(sorted(status.value for status in sources_of(action)))


class Repository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._claim_all = self._claim_statement(filter_queues=False)
        self._claim_queues = self._claim_statement(filter_queues=True)
        self._finish = self._finish_statement()
        self._insert_error = insert(job_errors_table)
        self._insert_job = insert(jobs_table)
        self._hot = SqliteHotPath(engine) if self.dialect == "sqlite" else None

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with translate_errors(self.engine), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_errors(self.engine), self.engine.connect() as connection:
            connection = connection.execution_options(**READ_ONLY)
            with connection.begin():
                yield connection

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

    def _claim_statement(self, filter_queues: bool) -> Any:
        now = bindparam("now", type_=UTCDateTime())
        due = select(J.id).where(PENDING_ONLY, J.run_at <= now)
        if filter_queues:
            due = due.where(J.queue.in_(bindparam("queues", expanding=True)))
        due = (
            due.order_by(J.priority.desc(), J.run_at, J.id)
            .limit(bindparam("limit", type_=Integer()))
            .with_for_update(skip_locked=True)
        )
        return (
            # The subquery's PENDING_ONLY is the CLAIM guard; repeating it out here would lead
            # SQLite to scan every pending row instead of looking the ids up.
            update(jobs_table)
            .where(J.id.in_(due.scalar_subquery()))
            .values(
                status=RUNNING,
                attempts=J.attempts + 1,
                started_at=now,
                updated_at=now,
                worker_id=bindparam("worker_id"),
                lease_token=bindparam("token"),
                lease_expires_at=bindparam("expires", type_=UTCDateTime()),
            )
            .returning(J.id, J.queue, J.type, J.payload, J.attempts, J.max_attempts, J.timeout)
        )

    def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
        lease: float,
    ) -> list[ClaimedJob]:
        """Atomically take up to `limit` due jobs, best priority first."""
        return self.finish_and_claim((), worker_id, queues, limit, now, lease)[1]

    def finish(self, finishes: Sequence[Finish], now: datetime) -> list[int]:
        """Write the outcomes of executions; returns the ids whose outcome was stale."""
        if not finishes:
            return []
        return self.finish_and_claim(finishes, "", (), 0, now, 0.0)[0]

    def finish_and_claim(
        self,
        finishes: Sequence[Finish],
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
        lease: float,
    ) -> tuple[list[int], list[ClaimedJob]]:
        """A worker's turn in one transaction (one commit): save outcomes, then claim.

        Returns the ids whose outcome was stale (the job is no longer that execution's) and
        the newly claimed jobs.
        """
        for item in finishes:
            assert item.status in TRANSITION_TARGETS[item.action], item
        if self._hot is not None:
            return self._hot.finish_and_claim(finishes, worker_id, queues, limit, now, lease)
        with self._write() as connection:
            stale = self._finish_rows(connection, finishes, now)
            claimed = self._claim_rows(connection, worker_id, queues, limit, now, lease)
        return stale, claimed

    def _claim_rows(
        self,
        connection: Connection,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
        lease: float,
    ) -> list[ClaimedJob]:
        if limit <= 0:
            return []
        token = uuid.uuid4().hex
        params: dict[str, Any] = {
            "now": now,
            "limit": limit,
            "worker_id": worker_id,
            "token": token,
            "expires": now + timedelta(seconds=lease),
        }
        statement = self._claim_queues if queues else self._claim_all
        if queues:
            params["queues"] = list(queues)
        rows = connection.execute(statement, params).all()
        return [
            ClaimedJob(
                id=row.id,
                queue=row.queue,
                type=row.type,
                payload=payloads.decode(row.payload),
                attempt=row.attempts,
                max_attempts=row.max_attempts,
                timeout=row.timeout,
                lease_token=token,
            )
            for row in rows
        ]

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

    def heartbeat(
        self, worker_id: str, tokens: Mapping[int, str], now: datetime, lease: float
    ) -> HeartbeatReport:
        """Renew the leases of this worker's running jobs and the worker's own liveness."""
        expires = now + timedelta(seconds=lease)
        with self._write() as connection:
            connection.execute(
                update(jobs_table)
                .where(J.worker_id == worker_id, J.status == literal(RUNNING))
                .values(lease_expires_at=expires)
            )
            connection.execute(
                update(workers_table).where(W.id == worker_id).values(heartbeat_at=now)
            )
            return self._running_report(connection, worker_id, tokens)

    def poll_cancel_requests(self, worker_id: str, tokens: Mapping[int, str]) -> HeartbeatReport:
        """Which of this worker's jobs were canceled or taken away: a cheap read."""
        with self._read() as connection:
            return self._running_report(connection, worker_id, tokens)

    @staticmethod
    def _running_report(
        connection: Connection, worker_id: str, tokens: Mapping[int, str]
    ) -> HeartbeatReport:
        rows = connection.execute(
            select(J.id, J.lease_token, J.cancel_requested).where(
                J.worker_id == worker_id, J.status == literal(RUNNING)
            )
        ).all()
        held = {row.id: row for row in rows}
        lost = {job_id for job_id, token in tokens.items() if _token_of(held, job_id) != token}
        canceled = {row.id for row in rows if row.cancel_requested and row.id in tokens}
        return HeartbeatReport(lost=frozenset(lost), cancel_requested=frozenset(canceled - lost))

    # -- maintenance ----------------------------------------------------------------------

    def rescue_expired(self, now: datetime) -> RescueReport:
        """Jobs whose worker stopped renewing its lease: the attempt counts, as a failure."""
        with self._write() as connection:
            rows = connection.execute(
                select(J.id, J.attempts, J.max_attempts, J.cancel_requested, J.worker_id)
                .where(_guard(Action.RESCUE), J.lease_expires_at < now)
                .order_by(J.lease_expires_at)
                .limit(RESCUE_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return RescueReport()
            report = RescueReport()
            targets = {
                JobStatus.CANCELED: report.canceled,
                JobStatus.FAILED: report.failed,
                JobStatus.PENDING: report.requeued,
            }
            for row in rows:
                status = _rescue_target(row.cancel_requested, row.attempts, row.max_attempts)
                targets[status].append(row.id)
            for status, ids in targets.items():
                self._apply_rescue(connection, status, ids, now)
            died = [
                {
                    "job_id": row.id,
                    "attempt": row.attempts,
                    "error": f"worker {row.worker_id} died: its lease expired",
                    "traceback": None,
                    "failed_at": now,
                }
                for row in rows
                if not row.cancel_requested
            ]
            if died:
                connection.execute(self._insert_error, died)
            return report

    @staticmethod
    def _apply_rescue(
        connection: Connection, status: JobStatus, ids: list[int], now: datetime
    ) -> None:
        if not ids:
            return
        values: dict[str, Any] = {
            "status": status.value,
            "updated_at": now,
            "worker_id": None,
            "lease_token": None,
            "lease_expires_at": None,
        }
        if status is JobStatus.PENDING:
            values["run_at"] = now
        else:
            values["finished_at"] = now
        if status is not JobStatus.CANCELED:
            values["last_error"] = "worker died: its lease expired"
        connection.execute(
            update(jobs_table)
            .where(J.id.in_(ids), _guard(Action.RESCUE), J.lease_expires_at < now)
            .values(**values)
        )

    def purge(self, cutoff: datetime, statuses: Sequence[JobStatus]) -> int:
        """Delete finished jobs that finished before `cutoff`, in short transactions."""
        for status in statuses:
            check_transition(Action.PURGE, status)
        wanted = sorted(status.value for status in statuses)
        total = 0
        while True:
            with self._write() as connection:
                batch = (
                    select(J.id)
                    .where(J.status.in_(wanted), J.finished_at < cutoff)
                    .limit(PURGE_BATCH)
                    .scalar_subquery()
                )
                deleted = connection.execute(delete(jobs_table).where(J.id.in_(batch))).rowcount
            total += deleted
            if deleted < PURGE_BATCH:
                return total

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
                update(jobs_table).where(J.id == job_id, _guard(action)).values(**values)
            )
            return self._get(connection, job_id)

    def retry(self, job_id: int, now: datetime) -> Job:
        """Give a failed or canceled job another attempt, now."""
        with self._write() as connection:
            check_transition(Action.RETRY, self._status_of(connection, job_id), job_id)
            connection.execute(
                update(jobs_table)
                .where(J.id == job_id, _guard(Action.RETRY))
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

    # -- reads ----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self._read() as connection:
            return self._get(connection, job_id)

    def get_many(self, job_ids: Sequence[int]) -> list[Job]:
        with self._read() as connection:
            rows = connection.execute(select(jobs_table).where(J.id.in_(list(job_ids)))).all()
        return [_job_from_row(row) for row in rows]

    def errors(self, job_id: int) -> list[JobError]:
        with self._read() as connection:
            rows = connection.execute(
                select(job_errors_table).where(E.job_id == job_id).order_by(E.id)
            ).all()
        return [
            JobError(
                job_id=row.job_id,
                attempt=row.attempt,
                error=row.error,
                traceback=row.traceback,
                failed_at=row.failed_at,
            )
            for row in rows
        ]

    def list_jobs(self, where: JobFilter, limit: int, offset: int = 0) -> list[Job]:
        """Newest first."""
        query: Select[Any] = select(jobs_table)
        if where.statuses:
            query = query.where(J.status.in_([status.value for status in where.statuses]))
        if where.queues:
            query = query.where(J.queue.in_(where.queues))
        if where.types:
            query = query.where(J.type.in_(where.types))
        query = query.order_by(J.id.desc()).limit(limit).offset(offset)
        with self._read() as connection:
            return [_job_from_row(row) for row in connection.execute(query)]

    def stats(self, now: datetime) -> Stats:
        minute_ago = now - timedelta(minutes=1)
        with self._read() as connection:
            counts: dict[str, dict[str, int]] = {}
            grouped = select(J.queue, J.status, func.count()).group_by(J.queue, J.status)
            for queue, status, n in connection.execute(grouped):
                counts.setdefault(queue, {})[status] = n
            oldest = connection.execute(
                select(func.min(J.run_at)).where(PENDING_ONLY, J.run_at <= now)
            ).scalar()
            recent: dict[str, int] = dict(
                connection.execute(
                    select(J.status, func.count())
                    .where(
                        J.status.in_([JobStatus.COMPLETED.value, JobStatus.FAILED.value]),
                        J.finished_at >= minute_ago,
                    )
                    .group_by(J.status)
                ).all()
            )
        oldest_due = UTCDateTime().process_result_value(oldest, self.engine.dialect)
        return Stats(
            counts=counts,
            oldest_due_at=oldest_due,
            completed_last_minute=int(recent.get(JobStatus.COMPLETED.value, 0)),
            failed_last_minute=int(recent.get(JobStatus.FAILED.value, 0)),
        )

    def _status_of(self, connection: Connection, job_id: int) -> JobStatus:
        # Locked until the transaction ends, so the status cannot change between this read and
        # the guarded write that follows (PostgreSQL; SQLite's writers are serialised anyway).
        status = connection.execute(
            select(J.status).where(J.id == job_id).with_for_update()
        ).scalar()
        if status is None:
            raise JobNotFound(job_id)
        return JobStatus(status)

    @staticmethod
    def _get(connection: Connection, job_id: int) -> Job:
        row = connection.execute(select(jobs_table).where(J.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        return _job_from_row(row)

    # -- the workers table ----------------------------------------------------------------

    def register_worker(self, worker: WorkerInfo) -> None:
        with self._write() as connection:
            connection.execute(
                insert(workers_table).values(
                    id=worker.id,
                    host=worker.host,
                    pid=worker.pid,
                    queues=",".join(worker.queues) or "*",
                    concurrency=worker.concurrency,
                    started_at=worker.started_at,
                    heartbeat_at=worker.heartbeat_at,
                )
            )

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as connection:
            connection.execute(delete(workers_table).where(W.id == worker_id))

    def prune_workers(self, cutoff: datetime) -> int:
        """Forget workers that have not beaten since `cutoff` (they died)."""
        with self._write() as connection:
            return int(
                connection.execute(delete(workers_table).where(W.heartbeat_at < cutoff)).rowcount
            )

    def list_workers(self, alive_since: datetime) -> list[WorkerInfo]:
        with self._read() as connection:
            rows = connection.execute(
                select(workers_table).where(W.heartbeat_at >= alive_since).order_by(W.started_at)
            ).all()
        return [
            WorkerInfo(
                id=row.id,
                host=row.host,
                pid=row.pid,
                queues=() if row.queues == "*" else tuple(row.queues.split(",")),
                concurrency=row.concurrency,
                started_at=row.started_at,
                heartbeat_at=row.heartbeat_at,
            )
            for row in rows
        ]


TRANSITION_TARGETS = {action: transition.targets for action, transition in TRANSITIONS.items()}


def _rescue_target(cancel_requested: bool, attempts: int, max_attempts: int) -> JobStatus:
    if cancel_requested:
        return JobStatus.CANCELED
    if attempts >= max_attempts:
        return JobStatus.FAILED
    return JobStatus.PENDING


def _token_of(held: Mapping[int, Any], job_id: int) -> str | None:
    row = held.get(job_id)
    return None if row is None else row.lease_token


def _job_from_row(row: Any) -> Job:
    return Job(
        id=row.id,
        queue=row.queue,
        type=row.type,
        payload=payloads.decode(row.payload),
        status=JobStatus(row.status),
        priority=row.priority,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        timeout=row.timeout,
        run_at=row.run_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        last_error=row.last_error,
        result=payloads.decode(row.result),
        cancel_requested=bool(row.cancel_requested),
        worker_id=row.worker_id,
        lease_expires_at=row.lease_expires_at,
    )
