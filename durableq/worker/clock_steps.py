"""Noticing that the wall clock stepped (NTP, a resumed VM, an operator's `date -s`).

Leases are written in wall-clock time; a rescuer reads them in wall-clock time. When the clock
jumps forward past a lease, every running job's lease looks expired at once, and its owner's
liveness as stale, although every owner is alive and renewing. Rescuing then would run every
running job a second time. A daemon measures the offset between its wall clock and its
monotonic clock on each look; when that offset moves by more than a margin, the clock stepped,
and rescues wait one lease (by the monotonic clock), long enough for every live owner to renew
its leases in the new time. A backward step only makes leases look longer: nothing to hold.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime

log = logging.getLogger("durableq.worker")


class ClockSteps:
    def __init__(self, margin: float, hold: float) -> None:
        self.margin = margin  # seconds of disagreement that count as a step
        self.hold = hold  # seconds (monotonic) to hold rescues after one
        self._offset: float | None = None
        self._held_until = -math.inf
        self._lock = threading.Lock()  # the heartbeat's thread and the rescuer's both look
        self.steps = 0

    def holding(self, wall: datetime, mono: float) -> bool:
        """Look at the clocks; True while rescues should wait after a step."""
        self.observe(wall, mono)
        with self._lock:
            return mono < self._held_until

    def observe(self, wall: datetime, mono: float) -> None:
        """Look at the clocks. Every daemon looks often (its heartbeat does), not only the
        leader: a step that makes the leader's own lease look lapsed elects another daemon,
        whose first rescue must know of the step too."""
        offset = wall.timestamp() - mono
        with self._lock:
            previous, self._offset = self._offset, offset
            stepped = previous is not None and abs(offset - previous) > self.margin
            if stepped:
                self.steps += 1
                self._held_until = max(self._held_until, mono + self.hold)
        if stepped:
            assert previous is not None
            log.warning(
                "the wall clock stepped %+.1fs; holding rescues for %gs so that live workers "
                "renew their leases first",
                offset - previous,
                self.hold,
            )
