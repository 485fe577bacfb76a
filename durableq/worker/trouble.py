"""One warning per episode of database trouble (a full disk, a lock held for long, a server
away), not one per retry: a daemon backing off for a minute used to log a line every turn."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("durableq.worker")


class Trouble:
    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.retries = 0

    def failed(self, error: Exception) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "%s: database unavailable, retrying with backoff until it works again: %s",
                self.what,
                error,
            )
        else:
            self.retries += 1
            log.debug("%s: database still unavailable: %s", self.what, error)

    def recovered(self) -> None:
        if self.since is None:
            return
        log.info(
            "%s: database available again after %.1fs (%d retries)",
            self.what,
            time.monotonic() - self.since,
            self.retries,
        )
        self.since, self.retries = None, 0
