"""Shapes that every interface shows the same way (the CLI's --json now; the HTTP API later).

Below the interfaces, so that an HTTP layer can use them without importing click.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from durableq.core.queues import QueueInfo
from durableq.core.schedules import ScheduleInfo


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
