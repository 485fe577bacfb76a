"""A disk that turns read-only under a running daemon, as ext4 does after an error
(`errors=remount-ro`): a 64 MB ext4 image of the test's own, loop-mounted as root, told to fail
through the kernel's own test hook (/sys/fs/ext4/<dev>/trigger_fs_error), then repaired with
e2fsck and mounted again. Skips where mounting or the hook is not available.

Linux refuses `mount -o remount,ro` while a process has a file open for writing (a running
daemon always has), so an error the kernel reacts to is the way a live daemon meets a read-only
disk; a disk mounted read-only before any daemon starts is the catalog's and test_bad_inputs'.

- `durableq enqueue` fails with one line that says the filesystem is read-only (exit 1);
  the library raises a DatabaseError that says so too; no job appears that was not
  acknowledged;
- the daemon keeps running, warns once per part of it (not once per retry), and drains on
  SIGTERM with exit 0 although it cannot write;
- after repair (umount, e2fsck, mount) a new daemon completes every acknowledged job; a job
  runs again only if its outcome could not be written; `integrity_check` is ok.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.errors import DatabaseError
from durableq.core.jobs import JobStatus
from durableq.worker import prefetch
from tests.reliability.battery import TEST_TIMEOUT, Figures, executions, overlaps
from tests.support.processes import environment, run_cli, start_worker, stop, wait_until

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

JOBS = 400
SECONDS = 0.02  # each job's run time
LEASE = "5s"  # the first daemon cannot release its jobs: the new one rescues them after this
# What the errors say: the filesystem's read-only flag where the kernel set it (6.18 here
# aborts the journal, so writes fail with EIO, but leaves the flag unset), else the I/O error.
SIGNS = ("read-only filesystem", "I/O error")


class Ext4Disk:
    def __init__(self, image: Path, mount: Path) -> None:
        self.image, self.mount = image, mount

    def attach(self) -> None:
        done = subprocess.run(
            ["mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mount)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot loop-mount an ext4 image here: {done.stderr.strip()}")

    def device(self) -> str:
        source = subprocess.run(
            ["findmnt", "-no", "SOURCE", str(self.mount)], capture_output=True, text=True
        ).stdout.strip()
        return os.path.basename(source)

    def fail(self) -> None:
        """The kernel's test hook: an ext4 error, which errors=remount-ro answers by aborting
        the journal and turning the filesystem read-only."""
        hook = Path("/sys/fs/ext4") / self.device() / "trigger_fs_error"
        if not hook.exists():
            pytest.skip(f"this kernel has no {hook} to make ext4 fail")
        hook.write_text("durableq read-only disk test")

    def read_only(self) -> bool:
        """Whether the kernel flagged the filesystem read-only (statvfs's ST_RDONLY)."""
        return bool(os.statvfs(self.mount).f_flag & os.ST_RDONLY)

    def repair(self) -> None:
        """What an operator does: unmount, check, mount again."""
        subprocess.run(["umount", str(self.mount)], check=True)
        checked = subprocess.run(["e2fsck", "-fy", str(self.image)], capture_output=True, text=True)
        assert checked.returncode in (0, 1), checked.stdout + checked.stderr  # 1: fixed
        self.attach()

    def detach(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount)], capture_output=True, check=False)


@pytest.fixture
def ext4_disk(tmp_path: Path) -> Iterator[Ext4Disk]:
    if os.geteuid() != 0:
        pytest.skip("loop-mounting an ext4 image needs root")
    if shutil.which("mkfs.ext4") is None or shutil.which("e2fsck") is None:
        pytest.skip("mkfs.ext4 and e2fsck (Debian's e2fsprogs) are needed")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    with open(image, "wb") as out:
        out.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    disk = Ext4Disk(image, mount)
    disk.attach()
    try:
        yield disk
    finally:
        disk.detach()


def test_a_disk_turned_read_only_loses_nothing(
    ext4_disk: Ext4Disk, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    db = ext4_disk.mount / "durableq.db"
    record = tmp_path / "record.jsonl"
    env = environment(record)
    acknowledged: list[int] = []
    refused = 0
    with Client.open(str(db)) as client:
        acknowledged += client.enqueue_many(
            [{"type": "record", "payload": {"seconds": SECONDS}}] * JOBS
        )
        first_log = tmp_path / "first.log"
        daemon = start_worker(
            db, "--concurrency", "4", "--lease", LEASE, log_path=first_log, env=env
        )
        try:
            wait_until(
                lambda: client.get(acknowledged[50]).status is JobStatus.COMPLETED,
                what="50 jobs completed",
            )
            ext4_disk.fail()
            failed = time.monotonic()
            while time.monotonic() - failed < 2:  # the producer goes on
                try:
                    acknowledged.append(client.enqueue("record", {"seconds": SECONDS}))
                except DatabaseError as error:
                    refused += 1
                    message = str(error)
                time.sleep(0.01)
            assert refused > 0, "enqueue went on working on a read-only disk"
            flagged = ext4_disk.read_only()
            assert any(sign in message for sign in SIGNS), message
            done = run_cli(["enqueue", "record", "--payload", '{"n": 1}'], db, env=env)
            assert done.returncode == 1, done
            lines = done.stderr.splitlines()
            assert len(lines) == 1 and any(sign in lines[0] for sign in SIGNS), done.stderr
            assert "see dmesg" in lines[0] and "Traceback" not in done.stderr
            assert daemon.poll() is None, "the daemon died of the read-only disk"
            asked = time.monotonic()
            code = stop(daemon, timeout=60)
            drained_in = time.monotonic() - asked
        finally:
            if daemon.poll() is None:
                daemon.kill()
    log = first_log.read_text()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    warnings = [line for line in log.splitlines() if "database unavailable" in line]
    assert 1 <= len(warnings) <= 6, "\n".join(warnings)
    assert all(any(sign in w for sign in SIGNS) for w in warnings), warnings

    ext4_disk.repair()
    repaired = time.monotonic()
    second = start_worker(
        db, "--concurrency", "4", "--lease", LEASE, log_path=tmp_path / "second.log", env=env
    )
    try:
        with Client.open(str(db)) as client:
            wait_until(
                lambda: all(
                    job.status is JobStatus.COMPLETED for job in client.store.get_many(acknowledged)
                ),
                timeout=90,
                what="every acknowledged job to complete after the repair",
            )
            all_done_in = time.monotonic() - repaired
    finally:
        stop(second)
    with sqlite3.connect(db) as check:
        ids = {row[0] for row in check.execute("SELECT id FROM jobs")}
        verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
    runs = executions(record, lambda _pid, _t: None)
    reruns = sum(len(r) - 1 for r in runs.values())
    report = figures("read-only disk (ext4 errors=remount-ro), 1 daemon x 4 slots + 1 producer")
    report["acknowledged"] = len(acknowledged)
    report["refused"] = refused
    report["flagged_read_only"] = flagged
    report["warnings"] = len(warnings)
    report["drained_s"] = round(drained_in, 2)
    report["reruns"] = reruns
    report["all_done_after_repair_s"] = round(all_done_in, 2)
    assert ids == set(acknowledged), "a job exists that was never acknowledged, or one is lost"
    assert verdict == "ok"
    assert not overlaps(runs)
    # Only jobs that were claimed when the disk failed can run again (their outcomes were lost):
    # at most the 4 running and the 16 claimed ahead of them (--prefetch), twice over.
    assert reruns <= 2 * (4 + prefetch.DEFAULT), reruns
