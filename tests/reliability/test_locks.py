"""A held write lock: users wait for it within the busy timeout, and hear about it past that.

Another connection holds SQLite's write lock (BEGIN IMMEDIATE). `durableq enqueue` must wait
for it rather than fail while the lock can still be had within DURABLEQ_BUSY_TIMEOUT; past the
timeout it prints one error line and exits 1. A daemon whose busy timeout is shorter than the
lock logs warnings, keeps running, and completes its jobs once the lock is released.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from durableq.client import Client
from tests.reliability.battery import (
    Figures,
    count,
    fleet,
    jobs_by_id,
    problem_lines,
    wait_all,
    wait_registered,
)
from tests.support.processes import DURABLEQ, REPO, environment, wait_until


@contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock from a plain sqlite3 connection until the block ends."""
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        finally:
            connection.execute("ROLLBACK")


def _enqueue_process(db: Path, busy_timeout: str) -> subprocess.Popen[str]:
    env = environment(DURABLEQ_BUSY_TIMEOUT=busy_timeout)
    command = [*DURABLEQ, "--db", str(db), "enqueue", "record"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )


def _has_open(pid: int, path: Path) -> bool:
    """The process has opened the database file: it is past start-up and at the lock."""
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def test_enqueue_waits_for_a_lock_held_within_the_busy_timeout(
    db_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("lock held 1s, busy timeout 5s")
    Client.open(str(db_path)).close()
    with write_lock(db_path):
        process = _enqueue_process(db_path, "5s")
        wait_until(lambda: _has_open(process.pid, db_path), timeout=60, what="enqueue at the db")
        opened = time.monotonic()
        while time.monotonic() - opened < 1.0:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=60)
    report["waited_s"] = time.monotonic() - opened
    assert process.returncode == 0, stderr
    assert stderr == ""
    assert int(stdout) in jobs_by_id(db_path)


def test_enqueue_reports_a_lock_held_past_the_busy_timeout(
    db_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("lock held 2s, busy timeout 200ms")
    Client.open(str(db_path)).close()
    with write_lock(db_path):
        process = _enqueue_process(db_path, "200ms")
        wait_until(lambda: _has_open(process.pid, db_path), timeout=60, what="enqueue at the db")
        opened = time.monotonic()
        wait_until(lambda: process.poll() is not None, timeout=2, what="enqueue to give up")
        report["gave_up_after_s"] = time.monotonic() - opened
    stdout, stderr = process.communicate()
    assert process.returncode == 1
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("durableq: error: ") and "locked" in lines[0], lines[0]
    assert jobs_by_id(db_path) == {}


def test_daemon_rides_out_a_lock_longer_than_its_busy_timeout(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    report = figures("daemon under a 3s lock")
    env = environment(tmp_path / "record.jsonl", DURABLEQ_BUSY_TIMEOUT="300ms")
    Client.open(str(db_path)).close()
    with fleet(db_path, tmp_path, "--concurrency", "4", env=env) as daemons:
        daemon = daemons.start()
        wait_registered(db_path, 1)
        with Client.open(str(db_path)) as client:
            due = datetime.now(UTC) + timedelta(seconds=0.5)  # due while the lock is held
            client.enqueue_many([{"type": "record", "run_at": due.isoformat()}] * 20)
        with write_lock(db_path):
            held = time.monotonic()
            while time.monotonic() - held < 3.0:
                daemons.assert_none_died()
                time.sleep(0.05)
            assert count(db_path, "completed") == 0
        wait_all(db_path, "completed", 20, timeout=60, fleet=daemons)
        codes = daemons.stop_all()

    log = daemon.log_text()
    warnings = [line for line in log.splitlines() if "database unavailable" in line]
    report["warnings"] = len(warnings)
    assert warnings, f"no warning while the lock was held:\n{log}"
    assert codes == {daemon.pid: 0}
    errors = [line for line in problem_lines(log) if "database unavailable" not in line]
    assert not errors, errors
