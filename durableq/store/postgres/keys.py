"""Enqueues with keys on PostgreSQL: the steps of core/uniqueness.enqueue_with_keys in Core.

Two transactions may insert twins at once. INSERT ... ON CONFLICT DO NOTHING then waits for the
other: if it commits, nothing is inserted and the twin is looked up again; if it rolls back, the
key was never taken and the insert goes through. So a key is never doubled, and a transaction
that rolls back never blocks it for another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.dialects.postgresql import insert

from durableq.core import payloads
from durableq.core.jobs import JobStatus, NewJob
from durableq.core.uniqueness import Twin
from durableq.store.core.base import PENDING, J
from durableq.store.schema import UNIQUE_HELD, jobs_table


class PostgresKeySteps:
    def __init__(
        self,
        connection: Connection,
        now: datetime,
        new_row: Callable[[NewJob, datetime], dict[str, Any]],
        admit: Callable[[Connection, Sequence[NewJob], datetime], None],
    ) -> None:
        self.connection = connection
        self.now = now
        self._new_row = new_row
        self._admit = admit

    def by_idempotency_key(self, key: str) -> Twin | None:
        return self._twin(J.idempotency_key == key)

    def by_unique_key(self, key: str) -> Twin | None:
        return self._twin(and_(J.unique_key == key, UNIQUE_HELD))

    def by_schedule_tick(self, schedule: str, tick: datetime) -> Twin | None:
        return self._twin(and_(J.schedule == schedule, J.schedule_tick == tick))

    def _twin(self, condition: Any) -> Twin | None:
        row = self.connection.execute(
            select(J.id, J.type, J.payload, J.status).where(condition)
        ).first()
        if row is None:
            return None
        return Twin(int(row.id), row.type, payloads.decode(row.payload), JobStatus(row.status))

    def replace(self, twin_id: int, job: NewJob) -> bool:
        updated = self.connection.execute(
            update(jobs_table)
            .where(J.id == twin_id, J.status == PENDING)
            .values(
                payload=payloads.encode_payload(job.payload),
                run_at=job.run_at or self.now,
                updated_at=self.now,
            )
        )
        return updated.rowcount == 1

    def admit(self, jobs: Sequence[NewJob]) -> None:
        self._admit(self.connection, jobs, self.now)

    def insert(self, job: NewJob) -> int | None:
        row = {
            **self._new_row(job, self.now),
            "idempotency_key": job.idempotency_key,
            "unique_key": job.unique_key,
            "unique_states": job.unique_states,
            "schedule": job.schedule,
            "schedule_tick": job.schedule_tick,
        }
        statement = insert(jobs_table).values(row).on_conflict_do_nothing().returning(J.id)
        job_id = self.connection.execute(statement).scalar()
        return None if job_id is None else int(job_id)
