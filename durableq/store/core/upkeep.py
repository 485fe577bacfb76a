"""Keeping jobs alive and tidy: heartbeats, rescue of dead workers' jobs, purge, the workers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Text,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from durableq.core.jobs import (
    Action,
    JobStatus,
    check_transition,
)
from durableq.core.outcomes import Progress
from durableq.store.core.base import (
    RUNNING,
    CoreBase,
    J,
    W,
    status_guard,
)
from durableq.store.records import ErrorEntry, HeartbeatReport, RescueReport, WorkerInfo
from durableq.store.schema import (
    UTCDateTime,
    jobs_table,
    workers_table,
)

RESCUE_BATCH = 500
PURGE_BATCH = 5000


class Upkeep(CoreBase):
    def heartbeat(
        self, worker_id: str, tokens: Mapping[int, str], now: datetime, lease: float
    ) -> HeartbeatReport:
        """Renew the leases of this worker's running jobs and the worker's own liveness."""
        return self.renew(worker_id, tokens, lambda: now, lease)

    def renew(
        self,
        worker_id: str,
        tokens: Mapping[int, str],
        clock: Callable[[], datetime],
        lease: float,
        hurry_at: float | None = None,
    ) -> HeartbeatReport:
        """`heartbeat`, reading the time only once the write lock is held.

        So a renewal that waited for the lock still grants a whole lease from when it is
        written. `hurry_at`: from then on, wait for the lock ahead of other writers.
        """
        with self._write(hurry_at) as connection:
            now = clock()
            held = renew_rows(connection, worker_id, now, lease)
            connection.execute(
                update(workers_table).where(W.id == worker_id).values(heartbeat_at=now)
            )
        return running_report(held, tokens, now)

    def poll_cancel_requests(self, worker_id: str, tokens: Mapping[int, str]) -> HeartbeatReport:
        """Which of this worker's jobs were canceled or taken away: a cheap read."""
        with self._read() as connection:
            rows = connection.execute(
                select(J.id, J.lease_token, J.cancel_requested).where(
                    J.worker_id == worker_id, J.status == literal(RUNNING)
                )
            ).all()
        held = {row.id: (row.lease_token, bool(row.cancel_requested)) for row in rows}
        return running_report(held, tokens, None)

    def record_progress(self, updates: Sequence[Progress], now: datetime) -> list[int]:
        """Save what running handlers reported; returns the jobs no longer theirs (stale)."""
        stale: list[int] = []
        with self._write() as connection:
            for item in updates:
                report = item.report
                updated = connection.execute(
                    update(jobs_table)
                    .where(
                        J.id == item.job_id,
                        J.status == literal(RUNNING),
                        J.lease_token == item.lease_token,
                    )
                    .values(
                        progress=func.coalesce(literal(report.progress, Float()), J.progress),
                        progress_message=func.coalesce(
                            literal(report.progress_message, Text()), J.progress_message
                        ),
                        meta=func.coalesce(literal(report.meta_json, Text()), J.meta),
                        updated_at=now,
                    )
                ).rowcount
                if not updated:
                    stale.append(item.job_id)
        return stale

    # -- maintenance ----------------------------------------------------------------------

    def rescue_expired(self, now: datetime, grace: float = 0.0) -> RescueReport:
        """Jobs whose worker stopped renewing its lease: the attempt counts, as a failure.

        Slow to judge: a job is taken only once its lease ended more than `grace` seconds ago
        *and* its owner's own liveness (its workers row, renewed with every lease) is as stale,
        so an owner that renews late keeps its job, and one that cannot renew has `grace` to
        stop its handler (it does so at the lease's end by its own clock) before anyone reruns it.
        """
        cutoff = now - timedelta(seconds=grace)
        with self._write() as connection:
            candidates = connection.execute(
                select(J.id, J.attempts, J.max_attempts, J.cancel_requested, J.worker_id)
                .where(status_guard(Action.RESCUE), J.lease_expires_at < cutoff)
                .order_by(J.lease_expires_at)
                .limit(RESCUE_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if not candidates:
                return RescueReport()
            alive = self._owners_alive(
                connection, {row.worker_id for row in candidates}, now, grace
            )
            rows = [row for row in candidates if row.worker_id not in alive]
            report = RescueReport(spared=[row.id for row in candidates if row.worker_id in alive])
            if not rows:
                return report
            targets = {
                JobStatus.CANCELED: report.canceled,
                JobStatus.FAILED: report.failed,
                JobStatus.PENDING: report.requeued,
            }
            for row in rows:
                status = _rescue_target(row.cancel_requested, row.attempts, row.max_attempts)
                targets[status].append(row.id)
            for status, ids in targets.items():
                self._apply_rescue(connection, status, ids, now, cutoff)
            died = [
                ErrorEntry.lease_expired(row.id, row.attempts, row.worker_id).row(now)
                for row in rows
                if not row.cancel_requested
            ]
            if died:
                connection.execute(self._insert_error, died)
            return report

    @staticmethod
    def _owners_alive(
        connection: Connection, owners: set[str | None], now: datetime, grace: float
    ) -> set[str]:
        """The owners that renewed their liveness within their own lease plus `grace`."""
        named = sorted(owner for owner in owners if owner is not None)
        if not named:
            return set()
        rows = connection.execute(
            select(W.id, W.heartbeat_at, W.lease).where(W.id.in_(named))
        ).all()
        return {
            row.id
            for row in rows
            if row.lease is not None
            and (now - row.heartbeat_at).total_seconds() <= row.lease + grace
        }

    @staticmethod
    def _apply_rescue(
        connection: Connection, status: JobStatus, ids: list[int], now: datetime, cutoff: datetime
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
            .where(J.id.in_(ids), status_guard(Action.RESCUE), J.lease_expires_at < cutoff)
            .values(**values)
        )

    def purge(
        self, cutoff: datetime, statuses: Sequence[JobStatus], batch: int = PURGE_BATCH
    ) -> int:
        """Delete finished jobs that finished before `cutoff`, `batch` per short transaction."""
        for status in statuses:
            check_transition(Action.PURGE, status)
        wanted = sorted(status.value for status in statuses)
        total = 0
        while True:
            with self._write() as connection:
                due = (
                    select(J.id)
                    .where(J.status.in_(wanted), J.finished_at < cutoff)
                    .limit(batch)
                    .scalar_subquery()
                )
                deleted = connection.execute(delete(jobs_table).where(J.id.in_(due))).rowcount
            total += deleted
            if deleted < batch:
                return total

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
                    lease=worker.lease,
                )
            )

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as connection:
            connection.execute(delete(workers_table).where(W.id == worker_id))

    def prune_workers(self, now: datetime, stale_after: float, default_lease: float) -> int:
        """Forget workers silent for `stale_after` and three of their own leases (they died)."""
        with self._write() as connection:
            dead = [
                worker.id
                for worker in self._workers(connection)
                if worker.forgettable(now, stale_after, default_lease)
            ]
            if dead:
                connection.execute(delete(workers_table).where(W.id.in_(dead)))
            return len(dead)

    def list_workers(self, now: datetime, default_lease: float) -> list[WorkerInfo]:
        """The live workers, each judged by its own lease; oldest first."""
        with self._read() as connection:
            return [w for w in self._workers(connection) if w.alive(now, default_lease)]

    @staticmethod
    def _workers(connection: Connection) -> list[WorkerInfo]:
        rows = connection.execute(select(workers_table).order_by(W.started_at)).all()
        return [
            WorkerInfo(
                id=row.id,
                host=row.host,
                pid=row.pid,
                queues=() if row.queues == "*" else tuple(row.queues.split(",")),
                concurrency=row.concurrency,
                started_at=row.started_at,
                heartbeat_at=row.heartbeat_at,
                lease=row.lease,
            )
            for row in rows
        ]


