"""A frozen owner comes back: its late outcome is fenced off, the rescuer's execution stands.

Daemon A takes two jobs and is frozen (SIGSTOP) mid-job, past its lease. Daemon B rescues both
and finishes them. When A thaws (SIGCONT), its handlers return and it tries to save outcomes
for jobs that are no longer its own: the lease token no longer matches, so the outcome is
dropped and logged, and the jobs keep B's result, attempt count and finish time.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from durableq.client import Client
from tests.reliability.battery import (
    Figures,
    errors_by_job,
    fleet,
    jobs_by_id,
    problem_lines,
    wait_all,
)
from tests.support.processes import wait_until
from tests.support.recorder import read_records

SECONDS = 2.0  # longer than the lease: A is frozen mid-job


def test_late_outcome_of_a_frozen_owner_is_dropped(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("stale owner")
    with Client.open(str(db_path)) as client:
        cooperative = client.enqueue("record", {"seconds": SECONDS})
        stubborn = client.enqueue("stubborn", {"seconds": SECONDS})
    jobs = (cooperative, stubborn)
    with fleet(db_path, tmp_path, "--lease", "1s", "--concurrency", "2") as daemons:
        first = daemons.start()
        _wait_started(daemons.record, first.pid, jobs)
        first.process.send_signal(signal.SIGSTOP)
        second = daemons.start()
        wait_all(db_path, "completed", len(jobs), timeout=60)
        finished = jobs_by_id(db_path)

        first.process.send_signal(signal.SIGCONT)
        wait_until(
            lambda: all(f"job {job} " in _dropped_lines(first.log_text()) for job in jobs),
            timeout=30,
            what="daemon A to drop its stale outcomes",
        )
        after = jobs_by_id(db_path)
        codes = daemons.stop_all()

    report["first_pid"], report["second_pid"] = first.pid, second.pid
    assert after == finished, "the stale outcome changed the jobs"
    for job in jobs:
        _assert_second_execution_stands(after[job], job, second.pid, daemons.record)
        (died,) = errors_by_job(db_path)[job]
        assert f"-{first.pid}-" in died["error"] and "died" in died["error"]
    assert json.loads(after[cooperative]["result"]) == {"job": cooperative, "pid": second.pid}
    late = [
        r for r in read_records(daemons.record) if r["job"] == stubborn and r["pid"] == first.pid
    ]
    assert [r["event"] for r in late] == ["start", "end"], "A's late completion never happened"
    assert codes == {first.pid: 0, second.pid: 0}
    assert not problem_lines(daemons.combined_logs())


def _wait_started(record: Path, pid: int, jobs: tuple[int, ...]) -> None:
    def started() -> bool:
        seen = {r["job"] for r in read_records(record) if r["event"] == "start" and r["pid"] == pid}
        return seen >= set(jobs)

    wait_until(started, timeout=60, what="daemon A to start both jobs")


def _dropped_lines(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "outcome dropped" in line)


def _assert_second_execution_stands(
    row: dict[str, object], job: int, second_pid: int, record: Path
) -> None:
    assert row["status"] == "completed"
    assert row["attempts"] == 2
    assert row["worker_id"] is None and row["lease_token"] is None
    ends = [r for r in read_records(record) if r["job"] == job and r["event"] == "end"]
    by_second = [r["t"] for r in ends if r["pid"] == second_pid]
    assert len(by_second) == 1, ends
    finished_at = datetime.fromisoformat(str(row["finished_at"])).replace(tzinfo=UTC)
    # B saved the job after its handler ended; A's handler ended later still, and lost.
    assert finished_at.timestamp() >= by_second[0] - 0.001
    by_first = [r["t"] for r in ends if r["pid"] != second_pid]
    assert all(t > finished_at.timestamp() for t in by_first), (ends, row["finished_at"])
