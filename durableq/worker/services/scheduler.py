"""The scheduler: fires the recurring jobs this daemon's registry declares, on every daemon.

Every daemon runs it, not only the leader: a daemon fires only schedules it knows, so a leader
started without the app cannot stop them, and exactly-once per tick comes from the store's
compare-and-set (store/core/schedules.py), not from leadership. Each round reads the schedules'
next ticks (one small read) and fires the due ones, each schedule in its own transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from durableq.core.builder import JobBuilder
from durableq.core.errors import QueueFull
from durableq.core.jobs import JobKeys, NewJob
from durableq.core.schedules import Schedule
from durableq.store.api import Store
from durableq.store.core.schedules import SCHEDULE_SEEN_EVERY

log = logging.getLogger("durableq.worker")

SCHEDULER_INTERVAL = 1.0  # seconds: how late a tick may start, at most, with a daemon up


@dataclass
class SchedulerReport:
    fired: dict[str, tuple[int, ...]] = field(default_factory=dict)  # name -> new job ids
    lost: list[str] = field(default_factory=list)  # another daemon fired them first
    skipped_overlap: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)  # the queue was full: tried again


class Scheduler:
    name = "scheduler"
    leader_only = False
    interval = SCHEDULER_INTERVAL

    def __init__(self, store: Store, builder: JobBuilder, schedules: Sequence[Schedule]) -> None:
        self.store = store
        self.builder = builder
        self.schedules = list(schedules)
        self._declared_at: float | None = None
        self._full_warned: set[tuple[str, datetime]] = set()

    def run_once(self, now: datetime) -> SchedulerReport:
        report = SchedulerReport()
        mono = time.monotonic()
        if self._declared_at is None or mono - self._declared_at >= SCHEDULE_SEEN_EVERY:
            self.store.declare_schedules(self.schedules, now)
            self._declared_at = mono
        next_runs = self.store.schedule_next_runs()
        for schedule in self.schedules:
            expected = next_runs.get(schedule.name)
            if expected is None or expected > now:
                continue
            self._fire(schedule, expected, now, report)
        return report

    def _fire(
        self, schedule: Schedule, expected: datetime, now: datetime, report: SchedulerReport
    ) -> None:
        ticks = schedule.due(expected, now)
        jobs = [self._job(schedule, tick) for tick in ticks]
        try:
            fired = self.store.fire_schedule(
                schedule.name,
                expected,
                schedule.next_after(now),
                jobs,
                schedule.no_overlap,
                now,
            )
        except QueueFull as error:
            # The tick stays due and is tried again next round; one warning per tick.
            if (schedule.name, expected) not in self._full_warned:
                self._full_warned.add((schedule.name, expected))
                log.warning("schedule %s: tick held back: %s", schedule.name, error)
            report.held_back.append(schedule.name)
            return
        if not fired.won:
            report.lost.append(schedule.name)
        elif fired.skipped_overlap:
            log.info("schedule %s: tick skipped, its previous job is still working", schedule.name)
            report.skipped_overlap.append(schedule.name)
        elif fired.job_ids:
            report.fired[schedule.name] = fired.job_ids
            log.info(
                "schedule %s fired job(s) %s for %s",
                schedule.name,
                ", ".join(map(str, fired.job_ids)),
                ", ".join(tick.isoformat() for tick in ticks),
            )

    def _job(self, schedule: Schedule, tick: datetime) -> NewJob:
        job = self.builder.new_job(
            schedule.type,
            schedule.payload,
            queue=schedule.queue,
            priority=schedule.priority,
            max_attempts=schedule.max_attempts,
            timeout=schedule.timeout,
        )
        return replace(job, keys=JobKeys(schedule=schedule.name, schedule_tick=tick))
