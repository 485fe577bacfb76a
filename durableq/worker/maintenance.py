"""The services of a live daemon, each a `run_once(now)` that returns what it did.

- Heartbeat: renew this worker's leases and liveness; learn which jobs were canceled or lost.
- Leadership (leader.py): take or keep the lead among the daemons on the database.
- Rescuer (leader only): jobs whose worker died go back to pending, or fail.
- Pruner (leader only): delete finished jobs past their retention.
- Reaper (leader only): forget workers that stopped beating long ago.
- ProgressSaver (every daemon): save what running handlers reported, about once a second.
- Rollup (services/rollup.py, leader only): add settled minutes to the throughput history.
- Scheduler (services/scheduler.py, every daemon with schedules): fire recurring jobs' ticks.

The heartbeat and the leadership have a thread of their own: a rescue or a prune waiting for
SQLite's write lock must never hold up a renewal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from durableq.core.builder import JobBuilder
from durableq.core.config import Settings
from durableq.core.jobs import JobStatus
from durableq.core.schedules import Schedule
from durableq.store.api import HeartbeatReport, RescueReport, Store
from durableq.worker.clock_steps import ClockSteps
from durableq.worker.dispatcher import Dispatcher
from durableq.worker.events import Events
from durableq.worker.executor import StopReason
from durableq.worker.leases import Stamp
from durableq.worker.running import Running
from durableq.worker.services.leader import Leadership
from durableq.worker.services.rollup import Rollup
from durableq.worker.services.runner import ServiceRunner
from durableq.worker.services.scheduler import Scheduler

log = logging.getLogger("durableq.worker")

CANCEL_POLL_INTERVAL = 0.5
PRUNE_INTERVAL = 60.0
PRUNE_BATCH = 500  # rows per transaction: a few milliseconds of the write lock at a time
PROGRESS_INTERVAL = 0.5  # each job's reports are saved at most once a second (reporting.py)


class Heartbeat:
    """Renews the leases of this worker's jobs and its liveness; learns of cancels and losses."""

    name = "heartbeat"
    leader_only = False

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        settings: Settings,
        clock: Callable[[], datetime],
        clock_steps: ClockSteps | None = None,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock
        self.clock_steps = clock_steps
        # Often enough to pass cancel requests on within half a second.
        self.interval = min(CANCEL_POLL_INTERVAL, settings.heartbeat_interval)

    def due(self, now_mono: float) -> bool:
        """A renewal is due a heartbeat interval after the last one (a busy worker's turns
        renew too, so then the heartbeat only reads)."""
        return now_mono - self.dispatcher.running.last_renewal >= self.settings.heartbeat_interval

    def run_once(self, now: datetime) -> HeartbeatReport:
        """Renew (reading the clock once the write lock is held) or only read the cancels."""
        now_mono = time.monotonic()
        if self.clock_steps is not None:  # both clocks read together: no delay between them
            self.clock_steps.observe(self.clock(), now_mono)
        dispatcher, running = self.dispatcher, self.dispatcher.running
        tokens = running.tokens()
        if self.due(now_mono):
            stamp = Stamp(self.clock)
            report = self.store.renew(
                dispatcher.worker_id,
                tokens,
                stamp,
                self.settings.lease,
                hurry_at=running.hurry_at(),
            )
            running.renewed({i: tokens[i] for i in report.renewed}, stamp.mono)
        elif tokens:
            report = self.store.poll_cancel_requests(dispatcher.worker_id, tokens)
        else:
            return HeartbeatReport()
        stop_lost(running, {job_id: tokens[job_id] for job_id in report.lost})
        if report.cancel_requested:
            running.stop(report.cancel_requested, StopReason.CANCELED)
        return report


