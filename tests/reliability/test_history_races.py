"""The throughput history under racing rollups and kill -9: every finished job and failed
attempt is counted once, in its minute, however many processes roll up at once and wherever
they are killed.

Four processes walk the same three hours of finished jobs, one simulated minute per call (so
thousands of small compare-and-set transactions race), and are killed with SIGKILL at random
and restarted. Then one last rollup catches up, and the history must equal a GROUP BY of the
jobs themselves, row for row.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from durableq.client import Client
from durableq.core.config import database_url
from durableq.core.history import floor_minute
from durableq.core.jobs import JobStatus
from durableq.store.schema import job_errors_table, job_minutes_table, jobs_table
from tests.reliability.battery import TEST_TIMEOUT, Figures, seeded_rng, sized
from tests.support.factories import T0, insert_jobs
from tests.support.processes import environment

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

HOURS = 3
# Simulated time runs from `start` at SPEED simulated seconds per wall second since `t0`, the
# same for every process, so that they all try to roll up the same minutes at the same moments.
SPEED = 1800.0
ROLLER = """
import sys, time
from datetime import datetime, timedelta
from durableq.client import Client
url, start = sys.argv[1], datetime.fromisoformat(sys.argv[2])
t0, speed, hours = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
end = start + timedelta(hours=hours)
with Client.open(url) as client:
    while True:
        now = start + timedelta(seconds=(time.time() - t0) * speed)
        client.store.roll_up(min(now, end), settle=0, keep=30 * 86400)
        if now >= end:
            break
"""


def _seed(client: Client, jobs: int, seed_rng: object) -> None:
    rng = seed_rng
    statuses = [JobStatus.COMPLETED] * 8 + [JobStatus.FAILED, JobStatus.CANCELED]
    for _ in range(jobs // 50):
        end = T0 + timedelta(seconds=rng.uniform(0, HOURS * 3600))  # type: ignore[attr-defined]
        ids = insert_jobs(
            client.engine,
            50,
            rng.choice(statuses),  # type: ignore[attr-defined]
            queue=rng.choice(["mail", "reports", "default"]),  # type: ignore[attr-defined]
            job_type=rng.choice(["a", "b"]),  # type: ignore[attr-defined]
            created_at=end - timedelta(seconds=3),
            run_at=end - timedelta(seconds=2),
            started_at=end - timedelta(seconds=1),
            finished_at=end,
        )
        with client.engine.begin() as connection:
            connection.execute(
                insert(job_errors_table),
                [{"job_id": i, "attempt": 1, "error": "x", "failed_at": end} for i in ids[:3]],
            )


def _expected(client: Client) -> Counter[tuple[str, str, str, str]]:
    with client.engine.connect() as connection:
        jobs = connection.execute(
            select(
                jobs_table.c.finished_at, jobs_table.c.queue, jobs_table.c.type, jobs_table.c.status
            )
        ).all()
        errors = connection.execute(
            select(job_errors_table.c.failed_at, jobs_table.c.queue, jobs_table.c.type).join(
                jobs_table, jobs_table.c.id == job_errors_table.c.job_id
            )
        ).all()
    counted: Counter[tuple[str, str, str, str]] = Counter()
    for finished, queue, job_type, status in jobs:
        counted[(floor_minute(finished).isoformat(), queue, job_type, status)] += 1
    for failed, queue, job_type in errors:
        counted[(floor_minute(failed).isoformat(), queue, job_type, "errored")] += 1
    return counted


def _history(client: Client) -> Counter[tuple[str, str, str, str]]:
    m = job_minutes_table.c
    with client.engine.connect() as connection:
        rows = connection.execute(select(m.minute, m.queue, m.type, m.outcome, m.count)).all()
    counted: Counter[tuple[str, str, str, str]] = Counter()
    for minute, queue, job_type, outcome, n in rows:
        key = (floor_minute(minute).isoformat(), queue, job_type, outcome)
        assert key not in counted, f"minute written twice: {key}"
        counted[key] = n
    return counted


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_racing_killed_rollups_count_every_job_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, figures: Callable[[str], Figures]
) -> None:
    url = (
        database_url(str(tmp_path / "durableq.db"))
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    seed, rng = seeded_rng()
    jobs = sized(10_000, 100_000)
    kills_wanted = sized(12, 60)
    with Client.open(url) as client:
        _seed(client, jobs, rng)
    start = T0.replace(second=0, microsecond=0).isoformat()
    t0 = time.time() + 1.0  # simulated time starts once the first processes are up

    def roller() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", ROLLER, url, start, str(t0), str(SPEED), str(HOURS + 0.1)],
            stderr=subprocess.PIPE,
            env=environment(),
        )

    rollers = [roller() for _ in range(4)]
    ended: list[subprocess.Popen[bytes]] = []
    kills = 0
    # Kills land while simulated time runs (its HOURS take HOURS * 3600 / SPEED wall seconds).
    deadline = t0 + HOURS * 3600 / SPEED
    while kills < kills_wanted and time.time() < deadline:
        time.sleep(rng.uniform(0.05, 0.6))
        victim = rng.randrange(len(rollers))
        if rollers[victim].poll() is None:
            rollers[victim].send_signal(signal.SIGKILL)
            kills += 1
        ended.append(rollers[victim])
        rollers[victim] = roller()
    for process in ended + rollers:
        _, err = process.communicate(timeout=120)
        # Killed, or done; a race the rollup lost must never surface as an error.
        assert process.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]

    with Client.open(url) as client:
        client.store.roll_up(T0 + timedelta(hours=HOURS + 1), settle=0, keep=30 * 86400)
        expected, history = _expected(client), _history(client)
    report = figures(f"history rollup races, 4 processes, {backend}")
    report["seed"] = seed
    report["jobs"] = jobs
    report["kills"] = kills
    report["counted"] = sum(history.values())
    assert kills >= 1
    assert history == expected
