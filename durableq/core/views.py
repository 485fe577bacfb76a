"""Shapes that every interface shows the same way (the CLI's --json now; the HTTP API later).

Below the interfaces, so that an HTTP layer can use them without importing click.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from durableq.core.queues import QueueInfo


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
