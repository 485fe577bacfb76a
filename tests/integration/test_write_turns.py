"""Write turns (store/sqlite/turns.py): writers of one SQLite file queue in the kernel on its
`-lock` file, give up at their busy timeout, get the turn when its holder dies, and sync the
WAL after their turn before they return."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from durableq.client import Client
from durableq.core.config import Settings, database_url
from durableq.core.errors import DatabaseBusy
from durableq.store.sqlite.statements import take_turn, write_transaction
from durableq.store.sqlite.turns import (
    LOCK_SUFFIX,
    WriteTurns,
    leave_turns,
    relax_sync,
    turns_for,
)

# A process that takes the turn of a file, says so, and holds it until killed.
HOLDER = """
import sys, time
from durableq.store.sqlite.turns import WriteTurns
turns = WriteTurns(sys.argv[1])
assert turns.take(5)
print("holding", flush=True)
time.sleep(600)
"""


def start_holder(db_path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


@pytest.fixture
def holder(db_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = start_holder(db_path)
    yield process
    process.kill()
    process.wait()


def test_a_turn_held_by_another_process_is_waited_for_up_to_the_timeout(
    db_path: Path, holder: subprocess.Popen[str]
) -> None:
    turns = WriteTurns(str(db_path))
    started = time.monotonic()
    assert not turns.take(0.3)
    assert 0.3 <= time.monotonic() - started < 2
    # Giving up left nothing held here: once the holder is gone, the turn is free.
    holder.kill()
    holder.wait()
    assert turns.take(2)
    turns.give_back()


def test_the_turn_of_a_process_killed_while_holding_it_passes_to_a_waiter(
    db_path: Path, holder: subprocess.Popen[str]
) -> None:
    turns = WriteTurns(str(db_path))
    taken: list[float] = []

    def wait() -> None:
        if turns.take(10):
            taken.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    assert not taken
    killed = time.monotonic()
    holder.send_signal(signal.SIGKILL)
    waiter.join(10)
    assert taken and taken[0] - killed < 1.0
    turns.give_back()


def test_threads_of_one_process_take_turns(db_path: Path) -> None:
    turns = turns_for(str(db_path))
    assert turns is turns_for(str(db_path.parent / "." / db_path.name))  # one per file
    inside, overlaps = [0], [0]

    def write() -> None:
        for _ in range(200):
            assert turns.take(10)
            inside[0] += 1
            if inside[0] > 1:
                overlaps[0] += 1
            time.sleep(0)
            inside[0] -= 1
            turns.give_back()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [0]
    lock_file = db_path.parent / (db_path.name + LOCK_SUFFIX)
    assert lock_file.exists()
    leave_turns(turns)
    assert lock_file.exists()  # one user left
    leave_turns(turns)
    assert not lock_file.exists()  # the last one removes it: nothing uses the database


def test_a_forked_child_takes_the_turn_its_parent_gave_back(db_path: Path) -> None:
    turns = turns_for(str(db_path))
    assert turns.take(1)
    pid = os.fork()
    if pid == 0:  # the child: its copy of the parent's held turn is not its own
        code = 0 if turns.take(5) else 3
        os._exit(code)
    time.sleep(0.2)
    turns.give_back()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    leave_turns(turns)


def test_relax_sync_applies_to_full_on_wal_only(tmp_path: Path) -> None:
    def level(path: Path, synchronous: str, wal: bool) -> tuple[bool, int]:
        connection = sqlite3.connect(path, isolation_level=None)
        if wal:
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        relaxed = relax_sync(connection)
        (now,) = connection.execute("PRAGMA synchronous").fetchone()
        connection.close()
        return relaxed, now

    assert level(tmp_path / "a.db", "FULL", wal=True) == (True, 1)
    assert level(tmp_path / "b.db", "NORMAL", wal=True) == (False, 1)
    assert level(tmp_path / "c.db", "EXTRA", wal=True) == (False, 3)
    assert level(tmp_path / "d.db", "FULL", wal=False) == (False, 2)


def test_an_enqueue_behind_a_held_turn_is_a_busy_error_and_writes_nothing(db_path: Path) -> None:
    settings = Settings(database=database_url(str(db_path)), busy_timeout=0.3)
    with Client.open(settings) as client:
        holder = start_holder(db_path)
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseBusy, match="stayed locked past the busy timeout"):
                client.enqueue("noop")
            assert time.monotonic() - started < 2
        finally:
            holder.kill()
            holder.wait()
        job_id = client.enqueue("noop")
        assert [job.id for job in client.jobs()] == [job_id]


def test_a_renewal_in_a_hurry_leaves_the_queue_and_writes(
    db_path: Path, holder: subprocess.Popen[str]
) -> None:
    """A turn stuck with its holder (here: a process that never gives it back) must not make a
    lease renewal near its deadline wait out the busy timeout: from hurry_at on it takes
    SQLite's lock itself."""
    turns = WriteTurns(str(db_path))
    started = time.monotonic()
    assert take_turn(turns, busy_timeout=5, hurry_at=started + 0.2) is False
    assert 0.2 <= time.monotonic() - started < 1
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        take_turn(turns, busy_timeout=0.2, hurry_at=None)  # not in a hurry: waits, gives up
    connection = sqlite3.connect(db_path, isolation_level=None)
    connection.execute("CREATE TABLE leases (until REAL)")
    with write_transaction(connection, 5, False, time.monotonic(), turns, flush=False):
        connection.execute("INSERT INTO leases VALUES (1)")
    assert connection.execute("SELECT count(*) FROM leases").fetchone() == (1,)
    connection.close()
