"""The owner's side of a lease: by this process's own clock, when each running job must stop.

A lease in the database says until when a job is this worker's. The rescuer of another daemon
takes a job only a grace period after its lease ended (and after its owner's liveness ended too),
so an owner that stops its handler when the lease ends by its own monotonic clock never runs a
job beside its rescuer, even when it cannot reach the database at all: a renewal stuck behind
SQLite's write lock, a starved process. Nothing here waits for the database.

`StopSignal` is the handler's `ctx.cancelled`: an Event that also reads as set once the lease
has lapsed, so a handler that waits on it or polls it stops at the lease's end on its own,
without another thread having to notice in time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime

FOREVER = math.inf


class StopSignal(threading.Event):
    """Set when the job must stop; also set the moment its lease deadline passes.

    `deadline` is a time.monotonic() value; renewals move it later. `on_lapse` runs once, in
    whichever thread first sees the deadline pass, before the signal reads as set.
    """

    def __init__(self, on_lapse: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.deadline = FOREVER
        self._on_lapse = on_lapse
        self._lapse_lock = threading.Lock()

    def lapsed(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.deadline

    def is_set(self) -> bool:
        if super().is_set():
            return True
        if self.lapsed():
            self._lapse()
            return True
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Like Event.wait, returning True early when the lease lapses meanwhile."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.is_set():
                return True
            now = time.monotonic()
            if end is not None and now >= end:
                return False
            limit = self.deadline - now  # read afresh: a renewal may have moved it
            if end is not None:
                limit = min(limit, end - now)
            if super().wait(None if limit == FOREVER else max(0.0, limit)):
                return True

    def _lapse(self) -> None:
        with self._lapse_lock:
            if super().is_set():
                return
            if self._on_lapse is not None:
                self._on_lapse()
            self.set()


class Stamp:
    """A clock that also remembers the monotonic time of its last reading.

    The store reads the time for a renewal only once it holds the write lock; the owner then
    knows the lease it wrote ends `lease` seconds after `mono`, by its own clock.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.mono = time.monotonic()
        self.wall: datetime | None = None

    def __call__(self) -> datetime:
        self.mono = time.monotonic()
        self.wall = self._clock()
        return self.wall
