"""Background duties of a live daemon, each a `run_once` that returns what it did.

- Heartbeat: renew this worker's leases and liveness; learn which jobs were canceled or lost.
- Rescuer: jobs whose worker died (lease and liveness expired) go back to pending, or fail.
- Pruner: delete finished jobs past their retention (completed, failed, canceled).
- Reaper: forget workers that stopped beating long ago.

The heartbeat has a thread of its own: a rescue or a prune waiting for SQLite's write lock must
never hold up a renewal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from durableq.config import Settings
from durableq.db.repository import HeartbeatReport, Repository, RescueReport
from durableq.dispatcher import Dispatcher
from durableq.errors import DatabaseError
from durableq.executor import StopReason
from durableq.jobs import JobStatus
from durableq.leases import Stamp

log = logging.getLogger("durableq.worker")

CANCEL_POLL_INTERVAL = 0.5
PRUNE_INTERVAL = 60.0
PRUNE_BATCH = 500  # rows per transaction: a few milliseconds of the write lock at a time


class Heartbeat:
    def __init__(
        self,
        repository: Repository,
        dispatcher: Dispatcher,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.repository = repository
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock

    def due(self, now_mono: float) -> bool:
        """A renewal is due a heartbeat interval after the last one (a busy worker's turns
        renew too, so then the heartbeat only reads)."""
        return now_mono - self.dispatcher.last_renewal >= self.settings.heartbeat_interval

    def run_once(self, now_mono: float) -> HeartbeatReport:
        dispatcher = self.dispatcher
        tokens = dispatcher.running_tokens()
        if self.due(now_mono):
            stamp = Stamp(self.clock)
            report = self.repository.renew(
                dispatcher.worker_id,
                tokens,
                stamp,
                self.settings.lease,
                hurry_at=dispatcher.hurry_at(),
            )
            dispatcher.renewed({i: tokens[i] for i in report.renewed}, stamp.mono)
        elif tokens:
            report = self.repository.poll_cancel_requests(dispatcher.worker_id, tokens)
        else:
            return HeartbeatReport()
        # Jobs that finished while the report was read are not lost, just done.
        current = dispatcher.running_tokens()
        lost = {job_id for job_id in report.lost if current.get(job_id) == tokens[job_id]}
        if lost:
            log.warning("lost the lease of job(s) %s; their outcomes will be dropped", sorted(lost))
            dispatcher.stop_jobs(frozenset(lost), StopReason.LOST)
        if report.cancel_requested:
            dispatcher.stop_jobs(report.cancel_requested, StopReason.CANCELED)
        return report


class Rescuer:
    def __init__(self, repository: Repository, settings: Settings) -> None:
        self.repository = repository
        self.settings = settings

    def run_once(self, now: datetime) -> RescueReport:
        report = self.repository.rescue_expired(now, self.settings.rescue_grace)
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


class Pruner:
    """Finished jobs older than their status's retention go, with their error history, in
    small transactions so that no producer or worker waits long for the write lock."""

    def __init__(self, repository: Repository, settings: Settings) -> None:
        self.repository = repository
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
            status: self.repository.purge(now - timedelta(seconds=s), [status], PRUNE_BATCH)
            for status, s in self.retention().items()
        }
        if any(pruned.values()):
            counts = ", ".join(f"{n} {status.value}" for status, n in pruned.items() if n)
            log.info("pruned finished jobs past their retention: %s", counts)
        return pruned


class Reaper:
    """Forgets workers that stopped beating long ago (their rows, not their jobs)."""

    def __init__(self, repository: Repository, settings: Settings) -> None:
        self.repository = repository
        self.settings = settings

    def run_once(self, now: datetime) -> int:
        settings = self.settings
        return self.repository.prune_workers(now, settings.worker_stale_after, settings.lease)


class Maintenance:
    """Runs the duties on their schedules until stopped: the heartbeat in a thread of its own,
    the rescuer, the pruner and the reaper in another."""

    def __init__(
        self,
        repository: Repository,
        dispatcher: Dispatcher,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.heartbeat = Heartbeat(repository, dispatcher, settings, clock)
        self.rescuer = Rescuer(repository, settings)
        self.pruner = Pruner(repository, settings)
        self.reaper = Reaper(repository, settings)
        self.settings = settings
        self.clock = clock
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._beat, name="durableq-heartbeat", daemon=True),
            threading.Thread(target=self._upkeep, name="durableq-rescuer", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _beat(self) -> None:
        wait = min(CANCEL_POLL_INTERVAL, self.settings.heartbeat_interval)
        while not self._stop.is_set():
            self._guarded("heartbeat", lambda: self.heartbeat.run_once(time.monotonic()))
            self._stop.wait(wait)

    def _upkeep(self) -> None:
        every = self.settings.heartbeat_interval
        next_prune = 0.0
        while not self._stop.is_set():
            self._guarded("rescuer", lambda: self.rescuer.run_once(self.clock()))
            if time.monotonic() >= next_prune:
                self._guarded("pruner", lambda: self.pruner.run_once(self.clock()))
                self._guarded("reaper", lambda: self.reaper.run_once(self.clock()))
                next_prune = time.monotonic() + PRUNE_INTERVAL
            self._stop.wait(every)

    @staticmethod
    def _guarded(name: str, duty: Callable[[], object]) -> None:
        try:
            duty()
        except DatabaseError as error:
            log.warning("%s: database unavailable, will retry: %s", name, error)
        except Exception:  # a bug here must not silently stop heartbeats
            log.exception("%s failed; retrying", name)