class ProgressSaver:
    """Saves what running handlers reported (progress, metadata), each job at most about once
    a second, in one transaction for all; a job whose lease went elsewhere is stopped."""

    name = "progress"
    leader_only = False
    interval = PROGRESS_INTERVAL

    def __init__(self, store: Store, dispatcher: Dispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher

    def run_once(self, now: datetime) -> int:
        running = self.dispatcher.running
        updates = running.reports_due(time.monotonic())
        if not updates:
            return 0
        try:
            stale = self.store.record_progress(updates, now)
        except BaseException:
            running.reports_unsaved(updates)
            raise
        gone = set(stale)
        stop_lost(running, {u.job_id: u.lease_token for u in updates if u.job_id in gone})
        return len(updates) - len(stale)


def stop_lost(running: Running, held: Mapping[int, str]) -> None:
    """These executions (job id -> the lease token they held) lost their leases: stop the ones
    still running under that token. A job that finished meanwhile is not lost, just done."""
    current = running.tokens()
    lost = frozenset(job_id for job_id, token in held.items() if current.get(job_id) == token)
    if lost:
        log.warning("lost the lease of job(s) %s; their outcomes will be dropped", sorted(lost))
        running.stop(lost, StopReason.LOST)


class Rescuer:
    """Jobs whose worker died go back to pending (or fail); run by the leader."""

    name = "rescuer"
    leader_only = True

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock_steps: ClockSteps | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.interval = settings.heartbeat_interval
        self.monotonic = monotonic
        self.clock_steps = clock_steps or clock_steps_for(settings)

    def run_once(self, now: datetime) -> RescueReport:
        if self.clock_steps.holding(now, self.monotonic()):
            return RescueReport()
        report = self.store.rescue_expired(now, self.settings.rescue_grace)
        if report.total:
            log.warning(
                "rescued jobs of dead workers: requeued %s, failed %s, canceled %s",
                report.requeued,
                report.failed,
                report.canceled,
            )
        if report.spared:
            log.info("left job(s) %s alone: leases ended, owners still beating", report.spared)
        return report


def clock_steps_for(settings: Settings) -> ClockSteps:
    # A step smaller than half the grace cannot make a live owner's lease look lapsed.
    return ClockSteps(settings.rescue_grace / 2, hold=settings.lease)


class Pruner:
    """Finished jobs older than their status's retention go, with their error history, in
    small transactions so that no producer or worker waits long for the write lock."""

    name = "pruner"
    leader_only = True
    interval = PRUNE_INTERVAL

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def retention(self) -> dict[JobStatus, float]:
        settings = self.settings
        kept = {
            JobStatus.COMPLETED: settings.retain_completed,
            JobStatus.FAILED: settings.retain_failed,
            JobStatus.CANCELED: settings.retain_canceled,
        }
        return {status: seconds for status, seconds in kept.items() if seconds > 0}

    def run_once(self, now: datetime) -> dict[JobStatus, int]:
        pruned = {
            status: self.store.purge(now - timedelta(seconds=s), [status], PRUNE_BATCH)
            for status, s in self.retention().items()
        }
        if any(pruned.values()):
            counts = ", ".join(f"{n} {status.value}" for status, n in pruned.items() if n)
            log.info("pruned finished jobs past their retention: %s", counts)
        return pruned


class Reaper:
    """Forgets workers that stopped beating long ago (their rows, not their jobs)."""

    name = "reaper"
    leader_only = True
    interval = PRUNE_INTERVAL

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def run_once(self, now: datetime) -> int:
        settings = self.settings
        return self.store.prune_workers(now, settings.worker_stale_after, settings.lease)


class Maintenance:
    """The daemon's services in three runners: the heartbeat (lease renewals), the leadership,
    and the leader-only rescuer, rollup, pruner and reaper, each in a thread of its own."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        settings: Settings,
        clock: Callable[[], datetime],
        events: Events | None = None,
        schedules: Sequence[Schedule] = (),
    ) -> None:
        steps = clock_steps_for(settings)
        self.heartbeat = Heartbeat(store, dispatcher, settings, clock, steps)
        self.leadership = Leadership(store, dispatcher.worker_id, settings, clock)
        self.rescuer = Rescuer(store, settings, steps)
        self.pruner = Pruner(store, settings)
        self.reaper = Reaper(store, settings)
        self.rollup = Rollup(store, settings)
        self.progress = ProgressSaver(store, dispatcher)
        # Not leader-only: a daemon fires the schedules it knows (see services/scheduler.py).
        self.scheduler = Scheduler(store, JobBuilder(settings, clock), schedules)
        self.runners = [
            # Lease renewals in a thread of their own: a leadership write stuck behind a lock
            # hog for 2.4 s (measured, test_overload) kept the renewal after it from running.
            ServiceRunner("heartbeat", [self.heartbeat], clock, events=events),
            ServiceRunner("leadership", [self.leadership], clock, events=events),
            ServiceRunner(
                "upkeep",
                [
                    self.progress,
                    self.rescuer,
                    self.rollup,
                    self.pruner,
                    self.reaper,
                    *([self.scheduler] if schedules else []),
                ],
                clock,
                leads=self.leadership.leads,
                events=events,
            ),
        ]

    def start(self) -> None:
        for runner in self.runners:
            runner.start()

    def stop(self) -> None:
        for runner in self.runners:
            runner.stop()
        self.leadership.resign()
