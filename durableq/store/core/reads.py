"""Reading jobs: one, many, their error history, filtered lists, and the figures for stats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    func,
    literal_column,
    or_,
    select,
)

from durableq.core.jobs import (
    Job,
    JobError,
    JobStatus,
)
from durableq.store.core.base import CoreBase, E, J
from durableq.store.records import JobFilter, Stats, job_from_row
from durableq.store.schema import (
    PENDING_ONLY,
    UTCDateTime,
    job_errors_table,
    jobs_table,
)


class Reads(CoreBase):
    # -- reads ----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self._read() as connection:
            return self._get(connection, job_id)

    def get_many(self, job_ids: Sequence[int]) -> list[Job]:
        with self._read() as connection:
            rows = connection.execute(select(jobs_table).where(J.id.in_(list(job_ids)))).all()
        return [job_from_row(row) for row in rows]

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
        if where.statuses == (JobStatus.RUNNING,):
            return self._running_jobs(where, limit, offset)
        query = _filtered(select(jobs_table), where)
        query = query.order_by(J.id.desc()).limit(limit).offset(offset)
        with self._read() as connection:
            return [job_from_row(row) for row in connection.execute(query)]

    def _running_jobs(self, where: JobFilter, limit: int, offset: int) -> list[Job]:
        """Running jobs are few (at most every daemon's slots) and have their own partial
        index; asked for newest first, SQLite would rather walk the whole table by id, which
        took seconds at a million finished jobs with none running. Read them through the
        index, order them here."""
        query = _filtered(select(jobs_table), where)
        with self._read() as connection:
            rows = sorted(connection.execute(query), key=lambda row: row.id, reverse=True)
        return [job_from_row(row) for row in rows[offset : offset + limit]]

    def count_jobs(self, where: JobFilter, cap: int) -> int:
        """How many jobs match, counting no further than `cap` (a bounded scan)."""
        matching = _filtered(select(J.id), where).limit(cap).subquery()
        with self._read() as connection:
            return int(connection.execute(select(func.count()).select_from(matching)).scalar_one())

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


def _filtered(query: Select[Any], where: JobFilter) -> Select[Any]:
    if where.statuses:
        # Literals, not parameters: the partial indexes (pending, running, failed, canceled)
        # serve only a condition that names their status as written.
        query = query.where(
            or_(*(J.status == literal_column(f"'{status.value}'") for status in where.statuses))
        )
    if where.queues:
        query = query.where(J.queue.in_(where.queues))
    if where.types:
        query = query.where(J.type.in_(where.types))
    if where.created_after is not None:
        query = query.where(J.created_at >= where.created_after)
    if where.created_before is not None:
        query = query.where(J.created_at < where.created_before)
    if where.before_id is not None:
        query = query.where(J.id < where.before_id)
    if where.payload_contains:
        query = query.where(J.payload.contains(where.payload_contains, autoescape=True))
    return query
