"""Throughput history: how many jobs finished each minute, by queue, type and outcome. Pure.

A service rolls finished jobs and failed attempts up into one row per (minute, queue, type,
outcome) once the minute has settled (see store/core/history.py), so charts of the last hour or
day read a few thousand small rows, survive restarts and the pruning of the jobs themselves.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from durableq.core.errors import InvalidInput

MINUTE = timedelta(minutes=1)


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"  # the job's last attempt failed: it ended failed
    CANCELED = "canceled"
    ERRORED = "errored"  # any failed attempt, retried or not (one per error history entry)


@dataclass(frozen=True)
class MinuteCount:
    """One row of the history: `count` jobs of (queue, type) with `outcome` in `minute`."""

    minute: datetime
    queue: str
    type: str
    outcome: Outcome
    count: int
    duration: float = 0.0  # seconds, summed: started_at to finished_at of the jobs that ran
    wait: float = 0.0  # seconds, summed: run_at to started_at of the jobs that ran


@dataclass(frozen=True)
class RollupReport:
    rolled_up_to: datetime | None = None  # every minute before this is in the history
    minutes: int = 0  # minutes added by this run
    rows: int = 0
    pruned: int = 0


@dataclass(frozen=True)
class Bucket:
    """A chart's bar: the minutes from `start` for one step, summed."""

    start: datetime
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    errored: int = 0
    duration: float = 0.0  # of the completed jobs
    wait: float = 0.0  # of the completed jobs

    @property
    def mean_wait(self) -> float | None:
        return self.wait / self.completed if self.completed else None

    @property
    def mean_duration(self) -> float | None:
        return self.duration / self.completed if self.completed else None


@dataclass(frozen=True)
class Window:
    """A span to chart, ending now, in buckets of `step`."""

    name: str
    span: timedelta
    step: timedelta

    def buckets_since(self, now: datetime) -> datetime:
        """The first bucket's start: so that the last bucket holds the current minute."""
        end = floor_minute(now) + MINUTE
        return end - self.span


WINDOWS = {
    "1h": Window("1h", timedelta(hours=1), timedelta(minutes=1)),
    "24h": Window("24h", timedelta(hours=24), timedelta(minutes=15)),
    "7d": Window("7d", timedelta(days=7), timedelta(hours=2)),
}


def parse_window(text: str) -> Window:
    window = WINDOWS.get(text.strip().lower())
    if window is None:
        raise InvalidInput(f"invalid window {text!r}: use one of {', '.join(WINDOWS)}")
    return window


@dataclass(frozen=True)
class History:
    window: Window
    buckets: list[Bucket]
    rolled_up_to: datetime | None  # minutes from here on are not counted yet

    def total(self, outcome: Outcome) -> int:
        return sum(getattr(bucket, outcome.value) for bucket in self.buckets)


def floor_minute(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def bucketize(
    counts: Iterable[MinuteCount], window: Window, now: datetime, rolled_up_to: datetime | None
) -> History:
    """Sum minute rows into the window's buckets (empty buckets included, oldest first)."""
    since = window.buckets_since(now)
    step = window.step
    n = int(window.span / step)
    sums: list[dict[str, float]] = [{} for _ in range(n)]
    for row in counts:
        index = int((row.minute - since) / step)
        if not 0 <= index < n:
            continue
        bucket = sums[index]
        bucket[row.outcome.value] = bucket.get(row.outcome.value, 0) + row.count
        if row.outcome is Outcome.COMPLETED:
            bucket["duration"] = bucket.get("duration", 0.0) + row.duration
            bucket["wait"] = bucket.get("wait", 0.0) + row.wait
    return History(
        window=window,
        buckets=[
            Bucket(
                start=since + i * step,
                completed=int(sums[i].get("completed", 0)),
                failed=int(sums[i].get("failed", 0)),
                canceled=int(sums[i].get("canceled", 0)),
                errored=int(sums[i].get("errored", 0)),
                duration=sums[i].get("duration", 0.0),
                wait=sums[i].get("wait", 0.0),
            )
            for i in range(n)
        ],
        rolled_up_to=rolled_up_to,
    )
