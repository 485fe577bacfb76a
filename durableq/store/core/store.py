"""What both stores share: every operation that is not on a busy worker's path, in Core.

Reads, upkeep, queue management, leadership and the operators' cancel and retry are written
once here and rendered for each dialect. Each store adds the hot operations (enqueue, the
worker's turn) in its own dialect's best form, its wake-up, and its change watcher.

Every state change is guarded by the statuses the transition table allows, and every write on
behalf of a running execution also by its fencing token (`lease_token`): zero rows updated means
the job is no longer that execution's, and the caller drops its stale outcome.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, delete, select, update
from sqlalchemy.exc import IntegrityError

from durableq.core.errors import JobNotFound, UniqueConflict
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
from durableq.core.uniqueness import Enqueued
from durableq.store.changes import ChangeWatcher
from durableq.store.core.base import PENDING, J, status_guard
from durableq.store.core.history import HistoryOps
from durableq.store.core.leadership import LeadershipOps
from durableq.store.core.queues import QueueOps
from durableq.store.core.reads import Reads
from durableq.store.core.schedules import ScheduleOps
from durableq.store.core.upkeep import Upkeep
from durableq.store.engine import translate_errors
from durableq.store.records import Turn
from durableq.store.schema import UNIQUE_HELD, jobs_table

TRANSITION_TARGETS = {action: transition.targets for action, transition in TRANSITIONS.items()}


class CoreStore(Reads, Upkeep, QueueOps, LeadershipOps, ScheduleOps, HistoryOps):
    """A store's shared operations; SqliteStore and PostgresStore complete it."""

    # -- each store's own -----------------------------------------------------------------

    @abstractmethod
    def enqueue_many(self, jobs: Sequence[NewJob], now: datetime) -> Enqueued:
        """All or nothing, in one transaction; ids in the order given."""

    @abstractmethod
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
    ) -> Turn: ...

    @abstractmethod
    def change_watcher(self) -> ChangeWatcher: ...

    def close(self) -> None:
        """Release what the store holds beyond the engine's pool."""

    # -- producers ------------------------------------------------------------------------

    def enqueue(self, job: NewJob, now: datetime) -> int:
        return self.enqueue_many([job], now)[0]

    def enqueue_within(
        self, connection: Connection, jobs: Sequence[NewJob], now: datetime
    ) -> Enqueued:
        """Insert in the caller's own transaction (the outbox pattern): the jobs exist if and
        only if that transaction commits; idle workers hear of them at its commit."""
        with translate_errors(self.engine):
            enqueued = self._insert_within(connection, jobs, now)
            self._notify(connection)
        return enqueued

    # -- workers --------------------------------------------------------------------------

    def claim(
        self, worker_id: str, queues: Sequence[str], limit: int, now: datetime, lease: float
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
        renew: bool | Callable[[], bool] = False,
        hurry_at: float | None = None,
        caps: Mapping[str, int] | None = None,
    ) -> Turn:
        """A worker's turn in one transaction (one commit): save outcomes, then claim.

        With `renew`, the turn also renews the leases of the worker's running jobs and its
        liveness, as a heartbeat would: free while the worker is busy. `renew` may be a
        callable, asked once the write lock is held (after `now`): whether a renewal is due.
        Returns the ids whose outcome was stale (the job is no longer that execution's), the
        newly claimed jobs and the renewed ones. `now` may be a clock: it is then read once the
        write lock is held, so that the leases it grants are whole however long the lock took.

        The claim honours every queue's controls (paused, concurrency across all daemons,
        rate) and `caps`, what this daemon may still start per queue by its own limits.
        """
        for item in finishes:
            assert item.status in TRANSITION_TARGETS[item.action], item
        return self._turn(
            finishes, worker_id, queues, limit, now, lease, renew, hurry_at, caps or {}
        )

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
            self._refuse_if_twin(connection, job_id)
            statement = (
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
            try:
                with connection.begin_nested():
                    connection.execute(statement)
            except IntegrityError:  # a twin took the key since the check (PostgreSQL)
                raise UniqueConflict(job_id, None) from None
            self._notify(connection)
            return self._get(connection, job_id)

    def delete(self, job_id: int) -> Job:
        """Delete one finished job and its error history; returns it as it was."""
        with self._write() as connection:
            check_transition(Action.PURGE, self._status_of(connection, job_id), job_id)
            job = self._get(connection, job_id)
            connection.execute(delete(jobs_table).where(J.id == job_id, status_guard(Action.PURGE)))
            return job

    @staticmethod
    def _refuse_if_twin(connection: Connection, job_id: int) -> None:
        """A job coming back into its unique states may not take a key a twin holds."""
        key = connection.execute(select(J.unique_key).where(J.id == job_id)).scalar()
        if key is None:
            return
        twin = connection.execute(
            select(J.id).where(J.unique_key == key, UNIQUE_HELD, J.id != job_id).limit(1)
        ).scalar()
        if twin is not None:
            raise UniqueConflict(job_id, int(twin))

    def _status_of(self, connection: Connection, job_id: int) -> JobStatus:
        # Locked until the transaction ends, so the status cannot change between this read and
        # the guarded write that follows (PostgreSQL; SQLite's writers are serialised anyway).
        status = connection.execute(
            select(J.status).where(J.id == job_id).with_for_update()
        ).scalar()
        if status is None:
            raise JobNotFound(job_id)
        return JobStatus(status)
