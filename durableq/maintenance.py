"""Background duties of a live daemon, each a `run_once(now)` that returns what it did.

- Heartbeat: renew this worker's leases and liveness; learn which jobs were canceled or lost.
- Rescuer: jobs whose worker died (lease expired) go back to pending, or fail when out of attempts.
- Pruner: forget workers that stopped beating long ago.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from durableq.config import Settings
from durableq.db.repository import HeartbeatReport, Repository, RescueReport
from durableq.dispatcher import Dispatcher
from durableq.errors import DatabaseError
from durableq.executor import StopReason

log = logging.getLogger("durableq.worker")

CANCEL_POLL_INTERVAL = 0.5


class Heartbeat:
    def __init__(self, repository: Repository, dispatcher: Dispatcher, settings: Settings) -> None:
        self.repository = repository
        self.dispatcher = dispatcher
        self.settings = settings

    def run_once(self, now: datetime, renew: bool) -> HeartbeatReport:
        tokens = self.dispatcher.running_tokens()
        if renew:
            report = self.repository.heartbeat(
                self.dispatcher.worker_id, tokens, now, self.settings.lease
            )
        elif tokens:
            report = self.repository.poll_cancel_requests(self.dispatcher.worker_id, tokens)
        else:
            return HeartbeatReport()
        # Jobs that finished while the report was read are not lost, just done.
        current = self.dispatcher.running_tokens()
        lost = {job_id for job_id in report.lost if current.get(job_id) == tokens[job_id]}
        if lost:
            log.warning("lost the lease of job(s) %s; their outcomes will be dropped", sorted(lost))
            self.dispatcher.stop_jobs(frozenset(lost), StopReason.LOST)
        if report.cancel_requested:
            self.dispatcher.stop_jobs(report.cancel_requested, StopReason.CANCELED)
        return report


class Rescuer:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def run_once(self, now: datetime) -> RescueReport:
        report = self.repository.rescue_expired(now)
        if report.total:
            log.warning(
                "rescued jobs of dead workers: requeued %s, failed %s, canceled %s",
                report.requeued,
                report.failed,
                report.canceled,
            )
        return report


class Pruner:
    def __init__(self, repository: Repository, settings: Settings) -> None:
        self.repository = repository
        self.settings = settings

    def run_once(self, now: datetime) -> int:
        settings = self.settings
        return self.repository.prune_workers(now, settings.worker_stale_after, settings.lease)


class Maintenance:
    """Runs the duties on their schedules in one thread until stopped."""

    def __init__(
        self,
        repository: Repository,
        dispatcher: Dispatcher,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.heartbeat = Heartbeat(repository, dispatcher, settings)
        self.rescuer = Rescuer(repository)
        self.pruner = Pruner(repository, settings)
        self.settings = settings
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="durableq-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        every = self.settings.heartbeat_interval
        next_beat = next_rescue = next_prune = 0.0
        while not self._stop.is_set():
            now_mono = time.monotonic()
            renew = now_mono >= next_beat
            try:
                self.heartbeat.run_once(self.clock(), renew)
                if renew:
                    next_beat = now_mono + every
                if now_mono >= next_rescue:
                    self.rescuer.run_once(self.clock())
                    next_rescue = now_mono + every
                if now_mono >= next_prune:
                    self.pruner.run_once(self.clock())
                    next_prune = now_mono + 60
            except DatabaseError as error:
                log.warning("maintenance: database unavailable, will retry: %s", error)
            except Exception:  # a bug here must not silently stop heartbeats
                log.exception("maintenance failed; retrying")
            self._stop.wait(min(CANCEL_POLL_INTERVAL, every))
