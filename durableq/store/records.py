"""The values the stores hand back and take: reports, filters, figures, error entries, jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durableq.core import payloads
from durableq.core.jobs import (
    ClaimedJob,
    Job,
    JobStatus,
)
from durableq.core.outcomes import Finish

UNSET: Any = object()  # set_queue: leave this control as it is
MIN_LIVENESS = 5.0  # seconds: a worker is not called dead sooner than this


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    queues: tuple[str, ...]  # empty: all queues
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    lease: float | None = None  # seconds; the worker beats every third of it

    def alive(self, now: datetime, default_lease: float) -> bool:
        """Beaten within its own lease (three heartbeats), not the reader's."""
        return self._silent_for(now) <= max(self._lease(default_lease), MIN_LIVENESS)

    def forgettable(self, now: datetime, stale_after: float, default_lease: float) -> bool:
        """Silent for `stale_after` and for three of its own leases: it died long ago."""
        return self._silent_for(now) > max(stale_after, 3 * self._lease(default_lease))

    def _lease(self, default_lease: float) -> float:
        return self.lease if self.lease is not None else default_lease

    def _silent_for(self, now: datetime) -> float:
        return (now - self.heartbeat_at).total_seconds()


@dataclass(frozen=True)
class Leader:
    holder: str
    term: int
    elected_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class HeartbeatReport:
    """What a worker learns when it renews its leases."""

    lost: frozenset[int] = frozenset()  # rescued or otherwise taken away: stop caring
    cancel_requested: frozenset[int] = frozenset()
    renewed: frozenset[int] = frozenset()  # the jobs whose lease now ends at renewed_at + lease
    renewed_at: datetime | None = None  # None: a read, nothing renewed


@dataclass(frozen=True)
class RescueReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    canceled: list[int] = field(default_factory=list)
    spared: list[int] = field(default_factory=list)  # lease ended, but the owner still beats

    @property
    def total(self) -> int:
        return len(self.requeued) + len(self.failed) + len(self.canceled)


@dataclass(frozen=True)
class Turn:
    """A worker's turn: outcomes saved, jobs claimed, and (when asked) its leases renewed."""

    stale: list[int]  # outcomes dropped: the job is no longer that execution's
    claimed: list[ClaimedJob]
    renewed: dict[int, str] = field(default_factory=dict)  # job id -> token, lease renewed
    wake_in: float | None = None  # seconds until a rate limit that held a queue back frees a start
    held: bool = False  # a concurrency limit bounded the claim: a finish may let more start


@dataclass(frozen=True)
class JobFilter:
    statuses: tuple[JobStatus, ...] = ()
    queues: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    before_id: int | None = None  # keyset pagination, newest first: ids below this one
    payload_contains: str | None = None  # text anywhere in the payload's JSON (a scan)


@dataclass(frozen=True)
class Stats:
    counts: dict[str, dict[str, int]]  # queue -> status -> n
    oldest_due_at: datetime | None
    completed_last_minute: int
    failed_last_minute: int


def job_from_row(row: Any) -> Job:
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
        idempotency_key=row.idempotency_key,
        unique_key=row.unique_key,
        schedule=row.schedule,
        schedule_tick=row.schedule_tick,
        progress=row.progress,
        progress_message=row.progress_message,
        meta=payloads.decode(row.meta),
    )


ERROR_COLUMNS = ("job_id", "attempt", "error", "traceback", "failed_at")


@dataclass(frozen=True)
class ErrorEntry:
    """One row of a job's error history, built here for every store and every cause."""

    job_id: int
    attempt: int
    error: str
    traceback: str | None = None

    @classmethod
    def of(cls, finish: Finish) -> ErrorEntry | None:
        """The entry a finished attempt leaves, if it failed."""
        if finish.error is None:
            return None
        return cls(finish.job_id, finish.attempt, finish.error, finish.traceback)

    @classmethod
    def lease_expired(cls, job_id: int, attempt: int, worker_id: str | None) -> ErrorEntry:
        return cls(job_id, attempt, f"worker {worker_id} died: its lease expired")

    def values(self, failed_at: Any) -> tuple[Any, ...]:
        """In ERROR_COLUMNS order; `failed_at` as the store encodes a time."""
        return (self.job_id, self.attempt, self.error, self.traceback, failed_at)

    def row(self, failed_at: datetime) -> dict[str, Any]:
        return dict(zip(ERROR_COLUMNS, self.values(failed_at), strict=True))
