"""Enqueue into a ready SQLite database without importing SQLAlchemy.

Importing SQLAlchemy is most of the half second a `durableq enqueue` call used to take. A
database that exists, is in WAL mode and carries this code's schema revision needs none of it:
the insert is the same plain-DBAPI statement the store uses (sqlite/statements.py). Anything else
(no file yet, an older or newer schema, not SQLite at all) returns None, and the caller takes
the full path, which creates, upgrades or refuses the database with the proper message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from durableq.core.config import Settings
from durableq.core.jobs import NewJob
from durableq.core.uniqueness import Enqueued
from durableq.store.revision import HEAD_REVISION, VERSION_TABLE
from durableq.store.sqlite.inserts import insert_jobs
from durableq.store.sqlite.statements import configure, failure, write_transaction

SQLITE_URL = "sqlite:///"


def enqueue_quickly(settings: Settings, jobs: Sequence[NewJob], now: datetime) -> Enqueued | None:
    """The new jobs' ids, or None when this database needs the full path."""
    path = _ready_file(settings)
    if path is None:
        return None
    try:
        connection = sqlite3.connect(path, timeout=0)
    except sqlite3.Error:
        return None
    try:
        if not _configured_and_current(connection, settings.synchronous):
            return None
        try:
            with write_transaction(connection, settings.busy_timeout, toggle=False):
                return insert_jobs(connection, jobs, now)
        except sqlite3.Error as error:
            operational = isinstance(error, sqlite3.OperationalError)
            raise failure(str(error), path, operational) from error
    finally:
        connection.close()


def _ready_file(settings: Settings) -> str | None:
    url = settings.database
    if not url.startswith(SQLITE_URL) or "?" in url:
        return None
    path = url.removeprefix(SQLITE_URL)
    return path if path and Path(path).is_file() else None


def _configured_and_current(connection: sqlite3.Connection, synchronous: str) -> bool:
    """Set the connection up as every path does; True if the file is a current durableq DB."""
    try:
        # No busy handler: begin_immediate waits for the write lock itself.
        configure(connection, synchronous, busy_timeout=0)
        mode = connection.execute("PRAGMA journal_mode").fetchone()
        version = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.Error:  # not a database, no schema yet, ...: the full path says what
        return False
    return bool(mode and str(mode[0]).lower() == "wal" and version and version[0] == HEAD_REVISION)
