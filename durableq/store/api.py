"""The Store: every operation on the database, one method each. A store per dialect implements
it (sqlite/store.py, postgres/store.py), and one conformance suite runs against each.

Callers above the store layer (the client, the worker and its services) see only this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Engine

from durableq.core.history import MinuteCount, RollupReport
from durableq.core.jobs import ClaimedJob, Job, JobError, JobStatus, NewJob
from durableq.core.outcomes import Finish, Progress
from durableq.core.queues import QueueInfo, Rate
from durableq.core.schedules import Schedule, ScheduleInfo
from durableq.core.uniqueness import Enqueued
from durableq.store.changes import ChangeWatcher
from durableq.store.core.schedules import Fired
from durableq.store.records import (
    HeartbeatReport,
    JobFilter,
    Leader,
    RescueReport,
    Stats,
    Turn,
    WorkerInfo,
)


class Store(Protocol):
    engine: Engine
    dialect: str

    def close(self) -> None: ...
    def change_watcher(self) -> ChangeWatcher: ...

    # -- producers ------------------------------------------------------------------------
    def enqueue(self, job: NewJob, now: datetime) -> int: ...
    def enqueue_many(self, jobs: Sequence[NewJob], now: datetime) -> Enqueued:
        """All or nothing, in one transaction; ids in the order given."""
        ...

    def enqueue_within(
        self, connection: Connection, jobs: Sequence[NewJob], now: datetime
    ) -> Enqueued:
        """In the caller's open transaction on this database: committed with it, or not."""
        ...

    # -- workers --------------------------------------------------------------------------
    def claim(
        self, worker_id: str, queues: Sequence[str], limit: int, now: datetime, lease: float
    ) -> list[ClaimedJob]: ...
    def finish(self, finishes: Sequence[Finish], now: datetime) -> list[int]: ...
    def finish_and_claim(
        self,
        finishes: Sequence[Finish],
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        now: datetime | Callable[[], datetime],
        lease: float,
        *,
        renew: bool | Callable[[], bool] = ...,
        hurry_at: float | None = ...,
        caps: Mapping[str, int] | None = ...,
    ) -> Turn:
        """A worker's turn in one transaction: save outcomes, renew, claim within controls."""
        ...

    def heartbeat(
        self, worker_id: str, tokens: Mapping[int, str], now: datetime, lease: float
    ) -> HeartbeatReport: ...
    def renew(
        self,
        worker_id: str,
        tokens: Mapping[int, str],
        clock: Callable[[], datetime],
        lease: float,
        hurry_at: float | None = ...,
    ) -> HeartbeatReport: ...
    def poll_cancel_requests(
        self, worker_id: str, tokens: Mapping[int, str]
    ) -> HeartbeatReport: ...
    def record_progress(self, updates: Sequence[Progress], now: datetime) -> list[int]:
        """Save running handlers' reports; returns the ids no longer theirs."""
        ...

    def register_worker(self, worker: WorkerInfo) -> None: ...
    def unregister_worker(self, worker_id: str) -> None: ...

    # -- the leader's services ------------------------------------------------------------
    def rescue_expired(self, now: datetime, grace: float = ...) -> RescueReport: ...
    def purge(self, cutoff: datetime, statuses: Sequence[JobStatus], batch: int = ...) -> int: ...
    def prune_workers(self, now: datetime, stale_after: float, default_lease: float) -> int: ...
    def take_lead(self, worker_id: str, now: datetime, lease: float) -> int | None: ...
    def resign_lead(self, worker_id: str) -> bool: ...
    def leader(self, now: datetime) -> Leader | None: ...

    # -- reads ----------------------------------------------------------------------------
    def get(self, job_id: int) -> Job: ...
    def get_many(self, job_ids: Sequence[int]) -> list[Job]: ...
    def errors(self, job_id: int) -> list[JobError]: ...
    def list_jobs(self, where: JobFilter, limit: int, offset: int = ...) -> list[Job]: ...
    def count_jobs(self, where: JobFilter, cap: int) -> int: ...
    def stats(self, now: datetime) -> Stats: ...
    def list_workers(self, now: datetime, default_lease: float) -> list[WorkerInfo]: ...

    # -- operators ------------------------------------------------------------------------
    def cancel(self, job_id: int, now: datetime) -> Job: ...
    def retry(self, job_id: int, now: datetime) -> Job: ...
    def delete(self, job_id: int) -> Job: ...
    def pause_queue(self, name: str, now: datetime) -> QueueInfo: ...
    def resume_queue(self, name: str, now: datetime) -> QueueInfo: ...
    def set_queue(
        self,
        name: str,
        now: datetime,
        *,
        concurrency: int | None = ...,
        max_pending: int | None = ...,
        rate: Rate | None = ...,
    ) -> QueueInfo: ...
    def queue(self, name: str, now: datetime) -> QueueInfo: ...
    def queues(self, now: datetime, names: Sequence[str] = ...) -> list[QueueInfo]: ...

    # -- recurring jobs -------------------------------------------------------------------
    def declare_schedules(self, schedules: Sequence[Schedule], now: datetime) -> None: ...
    def schedule_next_runs(self) -> dict[str, datetime | None]: ...
    def fire_schedule(
        self,
        name: str,
        expected_next: datetime,
        new_next: datetime | None,
        jobs: Sequence[NewJob],
        no_overlap: bool,
        now: datetime,
    ) -> Fired: ...
    def schedules(self, now: datetime) -> list[ScheduleInfo]: ...

    # -- throughput history ---------------------------------------------------------------
    def roll_up(self, now: datetime, settle: float, keep: float) -> RollupReport: ...
    def history(
        self, since: datetime, until: datetime, queues: Sequence[str] = ...
    ) -> tuple[list[MinuteCount], datetime | None]: ...


def open_store(engine: Engine) -> Store:
    """The store for the engine's dialect."""
    if engine.dialect.name == "sqlite":
        from durableq.store.sqlite.store import SqliteStore

        return SqliteStore(engine)
    from durableq.store.postgres.store import PostgresStore

    return PostgresStore(engine)


__all__ = [
    "Fired",
    "HeartbeatReport",
    "JobFilter",
    "Leader",
    "RescueReport",
    "ScheduleInfo",
    "Stats",
    "Store",
    "Turn",
    "WorkerInfo",
    "open_store",
]
