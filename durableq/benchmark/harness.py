"""What every section needs: fresh databases, daemons as subprocesses, what a process costs."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import durableq
from durableq.benchmark import postgres
from durableq.client import Client
from durableq.core.config import Settings, database_url
from durableq.core.errors import DurableqError

Progress = Callable[[str], None]
# A database of the run: a SQLite file, or (with `bench --db postgresql://...`) the URL of a
# database the run created on that server.
Db = Path | str
DbT = TypeVar("DbT", Path, str)
CHUNK = 10_000  # jobs per enqueue_many call when preparing a workload
LOG_TAIL = 2_000


class BenchError(DurableqError):
    """A workload could not be run or did not finish: the figures would be meaningless."""


@dataclass
class Bench:
    """One invocation's scratch directory and durability level, shared by all sections; with
    `server` (a postgresql:// URL), the sections that run there get fresh databases on it."""

    root: Path
    synchronous: str
    progress: Progress
    server: str | None = None
    _names: Iterator[int] = field(default_factory=itertools.count)
    _created: list[str] = field(default_factory=list)

    @property
    def dialect(self) -> str:
        return "sqlite" if self.server is None else "postgresql"

    def database(self, name: str) -> Path:
        """A path for a fresh database: each measurement starts from an empty file."""
        return self.root / f"{next(self._names):02d}-{name}.db"

    def settings(self, db: Db) -> Settings:
        return Settings(database=database_url(str(db)), synchronous=self.synchronous)

    def open(self, db: Db) -> Client:
        return Client.open(self.settings(db), create=True)

    def fresh(self, name: str, pending_jobs: int = 0) -> Path:
        """A new SQLite file with the real schema and `pending_jobs` no-op jobs waiting."""
        return self._filled(self.database(name), pending_jobs)

    def fresh_db(self, name: str, pending_jobs: int = 0) -> Db:
        """As fresh(), on the server when the run has one: a new database there."""
        if self.server is None:
            return self.fresh(name, pending_jobs)
        url = postgres.create_database(self.server, f"{next(self._names):02d}_{name}")
        self._created.append(url)
        return self._filled(url, pending_jobs)

    def _filled(self, db: DbT, pending_jobs: int) -> DbT:
        with self.open(db) as client:
            enqueue_noops(client, pending_jobs)
        return db

    def close(self) -> None:
        """Drop the databases the run created on the server."""
        while self._created:
            postgres.drop_database(self._created.pop())

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DURABLEQ_DATABASE", None)
        env["DURABLEQ_SYNCHRONOUS"] = self.synchronous
        source_root = Path(durableq.__file__).resolve().parents[1]
        # Run the same durableq as this process when it runs from a source checkout.
        if (source_root / "pyproject.toml").exists():
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(source_root), env.get("PYTHONPATH", "")])
            )
        return env

    def spawn(self, name: str, args: Sequence[str]) -> Process:
        """`python ARGS...` with its output kept in a log file (shown if it fails)."""
        log_path = self.root / f"{name}-{next(self._names):02d}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                [sys.executable, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                cwd=self.root,
                # Its own session: a Ctrl-C meant for the benchmark does not also hit it.
                start_new_session=True,
            )
        return Process(name, popen, log_path)

    def daemon(self, db: Db, concurrency: int, *, burst: bool, pool: str = "thread") -> Process:
        args = ["-m", "durableq", "--db", str(db), "worker", "start"]
        args += ["--concurrency", str(concurrency), "--log-level", "warning", "--pool", pool]
        if burst:
            args.append("--burst")
        return self.spawn("daemon", args)


class Process:
    """A subprocess this benchmark owns: stopped (killed if need be) when the block ends."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    def wait(self, timeout: float) -> None:
        """Wait for a clean exit; anything else is an error that shows the end of its log."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(
                f"{self.name} did not finish within {timeout:.0f}s{self.tail()}"
            ) from None
        if code != 0:
            raise BenchError(f"{self.name} exited with {code}{self.tail()}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (a daemon drains and exits 0), then wait for it."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        self.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self) -> str:
        text = self.output().strip()
        return f"; its output ends with:\n{text[-LOG_TAIL:]}" if text else ""


def enqueue_noops(client: Client, count: int) -> None:
    remaining = count
    while remaining > 0:
        size = min(CHUNK, remaining)
        client.enqueue_many([{"type": "noop"}] * size)
        remaining -= size


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def finish_timeout(jobs: int) -> float:
    """Generous: a slow, shared machine must not turn a benchmark into a failure."""
    return 60 + jobs / 50


# -- what a process costs: /proc on Linux ---------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of all the process's threads so far; None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after its ')' are fixed.
    fields = text.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """Resident memory (VmRSS) in MiB; None without /proc or once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles (each one a value that was observed), plus the maximum."""
    if not values:
        raise BenchError("no latencies were measured")
    ordered = sorted(values)
    result = {}
    for point in points:
        rank = max(1, -(-point * len(ordered) // 100))  # ceil without floats
        result[f"p{point}"] = ordered[rank - 1]
    result["max"] = ordered[-1]
    return result
