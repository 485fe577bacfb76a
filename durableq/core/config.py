"""Settings, read from the environment and overridden by the CLI. Pure: nothing opens here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from durableq.core.durations import parse_duration
from durableq.core.errors import InvalidInput
from durableq.core.retry import Backoff

DEFAULT_DATABASE = "durableq.db"
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
MIN_RESCUE_GRACE = 1.0


def database_url(url_or_path: str) -> str:
    """A SQLAlchemy URL; a bare path means a SQLite file (made absolute)."""
    if "://" in url_or_path:
        if url_or_path.startswith("postgres://"):
            return "postgresql+psycopg://" + url_or_path.removeprefix("postgres://")
        if url_or_path.startswith("postgresql://"):
            return "postgresql+psycopg://" + url_or_path.removeprefix("postgresql://")
        return url_or_path
    if not url_or_path.strip():
        raise InvalidInput("the database path is empty: pass --db PATH or set DURABLEQ_DATABASE")
    return "sqlite:///" + str(Path(url_or_path).expanduser().absolute())


@dataclass(frozen=True)
class Settings:
    database: str = field(default_factory=lambda: database_url(DEFAULT_DATABASE))
    # FULL: a commit is on disk before enqueue returns, so a power cut loses no acknowledged job.
    # NORMAL (WAL): survives any process crash, may lose the last commits on power loss.
    synchronous: str = "FULL"
    busy_timeout: float = 10.0
    lease: float = 30.0
    poll_interval: float = 1.0
    default_max_attempts: int = 10
    backoff: Backoff = field(default_factory=Backoff)
    worker_stale_after: float = 120.0
    # How long finished jobs are kept before the pruner deletes them (0: forever).
    retain_completed: float = 24 * 3600.0
    retain_failed: float = 7 * 24 * 3600.0
    retain_canceled: float = 7 * 24 * 3600.0
    # How long the per-minute throughput history (the dashboard's charts) is kept (0: forever).
    retain_history: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.synchronous not in SYNCHRONOUS_LEVELS:
            raise InvalidInput(
                f"invalid synchronous level {self.synchronous!r}: "
                f"use one of {', '.join(SYNCHRONOUS_LEVELS)}"
            )
        if self.lease < 0.5:
            raise InvalidInput("the lease must be at least 500ms")
        if self.busy_timeout < 0:
            raise InvalidInput("the busy timeout must not be negative")

    @property
    def heartbeat_interval(self) -> float:
        return self.lease / 3

    @property
    def rescue_grace(self) -> float:
        """How long past a lease's end (and its owner's liveness) a job is left to its owner.

        The owner stops its handler when the lease ends by its own clock; this is the time the
        handler has to notice before another worker may run the job: one heartbeat interval,
        at least a second.
        """
        return max(MIN_RESCUE_GRACE, self.heartbeat_interval)

    def lease_warning(self) -> str | None:
        """Why this lease is risky under lock contention (None when it is not)."""
        if self.lease >= self.busy_timeout:
            return None
        return (
            f"the lease ({self.lease:g}s) is shorter than the busy timeout "
            f"({self.busy_timeout:g}s): a renewal that waits longer than the lease for SQLite's "
            "write lock stops its jobs' handlers (they are retried); raise --lease or "
            "DURABLEQ_LEASE, or lower DURABLEQ_BUSY_TIMEOUT"
        )

    def with_database(self, url_or_path: str) -> Settings:
        return replace(self, database=database_url(url_or_path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("DURABLEQ_DATABASE"):
            values["database"] = database_url(env["DURABLEQ_DATABASE"])
        if env.get("DURABLEQ_SYNCHRONOUS"):
            values["synchronous"] = env["DURABLEQ_SYNCHRONOUS"].upper()
        for key, name in (
            ("busy_timeout", "DURABLEQ_BUSY_TIMEOUT"),
            ("lease", "DURABLEQ_LEASE"),
            ("poll_interval", "DURABLEQ_POLL_INTERVAL"),
            ("retain_completed", "DURABLEQ_RETAIN_COMPLETED"),
            ("retain_failed", "DURABLEQ_RETAIN_FAILED"),
            ("retain_canceled", "DURABLEQ_RETAIN_CANCELED"),
            ("retain_history", "DURABLEQ_RETAIN_HISTORY"),
        ):
            if env.get(name):
                values[key] = parse_duration(env[name])
        if env.get("DURABLEQ_MAX_ATTEMPTS"):
            values["default_max_attempts"] = _positive_int(env["DURABLEQ_MAX_ATTEMPTS"])
        backoff = _backoff_from_env(env)
        if backoff is not None:
            values["backoff"] = backoff
        return cls(**values)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInput(f"invalid DURABLEQ_MAX_ATTEMPTS {text!r}: use a whole number >= 1")
    return value


def _backoff_from_env(env: Mapping[str, str]) -> Backoff | None:
    names = {"base": "DURABLEQ_BACKOFF_BASE", "cap": "DURABLEQ_BACKOFF_CAP"}
    given = {key: parse_duration(env[name]) for key, name in names.items() if env.get(name)}
    for key, name in (("factor", "DURABLEQ_BACKOFF_FACTOR"), ("jitter", "DURABLEQ_BACKOFF_JITTER")):
        if env.get(name):
            try:
                given[key] = float(env[name])
            except ValueError:
                raise InvalidInput(f"invalid {name} {env[name]!r}: use a number") from None
    if not given:
        return None
    try:
        return Backoff(**given)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
