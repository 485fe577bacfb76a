"""A connection to a ready SQLite database, opened without SQLAlchemy.

A database that exists, is in WAL mode and carries this code's schema revision needs none of
SQLAlchemy's machinery: the CLI's enqueue (sqlite/enqueue.py) and read commands
(`DirectReads`, on sqlite/reads.py) use the same plain-DBAPI statements the store runs, and
skip the import that was most of a command's time. Anything else (no file yet, an older or
newer schema, not SQLite at all) gives None, and the caller takes the full path, which creates,
upgrades or refuses the database with the proper message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from durableq.core.config import Settings
from durableq.store.revision import HEAD_REVISION, VERSION_TABLE
from durableq.store.sqlite.reads import SqliteReads, read_transaction
from durableq.store.sqlite.statements import configure, failure

SQLITE_URL = "sqlite:///"


def open_ready(settings: Settings, busy_timeout: float) -> tuple[sqlite3.Connection, str] | None:
    """A configured connection and the file's path, or None when it needs the full path."""
    path = _ready_file(settings)
    if path is None:
        return None
    try:
        connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
    except sqlite3.Error:
        return None
    if not _configured_and_current(connection, settings.synchronous, busy_timeout):
        connection.close()
        return None
    return connection, path


class DirectReads(SqliteReads):
    """The store's reads on a connection of their own, errors worded as the store words them."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self.connection, self.path = connection, path

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            with read_transaction(self.connection):
                yield self.connection
        except sqlite3.Error as error:
            operational = isinstance(error, sqlite3.OperationalError)
            raise failure(str(error), self.path, operational) from error

    def close(self) -> None:
        self.connection.close()


def open_reads(settings: Settings) -> DirectReads | None:
    opened = open_ready(settings, settings.busy_timeout)
    return None if opened is None else DirectReads(*opened)


def _ready_file(settings: Settings) -> str | None:
    url = settings.database
    if not url.startswith(SQLITE_URL) or "?" in url:
        return None
    path = url.removeprefix(SQLITE_URL)
    return path if path and Path(path).is_file() else None


def _configured_and_current(
    connection: sqlite3.Connection, synchronous: str, busy_timeout: float
) -> bool:
    """Set the connection up as every path does; True if the file is a current durableq DB."""
    try:
        configure(connection, synchronous, busy_timeout=busy_timeout)
        mode = connection.execute("PRAGMA journal_mode").fetchone()
        version = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.Error:  # not a database, no schema yet, ...: the full path says what
        return False
    return bool(mode and str(mode[0]).lower() == "wal" and version and version[0] == HEAD_REVISION)
