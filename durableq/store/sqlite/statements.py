"""SQLite's statements, by name, and its transactions: no SQLAlchemy here.

Shared by the SQLite store (sqlite/store.py) and by the CLI's enqueue (sqlite/enqueue.py,
through sqlite/inserts.py), which skips importing SQLAlchemy altogether: that import is most
of a CLI call's time.
"""

from __future__ import annotations

import errno
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from durableq.core.errors import DatabaseBusy, DatabaseError, DiskFull
from durableq.core.jobs import TRANSITIONS, Action, JobStatus, sources_of
from durableq.core.outcomes import FINISH_ACTIONS
from durableq.core.uniqueness import unique_held
from durableq.store.sqlite.turns import WriteTurns

LOCK_RETRY_FIRST = 0.0002
LOCK_RETRY_LONGEST = 0.002
LOCK_RETRY_HURRIED = 0.00005  # a lease renewal near its deadline: try again at once, every time


def guard(*actions: Action) -> str:
    """The status condition under which TRANSITIONS allows every one of `actions`, rendered
    from the table (`status = 'x'` for one source: the form the partial indexes are keyed on)."""
    sources = sorted(set.intersection(*({s.value for s in sources_of(a)} for a in actions)))
    assert sources, actions
    if len(sources) == 1:
        return f"status = '{sources[0]}'"
    return "status IN ({})".format(", ".join(f"'{source}'" for source in sources))


def _target(action: Action) -> str:
    (target,) = TRANSITIONS[action].targets
    return f"'{target.value}'"


PENDING, CANCELED, RUNNING = (
    f"'{s.value}'" for s in (JobStatus.PENDING, JobStatus.CANCELED, JobStatus.RUNNING)
)

UNIQUE_HELD = unique_held()

INSERT_HEAD = """
INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts, timeout,
                  run_at, created_at, updated_at, cancel_requested)
VALUES """
VALUES = f"(?, ?, ?, {PENDING}, ?, 0, ?, ?, ?, ?, ?, 0)"
INSERT = INSERT_HEAD + VALUES
# Many rows per INSERT: twice as fast as executemany of one-row INSERTs (measured 320k vs 158k
# rows/s), and well inside SQLite's 32,766 bound parameters (9 a row).
INSERT_CHUNK = 500

# A job with keys (idempotency, unique, schedule tick): one row, and nothing if a key is taken.
INSERT_KEYED = f"""
INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts, timeout,
                  run_at, created_at, updated_at, cancel_requested,
                  idempotency_key, unique_key, unique_states, schedule, schedule_tick)
VALUES (?, ?, ?, {PENDING}, ?, 0, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING id
"""
_TWIN = "SELECT id, type, payload, status FROM jobs WHERE "
BY_IDEMPOTENCY_KEY = _TWIN + "idempotency_key = ?"
BY_UNIQUE_KEY = _TWIN + f"unique_key = ? AND {UNIQUE_HELD}"
BY_SCHEDULE_TICK = _TWIN + "schedule = ? AND schedule_tick = ?"
REPLACE_TWIN = f"""
UPDATE jobs SET payload = ?2, run_at = ?3, updated_at = ?4 WHERE id = ?1 AND status = {PENDING}
"""

CLAIM = f"""
UPDATE jobs
SET status = {_target(Action.CLAIM)}, attempts = attempts + 1, started_at = ?1, updated_at = ?1,
    worker_id = ?2, lease_token = ?3, lease_expires_at = ?4
WHERE id IN (
    SELECT id FROM jobs
    WHERE {guard(Action.CLAIM)} AND run_at <= ?1 {{queues}}
    ORDER BY priority DESC, run_at, id
    LIMIT ?5)
RETURNING id, queue, type, payload, attempts, max_attempts, timeout, run_at, meta, priority
"""

# A job whose cancel was requested ends canceled instead of going back to pending.
FINISH = f"""
UPDATE jobs
SET status = CASE WHEN cancel_requested AND ?3 = {PENDING} THEN {CANCELED} ELSE ?3 END,
    finished_at = CASE WHEN cancel_requested AND ?3 = {PENDING} THEN ?9 ELSE ?4 END,
    result = ?5,
    last_error = COALESCE(?6, last_error),
    run_at = COALESCE(?7, run_at),
    attempts = attempts + ?8,
    updated_at = ?9,
    progress = COALESCE(?10, progress),
    progress_message = COALESCE(?11, progress_message),
    meta = COALESCE(?12, meta),
    started_at = COALESCE(?13, started_at),
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL
WHERE id = ?1 AND {guard(*FINISH_ACTIONS)} AND lease_token = ?2
"""

