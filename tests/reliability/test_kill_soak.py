"""kill -9 soak: daemons die at random moments while jobs flow; no acknowledged job is lost.

Four daemons share one SQLite file with a short lease. A producer keeps enqueuing while random
daemons are SIGKILLed (and restarted) at random points of the run. Afterwards, from the database
and the record file: every acknowledged id is there and completed, every job ran to the end at
least once, re-executions are few and each explained by a rescue, no two executions of one job
overlapped, no daemon died on its own, and the file is intact.

Replay a run with DURABLEQ_SOAK_SEED=<the printed seed>; DURABLEQ_SOAK=1 runs the full sizes
(DURABLEQ_SOAK_JOBS and DURABLEQ_SOAK_KILLS override them).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durableq.client import Client
from durableq.worker import prefetch
from tests.reliability.battery import (
    TEST_TIMEOUT,
    Execution,
    Figures,
    Fleet,
    count,
    errors_by_job,
    executions,
    fleet,
    integrity,
    jobs_by_id,
    kill_one,
    overlaps,
    problem_lines,
    rescued,
    seeded_rng,
    sized,
    statuses,
    wait_all,
    wait_registered,
)

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

DAEMONS = 4
CONCURRENCY = 4
LEASE = "1s"
SLEEPS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)  # seconds a `record` job takes
UPFRONT = 0.5  # share of the jobs enqueued before the daemons start; the rest while they run


def test_kill_minus_nine_soak(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    total = sized(1000, 2000, "DURABLEQ_SOAK_JOBS")
    kills = sized(15, 25, "DURABLEQ_SOAK_KILLS")
    seed, rng = seeded_rng()
    report = figures(f"kill -9 soak (seed {seed})")
    report["jobs"], report["kills"] = total, kills
    began = time.monotonic()

    client = Client.open(str(db_path))
    sleeps = [rng.choice(SLEEPS) for _ in range(total)]
    upfront = int(total * UPFRONT)
    acknowledged = client.enqueue_many(_record_jobs(sleeps[:upfront]))
    backlog = sleeps[upfront:]
    args = ("--concurrency", str(CONCURRENCY), "--lease", LEASE, "--log-level", "warning")
    with fleet(db_path, tmp_path, *args) as daemons:
        for _ in range(DAEMONS):
            daemons.start()
        wait_registered(db_path, DAEMONS)
        thresholds = sorted(rng.uniform(0.02, 0.9) for _ in range(kills))
        deadline = time.monotonic() + 120 + total / 20
        while thresholds or backlog:
            assert time.monotonic() < deadline, (
                f"stalled: {statuses(db_path)}, {len(thresholds)} kills left"
            )
            backlog = _produce(client, backlog, acknowledged, rng)
            due = thresholds and count(db_path, "completed") >= thresholds[0] * total
            if due and kill_one(daemons, rng):
                thresholds.pop(0)
            daemons.assert_none_died()
            time.sleep(0.05)
        client.close()
        wait_all(db_path, "completed", total, timeout=120 + total / 20, fleet=daemons)
        codes = daemons.stop_all()
        report["wall_s"] = time.monotonic() - began
        _check(db_path, daemons, acknowledged, codes, report, kills)


def _record_jobs(sleeps: list[float]) -> list[dict[str, object]]:
    return [{"type": "record", "payload": {"seconds": seconds}} for seconds in sleeps]


def _produce(
    client: Client, backlog: list[float], acknowledged: list[int], rng: random.Random
) -> list[float]:
    """Enqueue a few more jobs, one by one or in a small batch; remember every returned id."""
    size = rng.choice((1, 1, 5, 20))
    chunk, rest = backlog[:size], backlog[size:]
    if len(chunk) == 1:
        acknowledged.append(client.enqueue("record", {"seconds": chunk[0]}))
    elif chunk:
        acknowledged.extend(client.enqueue_many(_record_jobs(chunk)))
    return rest


def _check(
    db: Path,
    daemons: Fleet,
    acknowledged: list[int],
    codes: dict[int, int],
    report: Figures,
    kills: int,
) -> None:
    rows = jobs_by_id(db)
    errors = errors_by_job(db)
    runs = executions(daemons.record, daemons.kill_time)
    duplicates = {job for job, found in runs.items() if len(found) > 1}
    report["rescues"] = sum(1 for found in errors.values() for e in found if "died" in e["error"])
    report["duplicates"] = len(duplicates)
    report["extra_runs"] = sum(len(runs[job]) - 1 for job in duplicates)
    report["lost_lease_warnings"] = daemons.combined_logs().count("lost the lease")

    lost = [job_id for job_id in acknowledged if job_id not in rows]
    assert not lost, f"{len(lost)} acknowledged job(s) lost: {lost[:20]}"
    assert len(set(acknowledged)) == len(acknowledged), "an id was acknowledged twice"
    unfinished = {i: r["status"] for i, r in rows.items() if r["status"] != "completed"}
    assert not unfinished, f"jobs not completed: {dict(list(unfinished.items())[:20])}"
    never_ran = [i for i in rows if not any(run.how == "end" for run in runs.get(i, []))]
    assert not never_ran, f"completed jobs with no finished execution: {never_ran[:20]}"
    _check_results(rows, runs)

    assert not (bad := overlaps(runs)), "executions overlapped:\n" + "\n".join(bad[:10])
    # A kill re-runs what had started without its outcome committed: the running jobs and those
    # that finished while the daemon committed, at most --concurrency + --prefetch.
    per_kill = CONCURRENCY + prefetch.DEFAULT
    assert report.values["extra_runs"] <= kills * per_kill, "more re-runs than kills explain"
    unexplained = [
        job for job in duplicates if not (rescued(errors.get(job, [])) or rows[job]["attempts"] > 1)
    ]
    assert not unexplained, f"re-executed without a rescue: {sorted(unexplained)[:20]}"

    assert all(code == 0 for code in codes.values()), f"SIGTERM exit codes: {codes}"
    killed = [d for d in daemons.daemons if d.killed_at is not None]
    assert len(killed) == kills
    assert all(d.exit_code == -9 for d in killed), [d.exit_code for d in killed]
    assert not (bad := problem_lines(daemons.combined_logs())), "\n".join(bad[:20])
    assert integrity(db) == "ok"


def _check_results(rows: dict[int, dict[str, Any]], runs: dict[int, list[Execution]]) -> None:
    """A job's stored result names the daemon whose execution finished it (not a stale one)."""
    wrong = []
    for job_id, row in rows.items():
        result = json.loads(row["result"])
        finishers = {run.pid for run in runs[job_id] if run.how == "end"}
        if result["job"] != job_id or result["pid"] not in finishers:
            wrong.append((job_id, result, finishers))
    assert not wrong, f"results from the wrong execution: {wrong[:10]}"
