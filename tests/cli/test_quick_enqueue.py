"""`durableq enqueue` on a ready SQLite file skips SQLAlchemy; anything else takes the full path."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from durableq.client import Client
from durableq.core.jobs import JobStatus
from durableq.store.revision import HEAD_REVISION
from tests.support.processes import run_cli_importing


def _enqueue_importing(db: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    done, imported, _ = run_cli_importing(db, "enqueue", *args)
    return done, imported


def test_a_ready_database_is_written_without_sqlalchemy(tmp_path: Path) -> None:
    db = tmp_path / "ready.db"
    first, imported = _enqueue_importing(db, "noop")
    assert first.returncode == 0 and imported  # a new file: created through the full path
    second, imported = _enqueue_importing(db, "echo", "--payload", '{"a": 1}', "--priority", "3")
    assert second.returncode == 0, second.stderr
    assert not imported
    with Client.open(str(db)) as client:
        job = client.get(int(second.stdout))
        assert (job.type, job.payload, job.priority, job.status) == (
            "echo",
            {"a": 1},
            3,
            JobStatus.PENDING,
        )
        assert job.run_at == job.created_at


def test_an_outdated_schema_takes_the_full_path(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Client.open(str(db)).close()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    done, imported = _enqueue_importing(db, "noop")
    assert imported  # the full path refuses it with the proper message
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == [
        "durableq: error: the database schema (revision ffffffffffff) is newer than this "
        f"durableq (knows up to {HEAD_REVISION}); upgrade durableq"
    ]
