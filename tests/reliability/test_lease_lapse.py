"""A live owner that cannot renew its lease stops its handler before anyone else may run the job.

Two cases from the bug report, each with two daemons on a 1-second lease:
- another connection holds SQLite's write lock for 2.5 s (well under the busy timeout) while a
  4-second job runs: the owner cannot renew, so its handler is told to stop at the lease's end by
  its own clock, and the job is run again only after that, never beside it;
- the owner is frozen (SIGSTOP) past its lease, the other daemon rescues the job and runs it, and
  the owner is thawed while that second execution still runs: the thawed handler sees its lapsed
  lease at its very next look at ctx.cancelled, and never runs to the end.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from durableq.client import Client
from tests.reliability.battery import (
    Figures,
    errors_by_job,
    fleet,
    jobs_by_id,
    overlaps,
    problem_lines,
    wait_all,
    wait_registered,
)
from tests.reliability.battery import executions as executions_of
from tests.support.processes import wait_until
from tests.support.recorder import read_records

LEASE = "1s"


def test_a_renewal_blocked_by_the_write_lock_stops_the_handler_first(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("lease lapse: write lock held 2.5 s")
    with fleet(db_path, tmp_path, "--lease", LEASE, "--concurrency", "1") as daemons:
        pair = [daemons.start(), daemons.start()]
        wait_registered(db_path, 2)
        with Client.open(str(db_path)) as client:
            job = client.enqueue("record", {"seconds": 4})
        started, pid = _started(daemons.record, job)
        held_from = time.time()
        _hold_write_lock(db_path, 2.5)
        wait_all(db_path, "completed", 1, timeout=60)
        codes = daemons.stop_all()
    first = next(daemon for daemon in pair if daemon.pid == pid)

    runs = executions_of(daemons.record, daemons.kill_time)[job]
    report["first_stopped_after_s"] = (runs[0].end or 0) - started
    report["second_started_after_lock_s"] = runs[-1].start - held_from
    report["executions"] = len(runs)
    assert not (bad := overlaps({job: runs})), bad
    assert runs[0].pid == first.pid and runs[0].how == "stopped", runs
    # Stopped at the lease's end (a heartbeat interval after its last renewal at most), not
    # when the database let it know.
    assert (runs[0].end or 0) - held_from < 1.5, runs
    assert runs[-1].how == "end"
    assert "lease lapsed" in first.log_text()
    assert jobs_by_id(db_path)[job]["status"] == "completed"
    assert errors_by_job(db_path)[job], "the lapsed attempt left no error"
    assert sorted(codes.values()) == [0, 0], codes
    assert not problem_lines(daemons.combined_logs())


def test_a_thawed_owner_stops_at_its_first_look_at_ctx_cancelled(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("lease lapse: owner frozen past its lease")
    with Client.open(str(db_path)) as client:
        job = client.enqueue("record", {"seconds": 6})
    with fleet(db_path, tmp_path, "--lease", LEASE, "--concurrency", "1") as daemons:
        first = daemons.start()
        _started(daemons.record, job, first.pid)
        first.process.send_signal(signal.SIGSTOP)
        second = daemons.start()
        _started(daemons.record, job, second.pid)  # the rescuer's execution runs now
        thawed = time.time()
        first.process.send_signal(signal.SIGCONT)
        wait_all(db_path, "completed", 1, timeout=60)
        codes = daemons.stop_all()

    lines = [r for r in read_records(daemons.record) if r["job"] == job]
    by_first = [r for r in lines if r["pid"] == first.pid]
    assert [r["event"] for r in by_first] == ["start", "stopped"], by_first
    report["thawed_handler_ran_ms"] = (by_first[-1]["t"] - thawed) * 1000
    assert by_first[-1]["t"] - thawed < 0.5, "the thawed handler did not stop at once"
    by_second = [r["event"] for r in lines if r["pid"] == second.pid]
    assert by_second == ["start", "end"]
    assert codes == {first.pid: 0, second.pid: 0}


def _started(record: Path, job: int, pid: int | None = None) -> tuple[float, int]:
    """When (and in which daemon) job `job` started, in daemon `pid` if given."""

    def start() -> tuple[float, int] | None:
        for line in read_records(record):
            if line["job"] == job and line["event"] == "start" and pid in (None, line["pid"]):
                return float(line["t"]), int(line["pid"])
        return None

    found: tuple[float, int] = wait_until(start, timeout=60, interval=0.01, what="the start")
    return found


def _hold_write_lock(db: Path, seconds: float) -> None:
    """Take SQLite's write lock, hold it `seconds`, let go (as a long batch or a backup would)."""
    taken = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(db, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(30), "could not take the write lock"
    holder.join()
