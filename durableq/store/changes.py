"""Noticing that another process committed, without polling the claim query or burning CPU.

Each store gives a watcher of its own (sqlite/changes.py: inotify and data_version;
postgres/changes.py: LISTEN/NOTIFY). A watcher exposes `fileno()` (or None) so that the
dispatcher can sleep in one select() on it and on its own doorbell.
"""

from __future__ import annotations

import select
import time
from typing import Protocol

SAFETY_RECHECK = 0.25  # even with a descriptor to wait on, confirm this often


class ChangeWatcher(Protocol):
    def fileno(self) -> int | None:
        """A descriptor that becomes readable when something may have changed, if any."""
        ...

    def changed(self) -> bool:
        """True when another connection committed since the last call. Never blocks."""
        ...

    def next_check(self) -> float:
        """The longest to sleep (on fileno(), if any) before calling changed() again."""
        ...

    def close(self) -> None: ...


def wait_for_change(watcher: ChangeWatcher, timeout: float) -> bool:
    """Block up to `timeout` seconds; True as soon as the database changed."""
    deadline = time.monotonic() + timeout
    descriptor = watcher.fileno()
    while True:
        if watcher.changed():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        step = min(watcher.next_check(), remaining)
        if descriptor is None:
            time.sleep(step)
        else:
            select.select([descriptor], [], [], step)
