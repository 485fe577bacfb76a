"""A daemon restart changes nothing it should not: the state lives in the database alone.

Daemon A leaves behind a delayed job, a job scheduled at a fixed time, a job waiting out its
backoff after a failure, a completed job, and a running job whose cancel was requested while A
was frozen. A is then killed -9 and daemon B starts on the same file. B must leave the first four
rows exactly as they were (run_at, attempts, errors, every column) and must honour the pending
cancel request: the running job ends canceled, with its attempt count unchanged, never re-run.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from durableq.client import Client
from tests.reliability.battery import (
    Figures,
    errors_by_job,
    fleet,
    jobs_by_id,
    problem_lines,
    query,
)
from tests.support.processes import environment, run_cli, wait_until
from tests.support.recorder import read_records

LEASE = "2s"


def test_restart_keeps_delays_backoffs_attempts_and_cancel_requests(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("restart keeps state")
    with Client.open(str(db_path)) as client:
        delayed = client.enqueue("record", delay=3600)
        scheduled = client.enqueue("record", run_at=datetime.now(UTC) + timedelta(hours=2))
        backing_off = client.enqueue("flaky", {"succeed_on": 3}, max_attempts=5)
        running = client.enqueue("record", {"seconds": 120})
        completed = client.enqueue("record")
    kept = (delayed, scheduled, backing_off, completed)
    # A failed attempt waits about an hour before the next: long after this test.
    env = environment(tmp_path / "record.jsonl", DURABLEQ_BACKOFF_BASE="1h")
    with fleet(db_path, tmp_path, "--lease", LEASE, env=env) as daemons:
        first = daemons.start()
        wait_until(lambda: _settled(db_path, backing_off, running, completed), timeout=60)
        first.process.send_signal(signal.SIGSTOP)
        canceled = run_cli(["cancel", str(running)], db_path)
        assert canceled.returncode == 0, canceled.stderr
        before, errors_before = jobs_by_id(db_path), errors_by_job(db_path)
        assert before[running]["status"] == "running" and before[running]["cancel_requested"]
        daemons.kill(first)

        second = daemons.start()
        wait_until(lambda: jobs_by_id(db_path)[running]["status"] == "canceled", timeout=60)
        _wait_beats(db_path, second.pid, beats=3)
        after, errors_after = jobs_by_id(db_path), errors_by_job(db_path)
        codes = daemons.stop_all()

    report["backoff_until"] = before[backing_off]["run_at"]
    for job in kept:
        assert after[job] == before[job], f"job {job} changed across the restart"
        assert errors_after.get(job) == errors_before.get(job)
    assert before[backing_off]["attempts"] == 1 and before[backing_off]["status"] == "pending"
    _assert_cancel_honoured(before[running], after[running], errors_after.get(running))
    starts = [r["job"] for r in read_records(daemons.record) if r["event"] == "start"]
    assert sorted(starts) == sorted([backing_off, running, completed]), "something re-ran"
    assert codes == {second.pid: 0}
    assert not problem_lines(daemons.combined_logs())


def _settled(db: Path, backing_off: int, running: int, completed: int) -> bool:
    """A's work is done: one failure backing off, one job mid-run, one completed."""
    rows = jobs_by_id(db)
    return bool(
        rows[backing_off]["attempts"] == 1
        and rows[backing_off]["status"] == "pending"
        and rows[running]["status"] == "running"
        and rows[completed]["status"] == "completed"
    )


def _wait_beats(db: Path, pid: int, beats: int) -> None:
    """Let B live through a few heartbeat/rescue rounds (a third of the lease each)."""
    (row,) = query(db, "SELECT heartbeat_at FROM workers WHERE pid = ?", (pid,))
    first_beat = datetime.fromisoformat(row["heartbeat_at"])
    target = first_beat + timedelta(seconds=beats * 2 / 3)

    def beaten() -> bool:
        rows = query(db, "SELECT heartbeat_at FROM workers WHERE pid = ?", (pid,))
        return bool(rows) and datetime.fromisoformat(rows[0]["heartbeat_at"]) >= target

    wait_until(beaten, timeout=60, what=f"{beats} heartbeats of daemon B")


def _assert_cancel_honoured(
    before: dict[str, object], after: dict[str, object], errors: list[dict[str, object]] | None
) -> None:
    assert after["status"] == "canceled", after
    assert after["attempts"] == before["attempts"] == 1
    assert after["finished_at"] is not None
    assert after["worker_id"] is None and after["lease_token"] is None
    assert not errors, f"a canceled job got an error row: {errors}"
    unchanged = ("payload", "max_attempts", "created_at", "run_at", "priority", "queue")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
