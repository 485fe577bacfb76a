"""A database holding one job in every status, made the way users make them, and its fingerprint.

Built once per test module (a burst worker is a subprocess, about a second) and copied per test:
tests that must leave a database unchanged compare `content_hash` before and after.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

from durableq.client import Client, utc_now
from tests.support.processes import run_cli

COMPLETED, FAILED, CANCELED, PENDING, RUNNING = 1, 2, 3, 4, 5
HELD_QUEUE = "held"  # the running job's queue: the seeding worker leaves it alone
RUNNING_WORKER = "seed-worker"


def build_seeded(path: Path) -> Path:
    """Jobs 1-5: completed (with a result), failed (with an error), canceled, pending, running."""
    with Client.open(str(path)) as client:
        assert client.enqueue("record", {"seconds": 0}) == COMPLETED
        assert client.enqueue("flaky", {"succeed_on": 99}, max_attempts=1) == FAILED
        assert client.enqueue("echo", {"n": 3}, delay=3600) == CANCELED
        assert client.enqueue("echo", {"n": 4}, delay=3600, priority=7) == PENDING
        assert client.enqueue("noop", {}, queue=HELD_QUEUE) == RUNNING
        client.cancel(CANCELED)
    done = run_cli(
        [
            "worker",
            "start",
            "--burst",
            "--queue",
            "default",
            "--app",
            "tests.support.recorder:registry",
        ],
        path,
    )
    assert done.returncode == 0, done.stderr
    with Client.open(str(path)) as client:
        # A lease no test outlives: the job stays running, as if its worker were busy with it.
        claimed = client.store.claim(RUNNING_WORKER, [HELD_QUEUE], 1, utc_now(), 3600.0)
        assert [job.id for job in claimed] == [RUNNING]
        statuses = [client.get(job_id).status.value for job_id in range(1, 6)]
    assert statuses == ["completed", "failed", "canceled", "pending", "running"], statuses
    assert not Path(f"{path}-wal").exists(), "the WAL should be checkpointed away on close"
    return path


def copy_database(template: Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, destination)
    return destination


def content_hash(path: Path) -> str:
    """A fingerprint of every row and schema object (not of the bytes, which SQLite may move)."""
    connection = sqlite3.connect(path)
    try:
        dump = "\n".join(connection.iterdump())
    finally:
        connection.close()
    return hashlib.sha256(dump.encode()).hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
