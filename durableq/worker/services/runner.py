"""Background work as services: each a name, an interval, whether only the leader runs it, and a
`run_once(now)` that returns a report. A runner gives each its own schedule in one thread and
isolates their failures: one that raises is logged and tried again at its next interval, and
never stops the others. The daemon runs two runners, so that a service waiting for SQLite's
write lock (a rescue, a prune) can never hold up the heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from durableq.core.errors import DatabaseError
from durableq.worker.events import Events, ServiceRan
from durableq.worker.trouble import Trouble

log = logging.getLogger("durableq.worker")

LEADER_RECHECK = 0.5  # seconds: how soon a follower looks again whether it now leads


class Service(Protocol):
    name: str
    interval: float  # seconds between runs
    leader_only: bool

    def run_once(self, now: datetime) -> object:
        """Do one round of the work; the report says what it did (for logs, events, tests)."""
        ...


@dataclass
class _Scheduled:
    service: Service
    next_at: float = 0.0  # time.monotonic(); 0: at once


class ServiceRunner:
    def __init__(
        self,
        name: str,
        services: Sequence[Service],
        clock: Callable[[], datetime],
        leads: Callable[[], bool] = lambda: True,
        events: Events | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.leads = leads
        self.events = events
        self._schedule = [_Scheduled(service) for service in services]
        self._stop = threading.Event()
        self._trouble: dict[str, Trouble] = {}
        self._thread = threading.Thread(target=self._run, name=f"durableq-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_due(self) -> dict[str, object]:
        """Run every service whose time has come (and, if leader-only, only while leading)."""
        reports: dict[str, object] = {}
        for entry in self._schedule:
            now_mono = time.monotonic()
            if now_mono < entry.next_at or self._stop.is_set():
                continue
            service = entry.service
            if service.leader_only and not self.leads():
                # Soon again: this daemon may be elected any moment (at start, at a takeover).
                entry.next_at = now_mono + min(service.interval, LEADER_RECHECK)
                continue
            entry.next_at = now_mono + service.interval
            reports[service.name] = self._guarded(service)
        return reports

    def _guarded(self, service: Service) -> object:
        started = time.monotonic()
        trouble = self._trouble.setdefault(service.name, Trouble(service.name))
        try:
            report = service.run_once(self.clock())
        except DatabaseError as error:
            trouble.failed(error)
            return error
        except Exception as error:  # a bug in one service must not stop the others
            log.exception("%s failed; retrying", service.name)
            return error
        trouble.recovered()
        if self.events is not None:
            self.events.emit(ServiceRan(service.name, report, time.monotonic() - started))
        return report

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            upcoming = min((e.next_at for e in self._schedule), default=time.monotonic() + 1)
            self._stop.wait(max(0.0, upcoming - time.monotonic()))
