"""Enqueue into a ready SQLite database without importing SQLAlchemy (see sqlite/ready.py):
the insert is the same plain-DBAPI statement the store uses (sqlite/inserts.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from durableq.core.config import Settings
from durableq.core.jobs import NewJob
from durableq.core.uniqueness import Enqueued
from durableq.store.sqlite.inserts import insert_jobs
from durableq.store.sqlite.ready import open_ready
from durableq.store.sqlite.statements import failure, write_transaction
from durableq.store.sqlite.turns import leave_turns, relax_sync, turns_for


def enqueue_quickly(settings: Settings, jobs: Sequence[NewJob], now: datetime) -> Enqueued | None:
    """The new jobs' ids, or None when this database needs the full path."""
    # No busy handler: begin_immediate waits for the write lock itself.
    opened = open_ready(settings, busy_timeout=0)
    if opened is None:
        return None
    connection, path = opened
    turns = turns_for(path)
    try:
        flush = relax_sync(connection)
        with write_transaction(connection, settings.busy_timeout, False, None, turns, flush):
            return insert_jobs(connection, jobs, now)
    except sqlite3.Error as error:
        operational = isinstance(error, sqlite3.OperationalError)
        raise failure(str(error), path, operational) from error
    finally:
        connection.close()
        leave_turns(turns)
