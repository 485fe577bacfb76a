"""The library API: what the CLI and user programs call to enqueue, inspect and manage jobs."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from durableq.config import Settings, database_url
from durableq.db import migrate
from durableq.db.changes import wait_for_change
from durableq.db.engine import enable_wal, make_engine, sqlite_path
from durableq.db.repository import JobFilter, Repository, Stats, WorkerInfo
from durableq.errors import DatabaseError, InvalidInput
from durableq.jobs import TERMINAL_STATUSES, Job, JobError, JobStatus, NewJob

Clock = Callable[[], datetime]
_NAME = re.compile(r"^[A-Za-z0-9_.:\-/]{1,200}$")
MAX_PRIORITY = 1_000_000
MAX_SECONDS = 10 * 365 * 86400.0  # delays and timeouts, as for durations typed at the CLI


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobBuilder:
    """Validates and builds jobs. It needs no database, so bad input is refused before one is
    opened (or created)."""

    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    def new_job(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> NewJob:
        """Validate a job's fields; raises InvalidInput naming the first bad one."""
        _check_name("type", type)
        _check_name("queue", queue)
        if payload is None:
            payload = {}
        if payload.__class__ is not dict and not isinstance(payload, Mapping):  # skip the ABC
            from durableq.payloads import encode_payload

            encode_payload(payload)  # raises with a message naming the wrong kind
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidInput("priority must be a whole number")
        if abs(priority) > MAX_PRIORITY:
            raise InvalidInput(f"priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}")
        attempts = self.settings.default_max_attempts if max_attempts is None else max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 1000:
            raise InvalidInput("max_attempts must be a whole number from 1 to 1000")
        if timeout is not None and not (_is_seconds(timeout) and timeout > 0):
            raise InvalidInput("timeout must be a positive number of seconds")
        return NewJob(
            type=type,
            payload=dict(payload),
            queue=queue,
            priority=priority,
            max_attempts=attempts,
            timeout=float(timeout) if timeout is not None else None,
            run_at=self._when(delay, run_at),
        )

    def job_from_mapping(self, spec: Mapping[str, Any]) -> NewJob:
        """A job from a dict such as one line of a JSONL batch file."""
        if spec.__class__ is not dict and not isinstance(spec, Mapping):
            raise InvalidInput('each job must be a JSON object with at least a "type"')
        if not _SPEC_KEYS.issuperset(spec):
            unknown = set(spec) - _SPEC_KEYS
            raise InvalidInput(
                f"unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_SPEC_KEYS))}"
            )
        if "type" not in spec:
            raise InvalidInput('missing "type"')
        run_at = spec.get("run_at")
        if run_at is not None:
            from durableq.durations import parse_instant

            run_at = parse_instant(str(run_at))
        delay = spec.get("delay")
        if delay is not None:
            from durableq.durations import parse_duration

            delay = parse_duration(str(delay))
        timeout = spec.get("timeout")
        if timeout is not None and not isinstance(timeout, int | float):
            from durableq.durations import parse_duration

            timeout = parse_duration(str(timeout))
        return self.new_job(
            spec["type"],
            spec.get("payload"),
            queue=spec.get("queue", "default"),
            priority=spec.get("priority", 0),
            delay=delay,
            run_at=run_at,
            max_attempts=spec.get("max_attempts"),
            timeout=timeout,
        )

    def _when(self, delay: float | None, run_at: datetime | None) -> datetime | None:
        if delay is not None and run_at is not None:
            raise InvalidInput("give a delay or a run_at time, not both")
        if delay is not None:
            if not _is_seconds(delay) or delay < 0:
                raise InvalidInput("the delay must be a number of seconds, not negative")
            return self.clock() + timedelta(seconds=delay)
        if run_at is not None:
            if not isinstance(run_at, datetime):
                raise InvalidInput(f"run_at must be a datetime, not {type(run_at).__name__}")
            if run_at.tzinfo is None:
                raise InvalidInput("run_at must be timezone-aware (e.g. datetime.now(UTC))")
            return run_at.astimezone(UTC)
        return None


