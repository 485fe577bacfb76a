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
from typing import Any

FOREVER = math.inf


# Makes a StopSignal's Condition on first use, and runs its lapse once (both rare).
_SIGNALS_LOCK = threading.RLock()  # re-entered: a lapse sets the signal, which may make it


class StopSignal(threading.Event):
    """Set when the job must stop; also set the moment its lease deadline passes.

    `deadline` is a time.monotonic() value; renewals move it later. `on_lapse` runs once, in
    whichever thread first sees the deadline pass, before the signal reads as set.

    A threading.Event whose Condition is made on first use (a wait, a set): most quick jobs
    never need one, and making it for every job was a tenth of the dispatcher's thread at 16
    slots (py-spy).
    """

    def __init__(self, on_lapse: Callable[[], None] | None = None) -> None:
        # Event.__init__ without its Condition; Event's methods read _flag and _cond.
        self._flag = False
        self.deadline = FOREVER
        self._on_lapse = on_lapse

    def __getattr__(self, name: str) -> Any:
        if name != "_cond":
            raise AttributeError(name)
        with _SIGNALS_LOCK:  # one Condition, however many threads ask at once
            made: threading.Condition | None = self.__dict__.get("_cond")
            if made is None:
                made = self.__dict__["_cond"] = threading.Condition(threading.Lock())
        return made

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
        with _SIGNALS_LOCK:
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