def _rescue_target(cancel_requested: bool, attempts: int, max_attempts: int) -> JobStatus:
    if cancel_requested:
        return JobStatus.CANCELED
    if attempts >= max_attempts:
        return JobStatus.FAILED
    return JobStatus.PENDING


def renew_rows(
    connection: Connection, worker_id: str, now: datetime, lease: float
) -> dict[int, tuple[str, bool]]:
    """Extend the leases of the worker's running jobs; job id -> (token, cancel requested)."""
    expires = literal(now + timedelta(seconds=lease), UTCDateTime())
    # Never earlier than before: two renewals may commit out of the order they read the time.
    rows = connection.execute(
        update(jobs_table)
        .where(J.worker_id == worker_id, J.status == literal(RUNNING))
        .values(
            lease_expires_at=case((J.lease_expires_at > expires, J.lease_expires_at), else_=expires)
        )
        .returning(J.id, J.lease_token, J.cancel_requested)
    ).all()
    return {row.id: (row.lease_token, bool(row.cancel_requested)) for row in rows}


def running_report(
    held: Mapping[int, tuple[str, bool]], tokens: Mapping[int, str], renewed_at: datetime | None
) -> HeartbeatReport:
    """What the worker learns from the rows it holds, given the executions it knows of."""
    lost = {job_id for job_id, token in tokens.items() if _token_of(held, job_id) != token}
    renewed = frozenset(tokens.keys() - lost) if renewed_at is not None else frozenset()
    canceled = {job_id for job_id, (_, cancel) in held.items() if cancel and job_id in tokens}
    return HeartbeatReport(
        lost=frozenset(lost),
        cancel_requested=frozenset(canceled - lost),
        renewed=renewed,
        renewed_at=renewed_at,
    )


def _token_of(held: Mapping[int, tuple[str, bool]], job_id: int) -> str | None:
    row = held.get(job_id)
    return None if row is None else row[0]