class Client(JobBuilder):
    """One per process is plenty: it holds the engine (a pool of connections) for its database."""

    def __init__(self, settings: Settings, engine: Engine, clock: Clock = utc_now) -> None:
        super().__init__(settings, clock)
        self.engine = engine
        self.repository = Repository(engine)

    @classmethod
    def open(
        cls, database: str | Settings | None = None, *, create: bool = True, clock: Clock = utc_now
    ) -> Client:
        """Open (and with `create`, make or upgrade) the database at a path or URL."""
        settings = _settings_for(database)
        path = sqlite_path(settings)
        if path is not None and not create and not path.exists():
            raise DatabaseError(f"no database at {path}; enqueue a job first or pass another --db")
        engine = make_engine(settings)
        try:
            migrate.ensure_current(engine, create=create)
            if create:
                enable_wal(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(settings, engine, clock)

    def close(self) -> None:
        self.repository.close()
        self.engine.dispose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- producing ------------------------------------------------------------------------

    def enqueue(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        priority: int = 0,
        delay: float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> int:
        """Store a job durably and return its id. When this returns, the job is committed."""
        job = self.new_job(
            type,
            payload,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        return self.repository.enqueue(job, self.clock())

    def enqueue_many(self, jobs: Iterable[NewJob | Mapping[str, Any]]) -> list[int]:
        """Enqueue all in one transaction: all are stored, or none."""
        built = [job if isinstance(job, NewJob) else self.job_from_mapping(job) for job in jobs]
        return self.repository.enqueue_many(built, self.clock())

    # -- managing -------------------------------------------------------------------------

    def get(self, job_id: int | str) -> Job:
        return self.repository.get(parse_job_id(job_id))

    def errors(self, job_id: int | str) -> list[JobError]:
        job = self.get(job_id)
        return self.repository.errors(job.id)

    def cancel(self, job_id: int | str) -> Job:
        return self.repository.cancel(parse_job_id(job_id), self.clock())

    def retry(self, job_id: int | str) -> Job:
        return self.repository.retry(parse_job_id(job_id), self.clock())

    def jobs(
        self,
        *,
        statuses: Sequence[JobStatus | str] = (),
        queues: Sequence[str] = (),
        types: Sequence[str] = (),
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        if limit < 1 or offset < 0:
            raise InvalidInput("limit must be at least 1 and offset not negative")
        where = JobFilter(
            statuses=tuple(parse_status(status) for status in statuses),
            queues=tuple(queues),
            types=tuple(types),
        )
        return self.repository.list_jobs(where, limit, offset)

    def stats(self) -> Stats:
        return self.repository.stats(self.clock())

    def workers(self) -> list[WorkerInfo]:
        stale = timedelta(seconds=max(3 * self.settings.heartbeat_interval, 5.0))
        return self.repository.list_workers(self.clock() - stale)

    def purge(self, older_than: float, statuses: Sequence[JobStatus | str] = ()) -> int:
        wanted = [parse_status(status) for status in statuses] or sorted(TERMINAL_STATUSES)
        return self.repository.purge(self.clock() - timedelta(seconds=older_than), wanted)

    def wait(self, job_id: int | str, timeout: float | None = None) -> Job:
        """Block until the job is finished or `timeout` passes; returns the job as last seen."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        watcher = self.repository.change_watcher()
        try:
            while job.status not in TERMINAL_STATUSES:
                remaining = 1.0 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    return job
                wait_for_change(watcher, min(1.0, remaining))
                job = self.get(job.id)
        finally:
            watcher.close()
        return job


_SPEC_KEYS = {
    "type",
    "payload",
    "queue",
    "priority",
    "delay",
    "run_at",
    "max_attempts",
    "timeout",
}


def _settings_for(database: str | Settings | None) -> Settings:
    if isinstance(database, Settings):
        return database
    settings = Settings.from_env()
    if database is None:
        return settings
    return Settings(**{**settings.__dict__, "database": database_url(database)})


def _is_seconds(value: object) -> bool:
    """A finite number of seconds a datetime can be moved by (booleans are not numbers here)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_SECONDS
    )


def _check_name(what: str, value: object) -> None:
    # Types and queues repeat endlessly in a batch: remember the ones already checked.
    if isinstance(value, str) and value in _VALID_NAMES:
        return
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: use 1-200 letters, digits or . _ - : /")
    if len(_VALID_NAMES) > 10_000:
        _VALID_NAMES.clear()
    _VALID_NAMES.add(value)


_VALID_NAMES: set[str] = set()


def parse_job_id(value: int | str) -> int:
    try:
        job_id = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"invalid job id {value!r}: job ids are whole numbers") from None
    if job_id < 1:
        raise InvalidInput(f"invalid job id {value!r}: job ids are positive")
    if job_id > 2**63 - 1:
        raise InvalidInput(f"invalid job id {value!r}: too large to be a job id")
    return job_id


def parse_status(value: JobStatus | str) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        names = ", ".join(status.value for status in JobStatus)
        raise InvalidInput(f"unknown status {value!r}: use one of {names}") from None
