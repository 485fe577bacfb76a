"""This daemon's side of leadership: take or keep the lead, and know when to stop believing it.

The lead lasts LEAD_SHARE of the job lease and is renewed every heartbeat interval, so a leader
may miss one renewal, and a follower takes over within one job lease of the leader's death. The
leader believes it leads only until its lease's end by its own monotonic clock, read before the
time it wrote: its belief ends no later than the lease in the database, after which alone a
follower may take over. So two daemons never both believe they lead (on one clock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from durableq.core.config import Settings
from durableq.store.api import Store

log = logging.getLogger("durableq.worker")

LEAD_SHARE = 2 / 3


class Leadership:
    name = "leadership"
    leader_only = False

    def __init__(
        self,
        store: Store,
        worker_id: str,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.clock = clock
        self.interval = settings.heartbeat_interval
        self.lease = settings.lease * LEAD_SHARE
        self.term: int | None = None
        self._until = 0.0
        self._lock = threading.Lock()

    def leads(self) -> bool:
        with self._lock:
            return self.term is not None and time.monotonic() < self._until

    def run_once(self, now: datetime) -> int | None:
        """Take or renew the lead; the term led, or None. Reads its own clocks (see above)."""
        mono = time.monotonic()  # before the wall clock: the belief must not outlast the row
        try:
            term = self.store.take_lead(self.worker_id, self.clock(), self.lease)
        except Exception:
            self._lose("the database could not be reached")
            raise
        with self._lock:
            previous = self.term
            if term is not None:
                self.term, self._until = term, mono + self.lease
        if term is None:
            self._lose("another daemon leads")
        elif term != previous:
            log.info("worker %s leads (term %d)", self.worker_id, term)
        return term

    def resign(self) -> None:
        """On a graceful stop: hand the lead over at once instead of after its lease."""
        if self.term is None:
            return
        with self._lock:
            self.term = None
        try:
            self.store.resign_lead(self.worker_id)
        except Exception as error:  # the lead then simply expires
            log.warning("could not resign the lead: %s", error)

    def _lose(self, why: str) -> None:
        with self._lock:
            had, self.term, self._until = self.term, None, 0.0
        if had is not None:
            log.info("worker %s no longer leads (term %d): %s", self.worker_id, had, why)
