"""Shapes that every interface shows the same way: the CLI's --json and the HTTP API's bodies.

Below the interfaces, so that the HTTP API uses them without importing click.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from durableq.core.history import History
from durableq.core.jobs import Job, JobError, JobStatus
from durableq.core.queues import QueueInfo
from durableq.core.schedules import ScheduleInfo
from durableq.store.records import Stats, WorkerInfo


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def queue_json(info: QueueInfo) -> dict[str, Any]:
    rate = info.rate
    return {
        "name": info.name,
        "paused": info.paused,
        "paused_at": iso(info.paused_at),
        "pending": info.pending,
        "running": info.running,
        "concurrency": info.concurrency,
        "max_pending": info.max_pending,
        "rate": None
        if rate is None
        else {"count": rate.count, "period_seconds": rate.period, "burst": rate.burst},
        "oldest_due_wait_seconds": None
        if info.oldest_due_wait is None
        else round(info.oldest_due_wait, 3),
    }


def schedule_json(info: ScheduleInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "cron": info.cron,
        "description": info.description,
        "timezone": info.timezone,
        "type": info.type,
        "queue": info.queue,
        "catch_up": info.catch_up,
        "max_catch_up": info.max_catch_up,
        "no_overlap": info.no_overlap,
        "active": info.active,
        "next_run_at": iso(info.next_run_at),
        "last_tick": iso(info.last_tick),
        "last_run_at": iso(info.last_run_at),
        "last_job_id": None if info.last_job_id is None else str(info.last_job_id),
        "last_job_status": info.last_job_status,
        "seen_at": iso(info.seen_at),
    }


def job_json(job: Job, errors: Sequence[JobError] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(job.id),
        "queue": job.queue,
        "type": job.type,
        "payload": job.payload,
        "status": job.status.value,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "result": job.result,
        "run_at": iso(job.run_at),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "timeout": job.timeout,
        "cancel_requested": job.cancel_requested,
        "worker_id": job.worker_id,
        "idempotency_key": job.idempotency_key,
        "unique_key": job.unique_key,
        "schedule": job.schedule,
        "schedule_tick": iso(job.schedule_tick),
        "progress": job.progress,
        "progress_message": job.progress_message,
        "meta": job.meta,
    }
    if errors is not None:
        data["errors"] = [
            {
                "attempt": error.attempt,
                "error": error.error,
                "traceback": error.traceback,
                "failed_at": iso(error.failed_at),
            }
            for error in errors
        ]
    return data


def stats_json(stats: Stats, now: datetime) -> dict[str, Any]:
    totals: dict[str, int] = {status.value: 0 for status in JobStatus}
    for per_status in stats.counts.values():
        for status, n in per_status.items():
            totals[status] = totals.get(status, 0) + n
    oldest = stats.oldest_due_at
    return {
        "counts": totals,
        "queues": stats.counts,
        "oldest_pending_age_seconds": (
            None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 3)
        ),
        "completed_last_minute": stats.completed_last_minute,
        "failed_last_minute": stats.failed_last_minute,
    }


def worker_json(worker: WorkerInfo, leader_id: str | None = None) -> dict[str, Any]:
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues) or None,
        "concurrency": worker.concurrency,
        "started_at": iso(worker.started_at),
        "heartbeat_at": iso(worker.heartbeat_at),
        "leader": worker.id == leader_id,
    }


def history_json(history: History) -> dict[str, Any]:
    def mean(value: float | None) -> float | None:
        return None if value is None else round(value, 6)

    return {
        "window": history.window.name,
        "step_seconds": int(history.window.step.total_seconds()),
        "rolled_up_to": iso(history.rolled_up_to),
        "buckets": [
            {
                "start": iso(bucket.start),
                "completed": bucket.completed,
                "failed": bucket.failed,
                "canceled": bucket.canceled,
                "errored": bucket.errored,
                "mean_wait_seconds": mean(bucket.mean_wait),
                "mean_duration_seconds": mean(bucket.mean_duration),
            }
            for bucket in history.buckets
        ],
    }
