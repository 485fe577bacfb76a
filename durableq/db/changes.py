"""Noticing that another process committed, cheaply, so an idle worker need not poll the claim.

SQLite: `PRAGMA data_version` on a connection of its own changes whenever another connection
commits; reading it costs microseconds. PostgreSQL: enqueues NOTIFY and the watcher LISTENs.
"""

from __future__ import annotations

import select as io_select
import sqlite3
import time
from typing import Any, Protocol

from sqlalchemy import Engine


class ChangeWatcher(Protocol):
    def changed(self) -> bool:
        """True when another connection may have committed since the last call. Never blocks."""
        ...

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True as soon as the database may have new work."""
        ...

    def close(self) -> None: ...


class SqliteDataVersionWatcher:
    def __init__(self, path: str, check_interval: float) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._interval = check_interval
        self._version = self._read()

    def _read(self) -> int:
        row = self._connection.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def changed(self) -> bool:
        version = self._read()
        if version == self._version:
            return False
        self._version = version
        return True

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.changed():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self._interval, remaining))

    def close(self) -> None:
        self._connection.close()


class PostgresNotifyWatcher:
    def __init__(self, engine: Engine) -> None:
        import psycopg

        url = engine.url.set(drivername="postgresql")
        self._connection: Any = psycopg.connect(
            url.render_as_string(hide_password=False), autocommit=True
        )
        self._connection.execute("LISTEN durableq_jobs")

    def changed(self) -> bool:
        return self.wait(0)

    def wait(self, timeout: float) -> bool:
        readable, _, _ = io_select.select([self._connection.fileno()], [], [], timeout)
        if not readable:
            return False
        # Drain everything queued: one wake-up per burst of enqueues is enough.
        self._connection.execute("SELECT 1")
        for _ in self._connection.notifies(timeout=0):
            pass
        return True

    def close(self) -> None:
        self._connection.close()


def watcher_for(engine: Engine, check_interval: float = 0.005) -> ChangeWatcher:
    if engine.dialect.name == "sqlite":
        assert engine.url.database is not None
        return SqliteDataVersionWatcher(engine.url.database, check_interval)
    return PostgresNotifyWatcher(engine)