# A turn that renews the worker's leases (as the heartbeat does, in core/upkeep.py). A lease
# never moves earlier: two renewals may commit out of the order in which they read the time.
RENEW = f"""
UPDATE jobs
SET lease_expires_at = CASE WHEN lease_expires_at > ?1 THEN lease_expires_at ELSE ?1 END
WHERE worker_id = ?2 AND status = {RUNNING}
RETURNING id, lease_token
"""

BEAT = "UPDATE workers SET heartbeat_at = ?1 WHERE id = ?2"

INSERT_ERROR = """
INSERT INTO job_errors (job_id, attempt, error, traceback, failed_at) VALUES (?, ?, ?, ?, ?)
"""


def begin_immediate(
    connection: Any,
    budget: float,
    toggle_busy_timeout: bool = True,
    hurry_at: float | None = None,
    on_first_refusal: Callable[[], None] | None = None,
) -> None:
    """Take SQLite's write lock up front, waiting up to `budget` seconds for it.

    Up front, because a deferred transaction that upgrades its lock later can fail with
    SQLITE_BUSY at once, whatever the busy timeout. Waiting here rather than in SQLite's busy
    handler, because that handler sleeps 25-100 ms between tries once it has waited a little:
    against a producer that commits and re-locks within a millisecond it almost never wins,
    and a worker starved that way falls seconds behind. Short jittered sleeps compete fairly.

    From `hurry_at` on (a time.monotonic() value), the wait stops being fair: a lease renewal
    close to its deadline retries every few microseconds, so it takes the first gap between
    other writers' transactions (theirs sleep up to LOCK_RETRY_LONGEST between tries).

    `on_first_refusal` runs once, when the lock is found taken (see write_transaction).
    """
    deadline = time.monotonic() + budget
    pause = LOCK_RETRY_FIRST
    if toggle_busy_timeout:  # a connection that keeps the handler off for good need not
        connection.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                text = str(error).lower()
                if "locked" not in text and "busy" not in text:
                    raise
                if on_first_refusal is not None:
                    on_first_refusal()
                    on_first_refusal = None
                now = time.monotonic()
                if now + pause > deadline:
                    raise
            if hurry_at is not None and now >= hurry_at:
                time.sleep(LOCK_RETRY_HURRIED)
                continue
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 1.5, LOCK_RETRY_LONGEST)
    finally:
        if toggle_busy_timeout:
            connection.execute(f"PRAGMA busy_timeout = {int(budget * 1000)}")


