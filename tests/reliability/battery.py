"""Shared machinery of the reliability battery: fleets of real daemons, the record file, the DB.

Everything here observes durableq from the outside, as an operator would: daemons are
subprocesses killed with real signals, the database is read with the stdlib sqlite3 module (no
durableq code), and executions are reconstructed from the start/end lines the recorder app
appends (tests/support/recorder.py).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.processes import environment, start_worker, wait_until
from tests.support.recorder import read_records

SOAK = os.environ.get("DURABLEQ_SOAK", "") not in ("", "0")


# Per-test limit for pytest-timeout: the soak sizes take longer than the default run's 240 s.
TEST_TIMEOUT = 3600 if SOAK else 240


def sized(default: int, soak: int, override: str | None = None) -> int:
    """A size for the default run, the soak run, or whatever the named env variable says."""
    if override and os.environ.get(override):
        return int(os.environ[override])
    return soak if SOAK else default


def seeded_rng(name: str = "DURABLEQ_SOAK_SEED") -> tuple[int, random.Random]:
    """A random source whose seed is printed by the caller, so any run can be replayed."""
    text = os.environ.get(name)
    seed = int(text) if text else random.SystemRandom().randrange(2**32)
    return seed, random.Random(seed)


# -- daemons ------------------------------------------------------------------------------


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    log: Path
    started: float  # wall clock, comparable with the record file's "t"
    killed_at: float | None = None
    exit_code: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass
class Fleet:
    """Daemons on one database; remembers every instance, how it ended and when it was killed."""

    db: Path
    record: Path
    logs: Path
    args: tuple[str, ...]
    env: dict[str, str] | None = None
    daemons: list[Daemon] = field(default_factory=list)

    def start(self, *extra: str) -> Daemon:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"daemon-{len(self.daemons)}.log"
        env = self.env if self.env is not None else environment(self.record)
        started = time.time()
        process = start_worker(
            self.db, *self.args, *extra, record=self.record, log_path=log, env=env
        )
        daemon = Daemon(process, log, started)
        self.daemons.append(daemon)
        return daemon

    def alive(self) -> list[Daemon]:
        return [d for d in self.daemons if d.killed_at is None and d.exit_code is None]

    def kill(self, daemon: Daemon, sig: int = signal.SIGKILL) -> float:
        """Kill -9 (by default); returns the time by which the process was certainly dead."""
        daemon.process.send_signal(sig)
        daemon.exit_code = daemon.process.wait(timeout=30)
        daemon.killed_at = time.time()
        return daemon.killed_at

    def unexpected_exits(self) -> list[str]:
        """Daemons that ended although nobody killed or stopped them."""
        found = []
        for daemon in self.daemons:
            if daemon.killed_at is None and daemon.exit_code is None:
                code = daemon.process.poll()
                if code is not None:
                    daemon.exit_code = code
                    found.append(f"daemon pid {daemon.pid} exited with {code}: {tail(daemon)}")
        return found

    def assert_none_died(self) -> None:
        problems = self.unexpected_exits()
        assert not problems, "\n".join(problems)

    def stop_all(self, timeout: float = 60) -> dict[int, int]:
        """SIGTERM every live daemon and wait; returns pid -> exit code."""
        self.assert_none_died()
        running = self.alive()
        for daemon in running:
            daemon.process.send_signal(signal.SIGTERM)
        codes = {}
        for daemon in running:
            daemon.exit_code = daemon.process.wait(timeout=timeout)
            codes[daemon.pid] = daemon.exit_code
        return codes

    def close(self) -> None:
        """Never leave a daemon behind, whatever the test did."""
        for daemon in self.daemons:
            if daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait()

    def kill_time(self, pid: int, at: float) -> float | None:
        """When the daemon with `pid` that was alive at `at` was killed (None: not killed)."""
        for daemon in self.daemons:
            alive_then = daemon.killed_at is None or at <= daemon.killed_at
            if daemon.pid == pid and daemon.started <= at and alive_then:
                return daemon.killed_at
        return None

    def combined_logs(self) -> str:
        return "\n".join(d.log_text() for d in self.daemons)

    def lapsed(self) -> frozenset[tuple[int, int]]:
        """(pid, job) for every job whose handler a daemon stopped because its lease lapsed."""
        return frozenset(
            (daemon.pid, int(match))
            for daemon in self.daemons
            for match in LAPSED.findall(daemon.log_text())
        )


LAPSED = re.compile(r"job (\d+): lease lapsed before it could be renewed; telling its handler")
MIN_UPTIME = 1.0  # a daemon younger than this may still be importing: do not pick it


def kill_one(daemons: Fleet, rng: random.Random) -> bool:
    """SIGKILL a random daemon that is past start-up, and start its replacement at once."""
    now = time.time()
    candidates = [d for d in daemons.alive() if now - d.started >= MIN_UPTIME]
    if not candidates:
        return False
    daemons.kill(rng.choice(candidates))
    daemons.start()
    return True


@contextmanager
def fleet(db: Path, tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Fleet]:
    started = Fleet(db, tmp / "record.jsonl", tmp / "logs", tuple(args), env)
    try:
        yield started
    finally:
        started.close()


def tail(daemon: Daemon, lines: int = 15) -> str:
    return "\n".join(daemon.log_text().splitlines()[-lines:])


def wait_registered(db: Path, count: int, timeout: float = 60) -> None:
    """Until `count` daemons have registered in the workers table (they are past start-up)."""

    def registered() -> bool:
        try:
            return int(scalar(db, "SELECT count(*) FROM workers")) >= count
        except sqlite3.OperationalError:  # no schema yet
            return False

    wait_until(registered, timeout, interval=0.05, what=f"{count} registered daemon(s)")


def wait_started(db: Path, pids: Sequence[int], timeout: float = 60) -> None:
    """Until each of these daemons has registered (so its signal handlers are installed): one
    started moments before a SIGTERM, on a loaded machine, may still be importing, and the
    signal then ends it with -15 before it could drain anything."""
    wanted = ",".join(str(pid) for pid in pids) or "NULL"

    def started() -> bool:
        found = scalar(db, f"SELECT count(DISTINCT pid) FROM workers WHERE pid IN ({wanted})")
        return int(found) >= len(pids)

    wait_until(started, timeout, interval=0.05, what=f"daemons {list(pids)} to register")


def problem_lines(log: str) -> list[str]:
    """Lines no healthy daemon should write: errors, tracebacks, a locked database."""
    markers = (" ERROR ", "CRITICAL", "Traceback", "database is locked", "stayed locked")
    return [line for line in log.splitlines() if any(m in line for m in markers)]


# -- the database, read from the outside --------------------------------------------------


def connect(db: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(db, timeout=30, isolation_level=None)
    connection.row_factory = sqlite3.Row
    return connection


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    with closing(connect(db)) as connection:
        return [dict(row) for row in connection.execute(sql, params)]


def scalar(db: Path, sql: str, params: Sequence[Any] = ()) -> Any:
    with closing(connect(db)) as connection:
        row = connection.execute(sql, params).fetchone()
        return None if row is None else row[0]


def jobs_by_id(db: Path) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in query(db, "SELECT * FROM jobs ORDER BY id")}


def errors_by_job(db: Path) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in query(db, "SELECT * FROM job_errors ORDER BY id"):
        found[row["job_id"]].append(row)
    return found


def integrity(db: Path) -> str:
    return str(scalar(db, "PRAGMA integrity_check"))


def count(db: Path, status: str) -> int:
    return int(scalar(db, "SELECT count(*) FROM jobs WHERE status = ?", (status,)))


def wait_all(db: Path, status: str, total: int, timeout: float, fleet: Fleet | None = None) -> None:
    """Until `total` jobs have `status`, failing early if a daemon dies on its own."""

    def done() -> bool:
        if fleet is not None:
            fleet.assert_none_died()
        return count(db, status) >= total

    try:
        wait_until(done, timeout, interval=0.1, what=f"{total} {status} jobs")
    except AssertionError as error:
        raise AssertionError(f"{error}; jobs by status: {statuses(db)}") from None


def statuses(db: Path) -> dict[str, int]:
    rows = query(db, "SELECT status, count(*) AS n FROM jobs GROUP BY status")
    return {row["status"]: row["n"] for row in rows}


NOT_NULL = (
    "id",
    "queue",
    "type",
    "payload",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "run_at",
    "created_at",
    "updated_at",
    "cancel_requested",
)


def malformed(row: dict[str, Any]) -> str | None:
    """Why a row is half-written, or None when every required field holds a sane value."""
    missing = [name for name in NOT_NULL if row.get(name) is None]
    if missing:
        return f"job {row.get('id')}: NULL {missing}"
    try:
        payload = json.loads(row["payload"])
    except (TypeError, ValueError) as error:
        return f"job {row['id']}: payload is not JSON ({error})"
    if not isinstance(payload, dict):
        return f"job {row['id']}: payload is not an object"
    return None


# -- executions, from the record file -----------------------------------------------------


@dataclass
class Execution:
    job: int
    pid: int
    attempt: int
    start: float
    end: float | None = None
    how: str = "open"  # end | stopped | killed | open


KillTime = Callable[[int, float], "float | None"]


def executions(record: Path, kill_time: KillTime) -> dict[int, list[Execution]]:
    """Every execution of every job; one killed mid-way runs until its daemon's kill time.

    `kill_time(pid, t)` says when the daemon `pid` that was alive at `t` was killed (None: it
    was not), as Fleet.kill_time does.
    """
    found: dict[tuple[int, int, int], Execution] = {}
    for line in read_records(record):
        key = (line["job"], line["pid"], line["attempt"])
        if line["event"] == "start":
            found[key] = Execution(line["job"], line["pid"], line["attempt"], line["t"])
        elif key in found:
            found[key].end, found[key].how = line["t"], line["event"]
    by_job: dict[int, list[Execution]] = defaultdict(list)
    for execution in found.values():
        if execution.end is None:
            killed = kill_time(execution.pid, execution.start)
            if killed is not None:
                execution.end, execution.how = killed, "killed"
        by_job[execution.job].append(execution)
    for runs in by_job.values():
        runs.sort(key=lambda run: run.start)
    return by_job


def overlaps(by_job: dict[int, list[Execution]]) -> list[str]:
    """Pairs of executions of one job that ran at the same time (open ones run forever)."""
    found = []
    for job, runs in by_job.items():
        for earlier, later in itertools.pairwise(runs):
            if earlier.end is None or later.start < earlier.end:
                found.append(f"job {job}: {earlier} overlaps {later}")
    return found


def rescued(errors: list[dict[str, Any]]) -> bool:
    return any("died" in row["error"] for row in errors)


class Figures:
    """Numbers a run reports; printed even without -s (see conftest.figures)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.values: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def line(self) -> str:
        parts = ", ".join(f"{key}={_fmt(value)}" for key, value in self.values.items())
        return f"[reliability] {self.title}: {parts}"


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def reruns_without_a_kill(
    by_job: dict[int, list[Execution]],
    kill_time: KillTime,
    let_go: frozenset[tuple[int, int]] = frozenset(),
) -> list[str]:
    """Executions followed by another of the same job although their daemon was not killed
    before that next one started: a live owner lost the job (its lease was taken). `let_go`:
    (pid, job) pairs whose owner stopped the handler itself at its lease's end, having failed
    to renew it in time (Guarantees, "Under contention"): the job was due again, not taken."""
    found = []
    for job, runs in by_job.items():
        for earlier, later in itertools.pairwise(runs):
            if earlier.how == "stopped" and (earlier.pid, job) in let_go:
                continue
            killed = kill_time(earlier.pid, earlier.start)
            if killed is None or killed > later.start:
                found.append(f"job {job}: {earlier} was followed by {later} with no kill")
    return found
