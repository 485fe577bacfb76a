"""Cancels racing with kill -9: a canceled job never starts again, whoever dies meanwhile.

While daemons run jobs and random daemons are SIGKILLed (and restarted), the test cancels random
unfinished jobs. A cancel that returns `canceled` ended a pending job: no execution may start
after it, and the job stays canceled. A cancel that returns `running` asked the job's daemon to
stop: the job ends canceled (or completed, if it finished first) and is never started again,
even when its daemon was killed and the job rescued. Every job ends completed or canceled.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.errors import InvalidTransition
from tests.reliability.battery import (
    TEST_TIMEOUT,
    Figures,
    fleet,
    integrity,
    jobs_by_id,
    kill_one,
    problem_lines,
    query,
    seeded_rng,
    sized,
    statuses,
    wait_registered,
)
from tests.support.recorder import read_records

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

SLEEPS = (0.05, 0.1, 0.2, 0.4)
DAEMONS = 3


def test_canceled_jobs_never_start_again_across_kills(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    seed, rng = seeded_rng()
    total, kills = sized(400, 2000, "DURABLEQ_SOAK_JOBS"), sized(6, 20, "DURABLEQ_SOAK_KILLS")
    report = figures(f"cancels under kill -9 (seed {seed})")
    client = Client.open(str(db_path))
    ids = client.enqueue_many(
        [{"type": "record", "payload": {"seconds": rng.choice(SLEEPS)}} for _ in range(total)]
    )
    # id -> its attempt count when the cancel returned: no later attempt may start
    canceled_pending: dict[int, int] = {}
    cancel_requested: dict[int, int] = {}
    args = ("--concurrency", "4", "--lease", "1s", "--log-level", "warning")
    with fleet(db_path, tmp_path, *args) as daemons:
        for _ in range(DAEMONS):
            daemons.start()
        wait_registered(db_path, DAEMONS)
        kill_at = sorted(rng.uniform(0.05, 0.8) for _ in range(kills))
        deadline = time.monotonic() + 120 + total / 20
        while not _all_finished(db_path):
            assert time.monotonic() < deadline, f"stalled: {statuses(db_path)}"
            _cancel_one(client, _target(db_path, ids, rng), canceled_pending, cancel_requested)
            done = sum(
                r["status"] in ("completed", "canceled") for r in jobs_by_id(db_path).values()
            )
            if kill_at and done >= kill_at[0] * total and kill_one(daemons, rng):
                kill_at.pop(0)
            daemons.assert_none_died()
            time.sleep(0.03)
        client.close()
        codes = daemons.stop_all()

    rows = jobs_by_id(db_path)
    starts = [r for r in read_records(daemons.record) if r["event"] == "start"]
    report["jobs"], report["kills"] = total, sum(d.killed_at is not None for d in daemons.daemons)
    report["canceled_pending"], report["cancel_requested"] = (
        len(canceled_pending),
        len(cancel_requested),
    )
    report["ended_canceled"] = sum(r["status"] == "canceled" for r in rows.values())
    limit = {**cancel_requested, **canceled_pending}
    late = [s for s in starts if s["job"] in limit and s["attempt"] > limit[s["job"]]]
    assert not late, f"executions started after their job was canceled: {late[:10]}"
    assert all(rows[i]["status"] == "canceled" for i in canceled_pending)
    assert all(rows[i]["status"] in ("canceled", "completed") for i in cancel_requested)
    assert {r["status"] for r in rows.values()} <= {"completed", "canceled"}
    assert all(code == 0 for code in codes.values()), codes
    assert not (bad := problem_lines(daemons.combined_logs())), bad[:20]
    assert integrity(db_path) == "ok"


def _all_finished(db: Path) -> bool:
    return all(r["status"] in ("completed", "canceled") for r in jobs_by_id(db).values())


def _target(db: Path, ids: list[int], rng: random.Random) -> int:
    """Half the time a running job (its daemon must stop it), else any job."""
    running = [row["id"] for row in query(db, "SELECT id FROM jobs WHERE status = 'running'")]
    return rng.choice(running) if running and rng.random() < 0.5 else rng.choice(ids)


def _cancel_one(
    client: Client, job_id: int, pending: dict[int, int], running: dict[int, int]
) -> None:
    """Cancel one job, remembering its attempt count by what the cancel did.

    Attempts, not clock times: an execution claimed just before the cancel may write its start
    line just after it, but every later claim counts one more attempt.
    """
    try:
        job = client.cancel(job_id)
    except InvalidTransition:
        return  # already completed or canceled
    if job.status.value == "canceled" and job_id not in running:
        pending.setdefault(job_id, job.attempts)
    elif job.status.value == "running":
        running.setdefault(job_id, job.attempts)
