"""Jobs, their statuses and the one table of legal transitions. Pure: no I/O, no clock."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from durableq.core.errors import InvalidTransition


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


class Action(enum.StrEnum):
    """Everything that can happen to a job; each names its legal sources in TRANSITIONS."""

    CLAIM = "claim"
    COMPLETE = "complete"
    RETRY_LATER = "retry later"  # a failed attempt with attempts left
    FAIL = "fail"  # a failed attempt with none left
    CANCEL = "cancel"  # a pending job, at once
    REQUEST_CANCEL = "request cancel"  # a running job: its worker is told
    ACKNOWLEDGE_CANCEL = "acknowledge cancel"  # the worker ends a cancel-requested job
    RELEASE = "release"  # graceful shutdown: back to pending, attempt not counted
    SNOOZE = "snooze"  # the handler said "not now": back to pending later, attempt not counted
    RESCUE = "rescue"  # lease expired: the worker died
    RETRY = "retry"  # an operator's explicit retry of a finished job
    PURGE = "purge"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[JobStatus]
    targets: frozenset[JobStatus]


def _t(sources: set[JobStatus], *targets: JobStatus) -> Transition:
    return Transition(frozenset(sources), frozenset(targets))


P, R, C, F, X = (
    JobStatus.PENDING,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)

# The single source of truth: the store derives its SQL guards from this table.
TRANSITIONS: Mapping[Action, Transition] = {
    Action.CLAIM: _t({P}, R),
    Action.COMPLETE: _t({R}, C),
    Action.RETRY_LATER: _t({R}, P),
    Action.FAIL: _t({R}, F),
    Action.CANCEL: _t({P}, X),
    Action.REQUEST_CANCEL: _t({R}, R),
    Action.ACKNOWLEDGE_CANCEL: _t({R}, X),
    Action.RELEASE: _t({R}, P),
    Action.SNOOZE: _t({R}, P),
    Action.RESCUE: _t({R}, P, F),
    Action.RETRY: _t({F, X}, P),
    Action.PURGE: _t({C, F, X}),
}

_HINTS: Mapping[Action, str] = {
    Action.CANCEL: "only pending or running jobs can be canceled",
    Action.RETRY: "only failed or canceled jobs can be retried",
    Action.PURGE: "only finished jobs can be purged",
}


def sources_of(action: Action) -> frozenset[JobStatus]:
    return TRANSITIONS[action].sources


def check_transition(action: Action, status: JobStatus, job_id: int | None = None) -> None:
    """Raise InvalidTransition unless `action` may be applied to a job in `status`."""
    if status not in TRANSITIONS[action].sources:
        raise InvalidTransition(job_id, action.value, status.value, _HINTS.get(action, ""))


def cancel_action_for(status: JobStatus, job_id: int | None = None) -> Action:
    """Canceling a pending job ends it; canceling a running one asks its worker to stop."""
    if status in sources_of(Action.CANCEL):
        return Action.CANCEL
    if status in sources_of(Action.REQUEST_CANCEL):
        return Action.REQUEST_CANCEL
    raise InvalidTransition(job_id, Action.CANCEL.value, status.value, _HINTS[Action.CANCEL])


@dataclass(frozen=True)
class Job:
    id: int
    queue: str
    type: str
    payload: dict[str, Any]
    status: JobStatus
    priority: int
    attempts: int
    max_attempts: int
    timeout: float | None
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None
    result: Any = None
    cancel_requested: bool = False
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    idempotency_key: str | None = None
    unique_key: str | None = None
    schedule: str | None = None  # the recurring schedule that made it, and for which tick
    schedule_tick: datetime | None = None
    progress: float | None = None  # what its handler last reported: 0 to 1, and a message
    progress_message: str | None = None
    meta: dict[str, Any] | None = None  # its handler's metadata (and durableq's: snoozes, ...)


@dataclass(frozen=True)
class JobError:
    """One failed attempt, kept in the job's error history."""

    job_id: int
    attempt: int
    error: str
    traceback: str | None
    failed_at: datetime


@dataclass(frozen=True)
class NewJob:
    """What a producer asks for; the store turns it into a pending row."""

    type: str
    payload: Mapping[str, Any]
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 10
    timeout: float | None = None
    run_at: datetime | None = None  # None: now
    # None for a plain job, which takes the fast insert; see JobKeys.
    keys: JobKeys | None = None

    @property
    def keyed(self) -> bool:
        """Whether the store must look for a twin or record a schedule: the slower insert."""
        return self.keys is not None

    @property
    def idempotency_key(self) -> str | None:
        return None if self.keys is None else self.keys.idempotency_key

    @property
    def unique_key(self) -> str | None:
        return None if self.keys is None else self.keys.unique_key

    @property
    def unique_states(self) -> int | None:
        return None if self.keys is None else self.keys.unique_states

    @property
    def replace_twin(self) -> bool:
        return self.keys is not None and self.keys.replace_twin

    @property
    def schedule(self) -> str | None:
        return None if self.keys is None else self.keys.schedule

    @property
    def schedule_tick(self) -> datetime | None:
        return None if self.keys is None else self.keys.schedule_tick


def as_stored(job: NewJob, job_id: int, now: datetime) -> Job:
    """The row a plain insert of `job` at `now` makes, as a Job: what reading it back would
    give, without the read (the HTTP API answers a submission with it). Not for a job that
    was a duplicate: its row is its twin's."""
    created = now.astimezone(UTC)
    return Job(
        id=job_id,
        queue=job.queue,
        type=job.type,
        payload=dict(job.payload),
        status=JobStatus.PENDING,
        priority=job.priority,
        attempts=0,
        max_attempts=job.max_attempts,
        timeout=job.timeout,
        run_at=created if job.run_at is None else job.run_at.astimezone(UTC),
        created_at=created,
        updated_at=created,
        idempotency_key=job.idempotency_key,
        unique_key=job.unique_key,
        schedule=job.schedule,
        schedule_tick=None if job.schedule_tick is None else job.schedule_tick.astimezone(UTC),
    )


@dataclass(frozen=True)
class JobKeys:
    """What makes an enqueue idempotent or a job unique (core/uniqueness.py), or the schedule
    and tick that made it. Kept apart from NewJob's fields so that a plain job costs nothing."""

    idempotency_key: str | None = None
    unique_key: str | None = None
    unique_states: int | None = None  # bits: see uniqueness.STATE_BITS
    replace_twin: bool = False  # on a unique conflict, update a pending twin instead
    schedule: str | None = None
    schedule_tick: datetime | None = None


@dataclass(frozen=True)
class ClaimedJob:
    """The slice of a job a worker needs to run it, plus its fencing token."""

    id: int
    queue: str
    type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    timeout: float | None
    lease_token: str
    run_at: datetime | None = None  # when it was due: the wait until its start (metrics)
    meta: dict[str, Any] | None = None  # as stored: the handler's updates merge into it
    priority: int = 0

    def start_order(self) -> tuple[int, float, int]:
        """Jobs claimed together start in the claim's order: best priority, then due first."""
        due = 0.0 if self.run_at is None else self.run_at.timestamp()
        return (-self.priority, due, self.id)
