"""Unique keys and idempotency keys under real concurrency and kill -9.

- 4 processes x 50 enqueues of one unique key, all started at once, on SQLite and on
  PostgreSQL: exactly one row, and every call got its id.
- A producer killed with SIGKILL right after its enqueue committed, before it could read (or
  print) the id: the re-sent enqueue with the same idempotency key returns the same id.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from durableq.client import Client
from durableq.core.config import database_url
from durableq.store.schema import jobs_table
from tests.reliability.battery import TEST_TIMEOUT, Figures
from tests.support.processes import environment

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

RACER = """
import sys, time
from durableq.client import Client
url, start, calls = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with Client.open(url) as client:
    client.get  # opened (and migrated) before the start
    time.sleep(max(0.0, start - time.time()))
    ids = {client.enqueue("invoice", {"order": 7}, unique=True) for _ in range(calls)}
print(",".join(map(str, sorted(ids))))
"""


def race(url: str, processes: int, calls: int) -> list[str]:
    with Client.open(url):
        pass  # the schema exists before the racers open it
    start = time.time() + 3.0
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, str(start), str(calls)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment(),
        )
        for _ in range(processes)
    ]
    outputs = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err.decode()
        outputs.append(out.decode().strip())
    return outputs


def row_count(url: str) -> int:
    with Client.open(url) as client, client.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(jobs_table)).scalar_one())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_unique_key_from_four_processes_makes_one_row(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, figures: Callable[[str], Figures]
) -> None:
    if backend == "sqlite":
        url = database_url(str(tmp_path / "durableq.db"))
    else:
        url = request.getfixturevalue("postgres_url")
    report = figures(f"unique key, 4 processes x 50 enqueues, {backend}")
    outputs = race(url, processes=4, calls=50)
    report["distinct_ids"] = len(set(outputs))
    assert len(set(outputs)) == 1 and "," not in outputs[0], outputs
    assert row_count(url) == 1


SUICIDAL = """
import os, signal, sys
from durableq.client import Client
client = Client.open(sys.argv[1])
client.enqueue("charge", {"order": 42}, idempotency_key="order-42")
os.kill(os.getpid(), signal.SIGKILL)  # committed; the id is never read or printed
"""


def test_a_producer_killed_after_commit_resends_and_gets_the_same_id(tmp_path: Path) -> None:
    db = tmp_path / "durableq.db"
    killed = subprocess.run(
        [sys.executable, "-c", SUICIDAL, str(db)], env=environment(), capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    with Client.open(str(db)) as client:
        [job] = client.jobs()
        assert client.enqueue("charge", {"order": 42}, idempotency_key="order-42") == job.id
        again = client.enqueue_many(
            [{"type": "charge", "payload": {"order": 42}, "idempotency_key": "order-42"}]
        )
        assert list(again) == [job.id] and again.duplicates == {0}
    resent = subprocess.run(
        [
            sys.executable,
            "-m",
            "durableq",
            "--db",
            str(db),
            "enqueue",
            "charge",
            "--payload",
            '{"order": 42}',
            "--idempotency-key",
            "order-42",
        ],
        env=environment(),
        capture_output=True,
        text=True,
    )
    assert (resent.returncode, resent.stdout.strip(), resent.stderr) == (0, str(job.id), "")
    assert row_count(database_url(str(db))) == 1
