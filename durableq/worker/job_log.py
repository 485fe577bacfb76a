"""The log lines of a worker's job events: one line per start and per finish, with fields
for the JSON format (event, job_id, type, queue, attempt, duration_ms)."""

from __future__ import annotations

import logging
from datetime import datetime

from durableq.core.jobs import Action, ClaimedJob, JobStatus
from durableq.core.outcomes import Finish, Outcome
from durableq.worker.events import Event, JobFinished, JobStarted

log = logging.getLogger("durableq.worker")


def log_event(event: Event) -> None:
    """The subscriber the daemon installs: job events become log lines."""
    if isinstance(event, JobStarted):
        log_started(event.job)
    elif isinstance(event, JobFinished):
        log_finish(event.finish, event.outcome, event.stale, event.at)


def log_started(job: ClaimedJob) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(
            "job %s %s attempt %s/%s started",
            job.id,
            job.type,
            job.attempt,
            job.max_attempts,
            extra=_fields("started", job),
        )


def log_finish(finish: Finish, outcome: Outcome | None, stale: bool, now: datetime) -> None:
    """One line per finished execution (a dropped, stale outcome is a warning)."""
    if outcome is None:
        return
    job = outcome.job
    if stale:
        log.warning(
            "job %s %s attempt %s: outcome dropped, the job was rescued or taken over",
            job.id,
            job.type,
            job.attempt,
            extra=_fields("stale", job, outcome.duration),
        )
        return
    if not log.isEnabledFor(logging.INFO):
        return
    event = _event_name(finish)
    detail = f": {finish.error}" if finish.error else ""
    if finish.status is JobStatus.PENDING and finish.run_at is not None and finish.error:
        delay = (finish.run_at - now).total_seconds()
        detail += f"; retrying in {max(0.0, delay):.1f}s"
    log.log(
        logging.WARNING if finish.error else logging.INFO,
        "job %s %s attempt %s/%s %s in %.1fms%s",
        job.id,
        job.type,
        job.attempt,
        job.max_attempts,
        event,
        outcome.duration * 1000,
        detail,
        extra=_fields(event, job, outcome.duration),
    )


def _event_name(finish: Finish) -> str:
    if finish.action is Action.SNOOZE:
        return "snoozed"
    if finish.status is JobStatus.PENDING:
        return "released" if finish.attempt_delta < 0 else "failed"
    return finish.status.value


def _fields(event: str, job: ClaimedJob, duration: float | None = None) -> dict[str, object]:
    fields: dict[str, object] = {
        "event": event,
        "job_id": job.id,
        "type": job.type,
        "queue": job.queue,
        "attempt": job.attempt,
    }
    if duration is not None:
        fields["duration_ms"] = round(duration * 1000, 3)
    return {"durableq": fields}
