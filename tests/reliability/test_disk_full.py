"""A full disk under a running daemon and a producer: an 8 MB tmpfs of the test's own (mounted as
root, removed after; skips where mounting is not allowed), filled with a file while jobs are
enqueued and run, then freed.

- `durableq enqueue` fails with one line that says the disk is full (exit 1) and writes nothing;
  the library raises DiskFull (a DatabaseError);
- the daemon warns once per episode for each of its parts (not once per retry), keeps running,
  and resumes by itself once space is freed;
- no acknowledged job is lost, every one completes, `integrity_check` is ok.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durableq import DiskFull
from durableq.client import Client
from durableq.core.errors import DatabaseError
from durableq.core.jobs import JobStatus
from tests.reliability.battery import TEST_TIMEOUT, Figures
from tests.support.disks import fill, mount_tmpfs, unmount
from tests.support.processes import run_cli, start_worker, stop, wait_until

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

SIZE = "8m"
PAYLOAD = {"text": "x" * 300}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    mount_tmpfs(mount, SIZE)
    try:
        yield mount
    finally:
        unmount(mount)


def test_a_full_disk_loses_nothing_and_the_daemon_resumes(
    small_disk: Path, figures: Callable[[str], Figures]
) -> None:
    db = small_disk / "durableq.db"
    acknowledged: list[int] = []
    refused = 0
    with Client.open(str(db)) as client:
        acknowledged += client.enqueue_many(
            [{"type": "record", "payload": {**PAYLOAD, "seconds": 0.02}}] * 200
        )
        daemon = start_worker(db, "--concurrency", "4", log_path=small_disk.parent / "d.log")
        try:
            wait_until(lambda: client.get(acknowledged[50]).status is JobStatus.COMPLETED)
            filler = fill(small_disk)
            filled = time.monotonic()
            # The producer goes on: every enqueue either is acknowledged or raises DiskFull.
            while time.monotonic() - filled < 3:
                try:
                    acknowledged.append(client.enqueue("record", PAYLOAD))
                except DiskFull:
                    refused += 1
                except DatabaseError as error:  # never anything vaguer than DiskFull
                    pytest.fail(f"a full disk gave {type(error).__name__}: {error}")
                time.sleep(0.01)
            before = sqlite3.connect(db).execute("SELECT count(*) FROM jobs").fetchone()[0]
            done = run_cli(["enqueue", "record", "--payload", '{"n": 1}'], db)
            after = sqlite3.connect(db).execute("SELECT count(*) FROM jobs").fetchone()[0]
            assert done.returncode == 1, done
            lines = done.stderr.splitlines()
            assert len(lines) == 1 and "the disk is full" in lines[0], done.stderr
            assert "free some space" in lines[0] and "Traceback" not in done.stderr
            assert after == before
            assert daemon.poll() is None, "the daemon died of the full disk"
            filler.unlink()
            freed = time.monotonic()
            wait_until(
                lambda: all(
                    job.status is JobStatus.COMPLETED for job in client.store.get_many(acknowledged)
                ),
                timeout=60,
                what="every acknowledged job to complete after space returned",
            )
            resumed_in = time.monotonic() - freed
        finally:
            stop(daemon)
    log = (small_disk.parent / "d.log").read_text()
    warnings = [line for line in log.splitlines() if "database unavailable" in line]
    check = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
    report = figures(f"disk full, {SIZE} tmpfs, 1 daemon + 1 producer")
    report["acknowledged"] = len(acknowledged)
    report["refused"] = refused
    report["warnings"] = len(warnings)
    report["all_done_after_free_s"] = round(resumed_in, 2)
    assert refused > 0, "the disk never filled up"
    assert check == "ok"
    # One per part of the daemon that met the full disk (the worker, the heartbeat, ...), once.
    assert 1 <= len(warnings) <= 6, "\n".join(warnings)
    assert "database available again" in log
