"""PostgreSQL's wake-up: producers NOTIFY durableq_jobs in their transaction, the watcher LISTENs
on a connection of its own, whose socket becomes readable on a notify.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from durableq.store.changes import SAFETY_RECHECK

CHANNEL = "durableq_jobs"


class PostgresNotifyWatcher:
    def __init__(self, engine: Engine) -> None:
        import psycopg

        url = engine.url.set(drivername="postgresql")
        self._connection: Any = psycopg.connect(
            url.render_as_string(hide_password=False), autocommit=True
        )
        self._connection.execute(f"LISTEN {CHANNEL}")

    def fileno(self) -> int | None:
        return int(self._connection.fileno())

    def next_check(self) -> float:
        return SAFETY_RECHECK

    def changed(self) -> bool:
        found = False
        for _ in self._connection.notifies(timeout=0):
            found = True
        return found

    def close(self) -> None:
        self._connection.close()
