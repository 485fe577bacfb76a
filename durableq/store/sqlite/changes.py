"""SQLite's wake-up: on Linux an inotify watch on the database's directory wakes the worker when
the WAL file is written (a commit), and `PRAGMA data_version` on a connection of its own confirms
that another connection committed. Elsewhere the data_version check is polled every few ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from durableq.store.changes import SAFETY_RECHECK

RECHECK_WINDOW = 0.05
RECHECK_INTERVAL = 0.001


class SqliteChangeWatcher:
    def __init__(self, path: str, poll_interval: float = 0.005) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._version = self._read()
        self._inotify = _DirectoryWatch.open(Path(path))
        self._poll_interval = poll_interval
        self._recheck_until = 0.0

    def _read(self) -> int:
        row = self._connection.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def fileno(self) -> int | None:
        return None if self._inotify is None else self._inotify.fd

    def changed(self) -> bool:
        written = self._inotify is not None and self._inotify.drain()
        version = self._read()
        if version == self._version:
            if written:
                # A commit writes the WAL (which inotify sees) before it publishes itself in
                # the shared-memory index (which it does not): look again in a moment.
                self._recheck_until = time.monotonic() + RECHECK_WINDOW
            return False
        self._version = version
        return True

    def next_check(self) -> float:
        if self._inotify is None:
            return self._poll_interval
        if time.monotonic() < self._recheck_until:
            return RECHECK_INTERVAL
        return SAFETY_RECHECK

    def close(self) -> None:
        self._connection.close()
        if self._inotify is not None:
            self._inotify.close()


class _DirectoryWatch:
    """inotify through libc: the database directory's writes, creations and renames."""

    IN_MODIFY = 0x00000002
    IN_CLOSE_WRITE = 0x00000008
    IN_MOVED_TO = 0x00000080
    IN_CREATE = 0x00000100
    IN_NONBLOCK = 0o4000
    IN_CLOEXEC = 0o2000000

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, database: Path) -> _DirectoryWatch | None:
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(cls.IN_NONBLOCK | cls.IN_CLOEXEC)
        if fd < 0:
            return None
        mask = cls.IN_MODIFY | cls.IN_CLOSE_WRITE | cls.IN_MOVED_TO | cls.IN_CREATE
        if libc.inotify_add_watch(fd, os.fsencode(database.parent), mask) < 0:
            os.close(fd)
            return None
        return cls(fd)

    def drain(self) -> bool:
        """Consume pending events; True if there were any."""
        found = False
        while True:
            try:
                if not os.read(self.fd, 65536):
                    return found
                found = True
            except BlockingIOError:
                return found
            except OSError as error:
                if error.errno != errno.EINTR:
                    return found

    def close(self) -> None:
        os.close(self.fd)


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            library = ctypes.CDLL(name, use_errno=True)
            library.inotify_init1  # noqa: B018 - probe: absent off Linux
            library.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        except (OSError, AttributeError, TypeError):
            _LIBC = False
        else:
            _LIBC = library
    return _LIBC or None
