"""Rolls finished jobs up into the per-minute throughput history (leader only).

Each run adds the minutes that have settled since the last one, so the dashboard's charts lag
real time by about `settle` and cost nothing to draw; and it forgets minutes past their
retention. Any number of daemons may run it at once: the store's compare-and-set writes each
minute once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from durableq.core.config import Settings
from durableq.core.history import RollupReport
from durableq.store.api import Store

log = logging.getLogger("durableq.worker")

ROLLUP_INTERVAL = 15.0
# A job's finish time is read before its transaction commits: at most the wait for the write
# lock (the busy timeout) before, on SQLite. A minute is rolled up only once it ended longer
# ago than that and a safety margin, so no commit still in flight can add to it.
SETTLE_MARGIN = 60.0


class Rollup:
    name = "rollup"
    leader_only = True
    interval = ROLLUP_INTERVAL

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    @property
    def settle(self) -> float:
        return SETTLE_MARGIN + self.settings.busy_timeout

    def run_once(self, now: datetime) -> RollupReport:
        report = self.store.roll_up(now, self.settle, self.settings.retain_history)
        if report.pruned:
            log.info("forgot %d minute(s) of throughput history past retention", report.pruned)
        return report