class Turn:
    """One transaction's write turn (sqlite/turns.py), if `turns` and it got it: `leave()` once
    it is done, or at once when SQLite's lock turns out to be held by a writer outside the
    turns (another program): the queue must not wait behind it one writer at a time, so every
    writer then waits for SQLite's lock as they all did before there were turns (measured:
    under a lock hog, queued writers waited 2-9 s for their turn and leases lapsed)."""

    def __init__(self, turns: WriteTurns | None, busy_timeout: float, hurry_at: float | None):
        self._held = (
            turns if turns is not None and take_turn(turns, busy_timeout, hurry_at) else None
        )

    def leave(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.give_back()


def take_turn(turns: WriteTurns, busy_timeout: float, hurry_at: float | None) -> bool:
    """Queue for this file's write turn (sqlite/turns.py): True once taken. From `hurry_at` on
    (a lease renewal near its deadline) the queue is left: False, and the transaction takes the
    first gap in SQLite's lock itself (begin_immediate), as it would without turns. Another
    writer may hold SQLite's lock for long (a foreign writer, a turn whose holder waits on
    one): the renewal must not wait behind every queued writer's share of the gaps."""
    wait = busy_timeout if hurry_at is None else min(busy_timeout, hurry_at - time.monotonic())
    if turns.take(max(0.0, wait)):
        return True
    if hurry_at is not None and wait < busy_timeout:
        return False
    raise sqlite3.OperationalError("database is locked (waiting for the write turn)")


def configure(connection: sqlite3.Connection, synchronous: str, busy_timeout: float) -> None:
    """What every durableq connection to SQLite sets, whichever path opened it."""
    # Transactions begin where durableq says (BEGIN IMMEDIATE), not where the driver guesses.
    connection.isolation_level = None
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute(f"PRAGMA synchronous = {synchronous}")


@contextmanager
def write_transaction(
    connection: sqlite3.Connection,
    busy_timeout: float,
    toggle: bool,
    hurry_at: float | None = None,
    turns: WriteTurns | None = None,
    flush: bool = False,
) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (errors are the caller's to word).

    With `turns`, inside this process's write turn of the file (sqlite/turns.py); with `flush`
    too (a connection relax_sync set to NORMAL), the WAL is synced after the turn, before this
    returns."""
    deadline = time.monotonic() + busy_timeout
    turn = Turn(turns, busy_timeout, hurry_at)
    try:
        begin_immediate(
            connection,
            max(0.0, deadline - time.monotonic()),
            toggle_busy_timeout=toggle,
            hurry_at=hurry_at,
            on_first_refusal=turn.leave,
        )
        try:
            yield
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    finally:
        turn.leave()
    if flush and turns is not None:
        try:
            turns.flush()
        except OSError as error:
            raise sqlite3.OperationalError(f"disk I/O error: {error.strerror}") from error


def failure(message: str, where: str, operational: bool = False) -> DatabaseError:
    """A driver's error message, worded for a user who can act on it."""
    lowered = message.lower()
    if "database is locked" in lowered or "database is busy" in lowered:
        return DatabaseBusy(
            f"database {where} stayed locked past the busy timeout; retry, or raise "
            "DURABLEQ_BUSY_TIMEOUT"
        )
    full = "database or disk is full" in lowered or "no space left" in lowered
    if full or ("i/o error" in lowered and _nearly_full(where)):
        # A full disk shows as an I/O error when SQLite cannot grow its -shm file (tmpfs).
        return DiskFull(
            f"database {where}: the disk is full, nothing was written; free some space (or "
            "move the database to a bigger disk) and retry"
        )
    # The message first: the filesystem is looked at only for errors it can explain.
    signs = ("readonly", "read-only", "i/o error", "unable to open")
    if any(sign in lowered for sign in signs) and _on_read_only_filesystem(where):
        return DatabaseError(
            f"database {where} is on a read-only filesystem, nothing was written; remount it "
            "read-write and retry (a disk the kernel turned read-only after errors needs "
            "repair first: see dmesg)"
        )
    if "disk i/o error" in lowered:
        return DatabaseError(
            f"database {where}: the disk reported an I/O error, the write was not acknowledged "
            "(a failing disk, or a filesystem the kernel is turning read-only: see dmesg); "
            "repair the disk and retry"
        )
    if "file is not a database" in lowered:
        return DatabaseError(f"{where} is not a SQLite database; pass another --db")
    if "malformed" in lowered or "corrupt" in lowered:
        return DatabaseError(f"database {where} is corrupt ({message}); restore it from a backup")
    if "readonly" in lowered or "read-only" in lowered:
        return DatabaseError(
            f"database {where} is read-only; check the permissions of the file and its directory"
        )
    if "unable to open" in lowered:
        return DatabaseError(
            f"cannot open database {where}; check that its directory exists and is writable"
        )
    if operational and "connection" in lowered:
        return DatabaseError(f"cannot connect to database {where}: {_first_line(message)}")
    return DatabaseError(f"database error on {where}: {_first_line(message)}")


FULL_BELOW = 1 << 20  # bytes free under which an I/O error is taken for a full disk


def _nearly_full(where: str) -> bool:
    if "://" in where:
        return False
    try:
        stats = os.statvfs(os.path.dirname(os.path.abspath(where)))
    except (OSError, ValueError):
        return False
    return stats.f_bavail * stats.f_frsize < FULL_BELOW


def _on_read_only_filesystem(where: str) -> bool:
    """Whether a SQLite database's filesystem refuses writes: mounted read-only (statvfs), or
    turned read-only by the kernel after an error, which Linux 6.18's ext4 does without
    setting that flag: opening the file for writing then fails with EROFS. For a PostgreSQL
    URL, or a path that cannot be examined: no."""
    if "://" in where:
        return False
    try:
        path = os.path.abspath(where)
        if os.statvfs(os.path.dirname(path)).f_flag & os.ST_RDONLY:
            return True
        os.close(os.open(path, os.O_RDWR))  # opens, writes nothing
    except OSError as error:
        return error.errno == errno.EROFS
    except ValueError:
        return False
    return False


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text
