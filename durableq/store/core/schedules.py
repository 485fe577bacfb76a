"""Recurring jobs in the database: declaring schedules, firing a tick, reading them back.

A tick is fired by one transaction that moves the schedule's `next_run_at` on from the value
the firing daemon read (compare-and-set) and inserts the tick's jobs. Any number of daemons
may try the same tick: one wins the CAS, the others update nothing and insert nothing; a crash
before the commit undoes both halves. The unique index on (schedule, schedule_tick) stands
behind the CAS. Correctness does not depend on who leads.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from durableq.core import payloads
from durableq.core.jobs import JobStatus, NewJob
from durableq.core.schedules import Schedule, ScheduleInfo, describe
from durableq.core.uniqueness import Enqueued
from durableq.store.core.base import CoreBase, J
from durableq.store.schema import schedules_table

S = schedules_table.c
# A schedule no running daemon has declared for this long is shown inactive. Daemons that
# know it declare it again every SCHEDULE_SEEN_EVERY.
SCHEDULE_SEEN_EVERY = 60.0
INACTIVE_AFTER = timedelta(minutes=5)
_WORKING = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class Fired:
    """What one attempt at a schedule's due ticks did."""

    won: bool  # False: another daemon fired these ticks first (the CAS failed)
    job_ids: tuple[int, ...] = ()
    skipped_overlap: bool = False


class ScheduleOps(CoreBase):
    @abstractmethod
    def _insert_within(
        self, connection: Connection, jobs: Sequence[NewJob], now: datetime
    ) -> Enqueued:
        """Insert jobs inside the caller's transaction, as enqueue_many does."""

    def declare_schedules(self, schedules: Sequence[Schedule], now: datetime) -> None:
        """Store the schedules a daemon knows (insert new ones, update changed ones) and mark
        them seen. A new schedule's first tick is the first after now: it never catches up on
        time before it existed. A changed cron or zone starts again from now as well."""
        if not schedules:
            return
        with self._write() as connection:
            stored = {
                row.name: row
                for row in connection.execute(
                    select(S.name, S.cron, S.timezone, S.next_run_at).where(
                        S.name.in_([schedule.name for schedule in schedules])
                    )
                )
            }
            for schedule in schedules:
                definition = {
                    "cron": schedule.cron,
                    "timezone": schedule.timezone,
                    "type": schedule.type,
                    "queue": schedule.queue,
                    "payload": payloads.encode_payload(dict(schedule.payload)),
                    "catch_up": schedule.catch_up,
                    "max_catch_up": schedule.max_catch_up,
                    "no_overlap": schedule.no_overlap,
                    "seen_at": now,
                    "updated_at": now,
                }
                row = stored.get(schedule.name)
                if row is None:
                    connection.execute(
                        insert(schedules_table).values(
                            name=schedule.name,
                            next_run_at=schedule.next_after(now),
                            created_at=now,
                            **definition,
                        )
                    )
                    continue
                if (row.cron, row.timezone) != (schedule.cron, schedule.timezone):
                    definition["next_run_at"] = schedule.next_after(now)
                connection.execute(
                    update(schedules_table).where(S.name == schedule.name).values(**definition)
                )

    def schedule_next_runs(self) -> dict[str, datetime | None]:
        """Each stored schedule's next tick: what a daemon reads before it fires."""
        with self._read() as connection:
            return {
                row.name: row.next_run_at
                for row in connection.execute(select(S.name, S.next_run_at))
            }

    def fire_schedule(
        self,
        name: str,
        expected_next: datetime,
        new_next: datetime | None,
        jobs: Sequence[NewJob],
        no_overlap: bool,
        now: datetime,
    ) -> Fired:
        """Fire due ticks (`jobs`, one per tick) if the schedule still waits for
        `expected_next`; move it on to `new_next` either way it was won."""
        with self._write() as connection:
            moved = connection.execute(
                update(schedules_table)
                .where(S.name == name, S.next_run_at == expected_next)
                .values(next_run_at=new_next, updated_at=now)
            ).rowcount
            if not moved:
                return Fired(won=False)
            if no_overlap and self._previous_still_working(connection, name):
                return Fired(won=True, skipped_overlap=True)
            if not jobs:
                return Fired(won=True)
            ids = self._insert_within(connection, jobs, now)
            connection.execute(
                update(schedules_table)
                .where(S.name == name)
                .values(last_tick=jobs[-1].schedule_tick, last_run_at=now, last_job_id=ids[-1])
            )
            self._notify(connection)
            return Fired(won=True, job_ids=tuple(ids))

    @staticmethod
    def _previous_still_working(connection: Connection, name: str) -> bool:
        last = connection.execute(select(S.last_job_id).where(S.name == name)).scalar()
        if last is None:
            return False
        status = connection.execute(select(J.status).where(J.id == last)).scalar()
        return status in _WORKING

    def schedules(self, now: datetime) -> list[ScheduleInfo]:
        with self._read() as connection:
            rows = connection.execute(select(schedules_table).order_by(S.name)).all()
            last_ids = [row.last_job_id for row in rows if row.last_job_id is not None]
            statuses = dict(
                connection.execute(select(J.id, J.status).where(J.id.in_(last_ids))).all()
                if last_ids
                else []
            )
        return [
            ScheduleInfo(
                name=row.name,
                cron=row.cron,
                description=describe(row.cron),
                timezone=row.timezone,
                type=row.type,
                queue=row.queue,
                catch_up=row.catch_up,
                max_catch_up=row.max_catch_up,
                no_overlap=bool(row.no_overlap),
                next_run_at=row.next_run_at,
                last_tick=row.last_tick,
                last_run_at=row.last_run_at,
                last_job_id=row.last_job_id,
                last_job_status=statuses.get(row.last_job_id),
                active=now - row.seen_at < INACTIVE_AFTER,
                seen_at=row.seen_at,
            )
            for row in rows
        ]


__all__ = ["INACTIVE_AFTER", "SCHEDULE_SEEN_EVERY", "Fired", "ScheduleInfo", "ScheduleOps"]
