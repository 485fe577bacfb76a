"""A database made by an older durableq is upgraded in place, its jobs and workers kept."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config

from durableq.client import Client
from durableq.core.config import Settings, database_url
from durableq.core.jobs import JobStatus
from durableq.store import migrate
from durableq.store.engine import make_engine
from durableq.store.records import WorkerInfo
from tests.support.processes import run_cli


def _database_at(path: Path, revision: str) -> None:
    engine = make_engine(Settings(database=database_url(str(path))))
    config = Config()
    config.set_main_option("script_location", str(migrate.script_location()))
    config.attributes["configure_logging"] = False
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_a_0001_database_is_upgraded_on_first_write_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _database_at(db, "0001")
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    with sqlite3.connect(db) as connection:
        connection.execute(
            "INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts,"
            " run_at, created_at, updated_at, cancel_requested)"
            " VALUES ('default', 'echo', '{\"kept\": true}', 'pending', 0, 0, 3, ?, ?, ?, 0)",
            (now, now, now),
        )
        connection.execute(
            "INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at)"
            " VALUES ('old-worker', 'h', 1, '*', 4, ?, ?)",
            (now, now),
        )

    # Read-only commands refuse an older schema instead of changing it.
    listing = run_cli(["jobs", "list"], db)
    assert listing.returncode == 1
    assert "older than this durableq" in listing.stderr and "durableq db upgrade" in listing.stderr

    enqueued = run_cli(["enqueue", "noop"], db)  # a write upgrades it, then enqueues
    assert enqueued.returncode == 0, enqueued.stderr
    with Client.open(str(db), create=False) as client:
        assert migrate.current_revision(client.engine) == migrate.HEAD_REVISION
        assert migrate.check(client.engine) == []
        old, new = client.jobs(limit=10)[::-1]
        assert (old.type, old.payload, old.status) == ("echo", {"kept": True}, JobStatus.PENDING)
        assert new.id == int(enqueued.stdout)
        (worker,) = client.workers()
        assert (worker.id, worker.lease) == ("old-worker", None)  # judged by the reader's lease


def test_liveness_follows_each_workers_own_lease() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def worker(lease: float | None, silent: float) -> WorkerInfo:
        beat = now - timedelta(seconds=silent)
        return WorkerInfo("w", "h", 1, (), 4, beat, beat, lease)

    slow_beater = worker(lease=600, silent=190)  # beats every 200 s: alive
    assert slow_beater.alive(now, default_lease=30)
    assert not slow_beater.forgettable(now, stale_after=120, default_lease=30)
    assert not worker(lease=30, silent=40).alive(now, default_lease=600)
    assert worker(lease=30, silent=121).forgettable(now, stale_after=120, default_lease=30)
    assert worker(lease=None, silent=20).alive(now, default_lease=30)  # a pre-0002 row
