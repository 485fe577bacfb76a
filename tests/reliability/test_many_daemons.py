"""Several daemons on one SQLite file, no kills: every job runs exactly once, all daemons work.

The daemons are up before the jobs arrive (in one batch), so they compete for every claim. Each
job must have exactly one execution in the record file, every daemon must have run some, and no
daemon may log an error or a locked database: with BEGIN IMMEDIATE and a busy timeout, lock
waits are invisible.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from durableq.client import Client
from tests.reliability.battery import (
    TEST_TIMEOUT,
    Figures,
    fleet,
    integrity,
    jobs_by_id,
    problem_lines,
    sized,
    wait_all,
    wait_registered,
)
from tests.support.recorder import read_records

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)


@pytest.mark.parametrize("daemon_count", [2, 4])
def test_each_job_runs_exactly_once_across_daemons(
    daemon_count: int, db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    total = sized(5000, 20000, "DURABLEQ_SOAK_JOBS")
    report = figures(f"{daemon_count} daemons, no kills")
    Client.open(str(db_path)).close()  # the schema exists before the daemons race to open it
    args = ("--concurrency", "4", "--log-level", "warning")
    with fleet(db_path, tmp_path, *args) as daemons:
        for _ in range(daemon_count):
            daemons.start()
        wait_registered(db_path, daemon_count)
        began = time.monotonic()
        with Client.open(str(db_path)) as client:
            ids = client.enqueue_many([{"type": "record"}] * total)
        wait_all(db_path, "completed", total, timeout=120 + total / 20, fleet=daemons)
        elapsed = time.monotonic() - began
        codes = daemons.stop_all()

    starts = [r for r in read_records(daemons.record) if r["event"] == "start"]
    per_job = Counter(r["job"] for r in starts)
    per_daemon = Counter(r["pid"] for r in starts)
    report["jobs"], report["seconds"] = total, elapsed
    report["jobs_per_s"] = total / elapsed
    report["per_daemon"] = sorted(per_daemon.values())

    rows = jobs_by_id(db_path)
    assert sorted(rows) == sorted(ids)
    assert all(row["status"] == "completed" and row["attempts"] == 1 for row in rows.values())
    assert set(per_job) == set(ids), "some jobs never ran"
    twice = {job: n for job, n in per_job.items() if n != 1}
    assert not twice, f"jobs that ran more than once: {dict(list(twice.items())[:20])}"
    assert set(per_daemon) == {d.pid for d in daemons.daemons}, "a daemon did no work"
    assert codes == {d.pid: 0 for d in daemons.daemons}
    log = daemons.combined_logs()
    assert not (bad := problem_lines(log)), "\n".join(bad[:20])
    assert not log.strip(), f"daemons logged warnings under a normal load:\n{log[:3000]}"
    assert integrity(db_path) == "ok"
