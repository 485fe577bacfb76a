"""The read commands on a ready SQLite file skip SQLAlchemy (sqlite/ready.py + sqlite/reads.py)
and print what the full path prints; anything else takes the full path (test_quick_enqueue.py
holds that for an outdated schema)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.jobs import JobStatus
from durableq.views import job_json
from tests.support.factories import insert_error, insert_job
from tests.support.processes import run_cli_importing

READS = (
    ("jobs", "show", "2", "--json"),
    ("jobs", "list", "--json"),
    ("jobs", "list", "--status", "failed", "--queue", "mail", "--json"),
    ("stats", "--json"),
    ("queues",),
    ("workers",),
)


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
    done, imported, _ = run_cli_importing(ready, *args)
    assert done.returncode == 0, done.stderr
    assert not imported, f"`durableq {' '.join(args)}` imported SQLAlchemy"


def test_they_print_what_the_client_reads(ready: Path) -> None:
    with Client.open(str(ready)) as client:
        job = client.get(2)
        expected_job = json.loads(json.dumps(job_json(job, client.errors(2))))
        expected_list = json.loads(json.dumps([job_json(j) for j in client.jobs()]))
    shown, _, _ = run_cli_importing(ready, "jobs", "show", "2", "--json")
    listed, _, _ = run_cli_importing(ready, "jobs", "list", "--json")
    assert json.loads(shown.stdout) == expected_job
    assert expected_job["errors"][0]["error"] == "boom"
    assert json.loads(listed.stdout) == expected_list


def test_an_unknown_job_says_so_on_the_quick_path(ready: Path) -> None:
    done, imported, errors = run_cli_importing(ready, "jobs", "show", "99")
    assert not imported and done.returncode == 2
    assert errors == ["durableq: error: no job with id 99; list jobs with `durableq jobs list`"]
