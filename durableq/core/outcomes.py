"""What running a job produced, and the state change that follows from it. Pure."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from durableq.core.jobs import Action, ClaimedJob, JobStatus
from durableq.core.retry import Backoff


class OutcomeKind(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RAISED = "raised"
    TIMED_OUT = "timed out"
    CANCELED = "canceled"  # the job was canceled while it ran
    INTERRUPTED = "interrupted"  # the daemon is shutting down: give the job back
    LAPSED = "lease lapsed"  # stopped because its lease could not be renewed in time
    SNOOZED = "snoozed"  # the handler raised Snooze: pending again later, attempt not counted
    RETRY_IN = "retry in"  # the handler raised RetryIn: a failed attempt, retried after `delay`
    GAVE_UP = "gave up"  # the handler raised Fail(retry=False): failed now


# Every action a worker's outcome may carry (resolve picks one): all act on a running job.
FINISH_ACTIONS = (
    Action.COMPLETE,
    Action.RETRY_LATER,
    Action.FAIL,
    Action.ACKNOWLEDGE_CANCEL,
    Action.RELEASE,
    Action.SNOOZE,
)


@dataclass(frozen=True)
class Report:
    """What the handler reported while it ran, to be saved with the outcome (None: nothing)."""

    progress: float | None = None
    progress_message: str | None = None
    meta_json: str | None = None  # the whole metadata, merged: it replaces the stored value


NOTHING_REPORTED = Report()


@dataclass(frozen=True)
class Progress:
    """A running execution's report, saved while it runs (fenced by its lease token)."""

    job_id: int
    lease_token: str
    report: Report


@dataclass(frozen=True)
class Outcome:
    job: ClaimedJob
    kind: OutcomeKind
    duration: float
    result_json: str | None = None
    error: str | None = None
    traceback: str | None = None
    delay: float | None = None  # SNOOZED, RETRY_IN: seconds until the job is due again
    report: Report = NOTHING_REPORTED
    started: float | None = None  # time.monotonic() when its handler started (None: never)


@dataclass(frozen=True)
class Finish:
    """One guarded state change for the store to write."""

    job_id: int
    lease_token: str
    action: Action
    status: JobStatus
    attempt: int
    finished: bool
    run_at: datetime | None = None
    result_json: str | None = None
    error: str | None = None
    traceback: str | None = None
    attempt_delta: int = 0
    report: Report = NOTHING_REPORTED
    # When the handler started, where it was not when the job was claimed (a job claimed ahead
    # waits for a slot): the stored started_at becomes this.
    started_at: datetime | None = None


def resolve(
    outcome: Outcome,
    now: datetime,
    backoff: Backoff,
    rng: random.Random,
    started_at: datetime | None = None,
) -> Finish:
    """The state change an outcome makes, carrying what the handler reported and when it
    started."""
    job = outcome.job
    if outcome.kind is OutcomeKind.SUCCEEDED:  # most outcomes: built in one go (profiled)
        return Finish(
            job.id,
            job.lease_token,
            action=Action.COMPLETE,
            status=JobStatus.COMPLETED,
            attempt=job.attempt,
            finished=True,
            result_json=outcome.result_json,
            report=outcome.report,
            started_at=started_at,
        )
    finish = _resolve(outcome, now, backoff, rng)
    if outcome.report == NOTHING_REPORTED and started_at is None:
        return finish
    return replace(finish, report=outcome.report, started_at=started_at)


def _resolve(outcome: Outcome, now: datetime, backoff: Backoff, rng: random.Random) -> Finish:
    """Every outcome but a success (resolve builds that one)."""
    job = outcome.job
    if outcome.kind is OutcomeKind.CANCELED:
        return Finish(
            job.id,
            job.lease_token,
            action=Action.ACKNOWLEDGE_CANCEL,
            status=JobStatus.CANCELED,
            attempt=job.attempt,
            finished=True,
            result_json=outcome.result_json,
        )
    if outcome.kind is OutcomeKind.INTERRUPTED:
        return release(job, now)
    if outcome.kind is OutcomeKind.SNOOZED:
        # As a release (the attempt given back), but due again after the handler's delay.
        later = now + timedelta(seconds=outcome.delay or 0.0)
        return replace(release(job, later), action=Action.SNOOZE)
    if outcome.kind is OutcomeKind.GAVE_UP:
        return Finish(
            job.id,
            job.lease_token,
            action=Action.FAIL,
            status=JobStatus.FAILED,
            attempt=job.attempt,
            finished=True,
            error=outcome.error or "failed",
        )
    if outcome.kind is OutcomeKind.RETRY_IN:
        retried = failure(job, now, backoff, rng, outcome.error or "retry requested")
        if retried.run_at is None:
            return retried  # that was the last attempt
        return replace(retried, run_at=now + timedelta(seconds=outcome.delay or 0.0))
    if outcome.kind is OutcomeKind.LAPSED:
        # Like a rescue: the attempt counts, and the job is due again at once (no back-off:
        # the job did not fail, its worker could not keep hold of it).
        lapsed = failure(job, now, backoff, rng, outcome.error or "lease lapsed")
        return replace(lapsed, run_at=now) if lapsed.run_at is not None else lapsed
    return failure(job, now, backoff, rng, outcome.error or "failed", outcome.traceback)


def release(job: ClaimedJob, now: datetime) -> Finish:
    """Give a job back unfinished (a handler that ignored a shutdown): the attempt not counted."""
    return Finish(
        job.id,
        job.lease_token,
        action=Action.RELEASE,
        status=JobStatus.PENDING,
        attempt=job.attempt,
        finished=False,
        run_at=now,
        attempt_delta=-1,
    )


def failure(
    job: ClaimedJob,
    now: datetime,
    backoff: Backoff,
    rng: random.Random,
    error: str,
    traceback: str | None = None,
) -> Finish:
    """A failed attempt: retried after the backoff, or failed for good when none are left."""
    if job.attempt >= job.max_attempts:
        action, status, run_at = Action.FAIL, JobStatus.FAILED, None
    else:
        action, status = Action.RETRY_LATER, JobStatus.PENDING
        run_at = now + timedelta(seconds=backoff.delay(job.attempt, rng))
    return Finish(
        job.id,
        job.lease_token,
        action=action,
        status=status,
        attempt=job.attempt,
        finished=run_at is None,
        run_at=run_at,
        error=error,
        traceback=traceback,
    )
