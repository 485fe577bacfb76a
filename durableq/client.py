"""The library API: what the CLI and user programs call to enqueue, inspect and manage jobs."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from durableq.core.builder import (
    Clock,
    JobBuilder,
    parse_job_id,
    parse_status,
    utc_now,
)
from durableq.core.config import Settings, database_url
from durableq.core.errors import DatabaseBusy, DatabaseError, InvalidInput
from durableq.core.history import History, Window, bucketize, parse_window
from durableq.core.jobs import TERMINAL_STATUSES, Job, JobStatus, NewJob
from durableq.core.queues import QueueInfo, Rate, parse_queue_name, parse_rate
from durableq.core.schedules import ScheduleInfo
from durableq.core.uniqueness import Enqueued, Unique
from durableq.reader import Reader
from durableq.store import migrate
from durableq.store.api import Store, open_store
from durableq.store.changes import wait_for_change
from durableq.store.engine import (
    dispose,
    enable_wal,
    make_engine,
    removed_unless_prepared,
    sqlite_path,
)
from durableq.store.records import UNSET

# The builder's names too: `from durableq.client import ...` is the library's one import.
__all__ = ["Client", "Clock", "JobBuilder", "parse_job_id", "parse_status", "utc_now"]


class Client(Reader):
    """One per process is plenty: it holds the engine (a pool of connections) for its database.
    Its reads (get, jobs, stats, queues, workers, ...) are Reader's, on this store."""

    store: Store  # all of it, not only the reads

    def __init__(self, settings: Settings, engine: Engine, clock: Clock = utc_now) -> None:
        super().__init__(settings, open_store(engine), clock)
        self.engine = engine

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
            with removed_unless_prepared(path):
                _prepare(engine, settings, create)
        except BaseException:
            dispose(engine)
            raise
        return cls(settings, engine, clock)

    def close(self) -> None:
        self.store.close()
        dispose(self.engine)

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
        idempotency_key: str | None = None,
        unique: Unique | bool | None = None,
        connection: Connection | None = None,
    ) -> int:
        """Store a job durably and return its id. When this returns, the job is committed.

        With an `idempotency_key` or `unique`, the id may be an existing job's (see
        JobBuilder.new_job); `enqueue_many([...]).duplicates` says whether it was.
        With `connection` (a SQLAlchemy Connection of your own, on this database, inside a
        transaction), the job is written in your transaction: it exists if and only if your
        transaction commits (the outbox pattern).
        """
        job = self.new_job(
            type,
            payload,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            max_attempts=max_attempts,
            timeout=timeout,
            idempotency_key=idempotency_key,
            unique=unique,
        )
        if connection is not None:
            return self._within(connection, [job])[0]
        return self.store.enqueue(job, self.clock())

    def enqueue_many(
        self,
        jobs: Iterable[NewJob | Mapping[str, Any]],
        *,
        connection: Connection | None = None,
    ) -> Enqueued:
        """Enqueue all in one transaction: all are stored, or none. The ids come in the order
        given; `.duplicates` holds the positions of jobs that were not stored because a twin
        or the idempotency key's job exists (their ids are those jobs'). `connection`: in
        your own transaction, as `enqueue`'s."""
        built = [job if isinstance(job, NewJob) else self.job_from_mapping(job) for job in jobs]
        if connection is not None:
            return self._within(connection, built)
        return self.store.enqueue_many(built, self.clock())

    def _within(self, connection: Connection, jobs: Sequence[NewJob]) -> Enqueued:
        check_same_database(self.engine, connection)
        if not connection.in_transaction():
            raise InvalidInput(
                "enqueue(connection=...) needs an open transaction on that connection: "
                "use `with engine.begin() as connection:` (or connection.begin())"
            )
        if not jobs:
            return Enqueued([])
        return self.store.enqueue_within(connection, jobs, self.clock())

    # -- managing -------------------------------------------------------------------------

    def cancel(self, job_id: int | str) -> Job:
        return self.store.cancel(parse_job_id(job_id), self.clock())

    def retry(self, job_id: int | str) -> Job:
        return self.store.retry(parse_job_id(job_id), self.clock())

    def delete(self, job_id: int | str) -> Job:
        """Delete a finished job (completed, failed or canceled) with its error history."""
        return self.store.delete(parse_job_id(job_id))

    def history(self, window: str | Window = "1h", queues: Sequence[str] = ()) -> History:
        """Jobs finished per bucket over the window ("1h" by minute, "24h" by 15 minutes,
        "7d" by 2 hours), from the per-minute history the leading daemon rolls up (minutes
        settle about a minute after they end: `rolled_up_to` says how far it has got)."""
        chosen = parse_window(window) if isinstance(window, str) else window
        now = self.clock()
        since = chosen.buckets_since(now)
        counts, rolled_up_to = self.store.history(
            since, since + chosen.span, [parse_queue_name(q) for q in queues]
        )
        return bucketize(counts, chosen, now, rolled_up_to)

    def pause_queue(self, name: str) -> QueueInfo:
        """No job of the queue starts until it is resumed (running ones go on). Persistent."""
        return self.store.pause_queue(parse_queue_name(name), self.clock())

    def resume_queue(self, name: str) -> QueueInfo:
        return self.store.resume_queue(parse_queue_name(name), self.clock())

    def set_queue(
        self,
        name: str,
        *,
        concurrency: int | None = UNSET,
        max_pending: int | None = UNSET,
        rate: Rate | str | None = UNSET,
    ) -> QueueInfo:
        """Change a queue's limits; None removes one, an argument left out keeps it.

        `concurrency`: running jobs of the queue across all daemons. `max_pending`: enqueues
        beyond it raise QueueFull. `rate`: a Rate or "N/DURATION[:BURST]" (starts per period).
        """
        if isinstance(rate, str):
            rate = parse_rate(rate)
        return self.store.set_queue(
            parse_queue_name(name),
            self.clock(),
            concurrency=concurrency,
            max_pending=max_pending,
            rate=rate,
        )

    # -- recurring jobs -------------------------------------------------------------------

    def schedules(self) -> list[ScheduleInfo]:
        """The schedules daemons have declared: next and last run, last job, active or not."""
        return self.store.schedules(self.clock())

    def purge(self, older_than: float, statuses: Sequence[JobStatus | str] = ()) -> int:
        wanted = [parse_status(status) for status in statuses] or sorted(TERMINAL_STATUSES)
        return self.store.purge(self.clock() - timedelta(seconds=older_than), wanted)

    def wait(self, job_id: int | str, timeout: float | None = None) -> Job:
        """Block until the job is finished or `timeout` passes; returns the job as last seen."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        watcher = self.store.change_watcher()
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


def check_same_database(engine: Engine, connection: Connection) -> None:
    """A transactional enqueue must write to this client's database, or the job and the
    caller's rows would not commit together."""
    ours, theirs = engine.url, connection.engine.url
    if ours.get_backend_name() != theirs.get_backend_name():
        same = False
    elif ours.get_backend_name() == "sqlite":
        same = _resolved(ours.database) == _resolved(theirs.database)
    else:
        same = (ours.host, ours.port or 5432, ours.database) == (
            theirs.host,
            theirs.port or 5432,
            theirs.database,
        )
    if not same:
        raise InvalidInput(
            f"enqueue(connection=...) got a connection to {theirs.render_as_string()}, not to "
            f"this client's database {ours.render_as_string()}: the job and your writes must "
            "be in the same database to commit together"
        )


def _resolved(database: str | None) -> str:
    return str(Path(database).resolve()) if database and database != ":memory:" else ""


def _prepare(engine: Engine, settings: Settings, create: bool) -> None:
    """Check (with `create`: make or upgrade, and switch to WAL) the database's schema.

    Many processes may open a new SQLite file at once. Once, in CI, one of 20 CLI enqueues racing
    to create a file (half of them killed mid-way) was refused "database is locked" while the
    schema was being made (not reproduced since; the rollback journal, before WAL is on, is the
    likely place). A refusal here is retried until the busy timeout, when it would have failed.
    """
    deadline = time.monotonic() + settings.busy_timeout
    pause = 0.01
    while True:
        try:
            migrate.ensure_current(engine, create=create)
            if create:
                enable_wal(engine)
            return
        except DatabaseBusy:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 0.5)


def _settings_for(database: str | Settings | None) -> Settings:
    if isinstance(database, Settings):
        return database
    settings = Settings.from_env()
    if database is None:
        return settings
    return Settings(**{**settings.__dict__, "database": database_url(database)})
