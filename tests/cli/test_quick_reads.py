"""The read commands on a ready SQLite file skip SQLAlchemy (sqlite/ready.py + sqlite/reads.py)
and print what the full path prints; anything else takes the full path."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.jobs import JobStatus
from durableq.store.revision import HEAD_REVISION
from durableq.views import job_json
from tests.support.factories import insert_error, insert_job
from tests.support.processes import environment

READS = (
    ("jobs", "show", "2", "--json"),
    ("jobs", "list", "--json"),
    ("jobs", "list", "--status", "failed", "--queue", "mail", "--json"),
    ("stats", "--json"),
    ("queues",),
    ("workers",),
)


def _run(db: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "durableq", "--db", str(db), *args],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
    )
    imported_sqlalchemy = any(
        line.split("|")[-1].strip() == "sqlalchemy" for line in done.stderr.splitlines()
    )
    return done, imported_sqlalchemy


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    """A database with jobs of every kind: pending, failed with errors, in two queues."""
    db = tmp_path / "ready.db"
    with Client.open(str(db)) as client:
        client.enqueue("noop", {"n": 1})
        client.set_queue("mail", concurrency=2, rate="5/1s:5")
        failed = insert_job(
            client.engine, JobStatus.FAILED, queue="mail", type="send", attempts=1, max_attempts=1
        )
        insert_error(client.engine, failed, 1, "boom")
        assert failed == 2
    return db


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_read_commands_skip_sqlalchemy(ready: Path, args: tuple[str, ...]) -> None:
    done, imported = _run(ready, *args)
    assert done.returncode == 0, done.stderr
    assert not imported, f"`durableq {' '.join(args)}` imported SQLAlchemy"


def test_they_print_what_the_client_reads(ready: Path) -> None:
    with Client.open(str(ready)) as client:
        job = client.get(2)
        expected_job = json.loads(json.dumps(job_json(job, client.errors(2))))
        expected_list = json.loads(json.dumps([job_json(j) for j in client.jobs()]))
    shown, _ = _run(ready, "jobs", "show", "2", "--json")
    listed, _ = _run(ready, "jobs", "list", "--json")
    assert json.loads(shown.stdout) == expected_job
    assert expected_job["errors"][0]["error"] == "boom"
    assert json.loads(listed.stdout) == expected_list


def test_an_outdated_schema_takes_the_full_path(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Client.open(str(db)).close()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    done, imported = _run(db, "stats")
    assert imported and done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == [
        "durableq: error: the database schema (revision ffffffffffff) is newer than this "
        f"durableq (knows up to {HEAD_REVISION}); upgrade durableq"
    ]


def test_an_unknown_job_says_so_on_the_quick_path(ready: Path) -> None:
    done, imported = _run(ready, "jobs", "show", "99")
    assert not imported and done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == ["durableq: error: no job with id 99; list jobs with `durableq jobs list`"]
