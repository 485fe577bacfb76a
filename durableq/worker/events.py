"""An in-process event hook: the worker says what happened, subscribers (logging today; metrics
and the dashboard later) listen, and none of them reaches into the worker.

Subscribers run in the emitting thread and must be quick; one that raises is logged and does
not disturb the worker or the other subscribers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from durableq.core.jobs import ClaimedJob
from durableq.core.outcomes import Finish, Outcome

log = logging.getLogger("durableq.events")


@dataclass(frozen=True)
class JobStarted:
    job: ClaimedJob


@dataclass(frozen=True)
class JobFinished:
    """An execution's outcome was written (or, `stale`, dropped: the job was no longer its)."""

    finish: Finish  # what was written: status, error, run_at, ...
    outcome: Outcome | None  # the handler's run (job, duration, ...); None for a release
    stale: bool
    at: datetime


@dataclass(frozen=True)
class ServiceRan:
    name: str
    report: object
    duration: float


@dataclass(frozen=True)
class Draining:
    """The daemon was told to stop: it claims no more jobs and finishes the running ones
    (an API served beside it stops taking submissions)."""

    worker_id: str


Event = JobStarted | JobFinished | ServiceRan | Draining
Subscriber = Callable[[Event], None]


class Events:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` with every event from now on; returns the unsubscribe function."""
        with self._lock:
            self._subscribers = [*self._subscribers, subscriber]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not subscriber]

        return unsubscribe

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:  # a copy-on-write list: no lock on the hot path
            try:
                subscriber(event)
            except Exception:
                log.exception("an event subscriber failed on %s", type(event).__name__)
