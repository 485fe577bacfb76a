"""A read that is too slow to repeat on every request, kept and refreshed behind the scenes.

Counting jobs by status scans the table: about 1.3 s at a million jobs here. A dashboard page
or a Prometheus scrape must not pay that each time, nor let many of them pay it at once. A
Snapshot serves its last value at once and, once that value is older than it should be kept,
refreshes it in a background thread (one at a time) while callers keep getting the old one;
only the very first read waits. A read that took t seconds is kept `share` x t (at least
`fresh` seconds), so however big the table grows, refreshing costs the database at most about
1/share of its time. A read that costs little (under `cheap` seconds, as on any small database)
is simply made again once the value is old: stale values are only worth serving to save a
slow read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("durableq.snapshots")
T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(
        self,
        read: Callable[[], T],
        *,
        fresh: float = 1.0,
        share: float = 10.0,
        cheap: float = 0.05,
    ) -> None:
        self._read = read
        self._cheap = cheap
        self._cost = 0.0
        self._fresh, self._share = fresh, share
        self._lock = threading.Lock()
        self._read_done = threading.Condition(self._lock)
        self._value: T | None = None
        self._has_value = False
        self._read_at = 0.0
        self._keep = fresh
        self._refreshing = False

    def get(self) -> T:
        """The last value read (waiting for the first one); starts a refresh when it is old."""
        with self._lock:
            if not self._has_value and self._refreshing:  # the first read is under way: join it
                self._read_done.wait_for(lambda: not self._refreshing)
            if self._has_value:
                old = time.monotonic() - self._read_at >= self._keep
                if not old or self._refreshing:
                    return self._value  # type: ignore[return-value]
                if self._cost >= self._cheap:
                    self._refreshing = True
                    threading.Thread(target=self._refresh, daemon=True).start()
                    return self._value  # type: ignore[return-value]
        return self._read_now()

    def warm(self) -> None:
        """Start the first read behind the scenes (at a server's start), so that no request
        pays for it unless it comes before the read is done."""
        with self._lock:
            if self._has_value or self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh, daemon=True).start()

    def invalidate(self) -> None:
        """The value is known to be wrong (we just changed what it counts): read anew next."""
        with self._lock:
            self._has_value = False

    def ready(self) -> bool:
        """A value has been read (a get will not wait)."""
        with self._lock:
            return self._has_value

    def age(self) -> float:
        return time.monotonic() - self._read_at

    def _read_now(self) -> T:
        started = time.monotonic()
        value = self._read()
        finished = time.monotonic()
        with self._lock:
            self._value, self._has_value = value, True
            self._read_at = finished
            self._cost = finished - started
            self._keep = max(self._fresh, self._share * self._cost)
        return value

    def _refresh(self) -> None:
        try:
            self._read_now()
        except Exception as error:  # keep serving the old value; the next get tries again
            log.warning("refreshing a snapshot failed: %s", error)
        finally:
            with self._lock:
                self._refreshing = False
                self._read_done.notify_all()
