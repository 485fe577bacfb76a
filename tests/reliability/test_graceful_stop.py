"""SIGTERM drains: running jobs get the shutdown timeout, then are stopped and given back.

A job that finishes within the timeout is saved. Cooperative handlers (ctx.cancelled) stop and
their jobs go back to pending; a stubborn handler that ignores cancellation is released all the
same once the grace period is over. A released job's attempt is not counted, and the daemon
exits 0 well before the stubborn handler would have finished. A second SIGTERM exits at once,
leaving the leases to expire and the jobs to be rescued by another daemon.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from durableq.client import Client
from tests.reliability.battery import (
    Figures,
    errors_by_job,
    fleet,
    jobs_by_id,
    problem_lines,
)
from tests.support.processes import wait_until
from tests.support.recorder import read_records

SHUTDOWN_TIMEOUT = 1.0
GRACE = 2.0  # dispatcher.SHUTDOWN_GRACE: how long stopped handlers get before release
STUBBORN_SECONDS = 15.0


def test_sigterm_releases_unfinished_jobs_and_exits_zero(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("graceful stop")
    with Client.open(str(db_path)) as client:
        quick = client.enqueue("record", {"seconds": 0.5})
        cooperative = [client.enqueue("record", {"seconds": 60}) for _ in range(2)]
        stubborn = client.enqueue("stubborn", {"seconds": STUBBORN_SECONDS})
    released = [*cooperative, stubborn]
    args = ("--concurrency", "4", "--shutdown-timeout", f"{SHUTDOWN_TIMEOUT}s")
    with fleet(db_path, tmp_path, *args) as daemons:
        daemon = daemons.start()
        _wait_started(daemons.record, [quick, *released])
        began = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        code = daemon.process.wait(timeout=SHUTDOWN_TIMEOUT + GRACE + 30)
        took = time.monotonic() - began
        daemon.exit_code = code

    report["exit_code"], report["seconds_to_exit"] = code, took
    assert code == 0, daemon.log_text()
    assert took < STUBBORN_SECONDS - 2, "the daemon waited for the stubborn handler"
    rows, errors = jobs_by_id(db_path), errors_by_job(db_path)
    assert rows[quick]["status"] == "completed"
    for job in released:
        _assert_released(rows[job], errors.get(job))
    events = [(r["job"], r["event"]) for r in read_records(daemons.record)]
    assert all((job, "stopped") in events for job in cooperative), events
    assert (stubborn, "end") not in events
    log = daemon.log_text()
    assert f"job {stubborn}: handler did not stop; releasing the job" in log
    assert not problem_lines(log)


def test_second_sigterm_exits_at_once_and_the_job_is_rescued(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("second SIGTERM")
    with Client.open(str(db_path)) as client:
        job = client.enqueue("stubborn", {"seconds": 30})
    with fleet(db_path, tmp_path, "--lease", "1s", "--shutdown-timeout", "60s") as daemons:
        first = daemons.start()
        _wait_started(daemons.record, [job])
        first.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "SIGTERM: finishing" in first.log_text(), what="the first SIGTERM")
        began = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        first.exit_code = first.process.wait(timeout=10)
        report["seconds_to_exit"] = time.monotonic() - began
        assert first.exit_code == 128 + signal.SIGTERM
        assert jobs_by_id(db_path)[job]["status"] == "running", "the lease should remain"

        second = daemons.start()
        wait_until(
            lambda: any(r["pid"] == second.pid for r in read_records(daemons.record)),
            timeout=60,
            what="the rescued job to run again",
        )
        daemons.kill(second)
    (died,) = errors_by_job(db_path)[job]
    assert f"-{first.pid}-" in died["error"]
    runs = [(r["pid"], r["attempt"]) for r in read_records(daemons.record) if r["event"] == "start"]
    assert runs == [(first.pid, 1), (second.pid, 2)]


def _wait_started(record: Path, jobs: list[int]) -> None:
    def started() -> bool:
        return {r["job"] for r in read_records(record) if r["event"] == "start"} >= set(jobs)

    wait_until(started, timeout=60, what=f"jobs {jobs} to start")


def _assert_released(row: dict[str, object], errors: list[dict[str, object]] | None) -> None:
    assert row["status"] == "pending", row
    assert row["attempts"] == 0, f"a released attempt was counted: {row}"
    assert row["worker_id"] is None and row["lease_token"] is None
    assert row["lease_expires_at"] is None and row["finished_at"] is None
    assert not errors, errors
