"""One timestamp codec: the SQLite store's plain-DBAPI writes and SQLAlchemy's (the Core
operations, through schema.UTCDateTime) must store identical rows.

Timestamps are compared as text in `run_at <= :now`, so a format that differed by one character
between the two paths would make jobs due too early or never.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from durableq.client import Client
from durableq.store import timestamps
from durableq.store.postgres.enqueue import new_row
from durableq.store.schema import jobs_table


def _raw_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT queue, type, payload, status, priority, attempts, max_attempts, timeout,"
            " run_at, created_at, cancel_requested FROM jobs ORDER BY id"
        ).fetchall()


def test_fast_and_core_inserts_store_the_same_text(client: Client, db_path: Path) -> None:
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        datetime(2026, 6, 1, 17, 0, tzinfo=timezone(timedelta(hours=2))),  # stored as UTC
    ]
    for moment in moments:
        job = client.new_job("noop", {"k": "v"}, priority=3, timeout=2.5, run_at=moment)
        client.store.enqueue(job, moment)  # the SQLite store: plain DBAPI
        row = new_row(job, moment)
        with client.engine.begin() as connection:  # Core, through UTCDateTime
            connection.execute(insert(jobs_table), row)
    rows = _raw_rows(db_path)
    assert rows[0::2] == rows[1::2]
    for moment, row in zip(moments, rows[0::2], strict=True):
        assert row[8] == timestamps.encode(moment)
        assert datetime.strptime(str(row[8]), timestamps.FORMAT).replace(tzinfo=UTC) == moment
        assert timestamps.decode(str(row[8])) == moment


def test_timestamps_sort_as_text_in_time_order() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(microseconds=step * 999_983) for step in range(2_000)]
    texts = [timestamps.encode(moment) for moment in moments]
    assert texts == sorted(texts)
