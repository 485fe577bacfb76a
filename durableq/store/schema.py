"""The tables, as SQLAlchemy declarative models. Alembic's scripts must match these exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from durableq.core.jobs import JobStatus
from durableq.core.uniqueness import unique_held
from durableq.store import timestamps

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite needs INTEGER PRIMARY KEY for a rowid alias; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; readable fixed-width text on SQLite, timestamptz elsewhere.

    SQLite stores `2026-01-31 09:30:00.000000`, which sorts as text in time order, so range
    conditions such as `run_at <= :now` stay index-friendly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("durableq stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw text selected through a plain SQL expression
            return timestamps.decode(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_STATUSES = ", ".join(f"'{status.value}'" for status in JobStatus)
PENDING_ONLY = text(f"status = '{JobStatus.PENDING.value}'")
RUNNING_ONLY = text(f"status = '{JobStatus.RUNNING.value}'")
FINISHED_ONLY = text("finished_at IS NOT NULL")


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(200), default="default")
    type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text, comment="JSON object")
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[float | None] = mapped_column(Float, comment="seconds")
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text, comment="JSON")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    lease_token: Mapped[str | None] = mapped_column(String(32), comment="fencing token")
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Revision 0004: the keys that make an enqueue idempotent or a job unique, and the
    # schedule and tick that made a recurring job.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    unique_key: Mapped[str | None] = mapped_column(String(64), comment="sha256 of the fields")
    unique_states: Mapped[int | None] = mapped_column(Integer, comment="bit per status")
    schedule: Mapped[str | None] = mapped_column(String(200))
    schedule_tick: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Revision 0006: what a running handler reports (ctx.report_progress, ctx.update_meta).
    progress: Mapped[float | None] = mapped_column(Float, comment="0 to 1")
    progress_message: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[str | None] = mapped_column(Text, comment="JSON object")

    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            sqlite_where=RUNNING_ONLY,
            postgresql_where=RUNNING_ONLY,
        ),
        # Partial so that the planner never prefers it over ix_jobs_claim for pending rows;
        # `finished_at < :cutoff` implies `finished_at IS NOT NULL`, so purge and stats use it.
        Index(
            "ix_jobs_finished_at",
            "finished_at",
            sqlite_where=FINISHED_ONLY,
            postgresql_where=FINISHED_ONLY,
        ),
        # Ids are never reused, even after the newest jobs are purged.
        {"sqlite_autoincrement": True},
    )


# Shaped like the claim's ORDER BY and limited to pending rows: claiming costs O(log n)
# however many finished jobs the table keeps.
Index(
    "ix_jobs_claim",
    JobRow.priority.desc(),
    JobRow.run_at,
    JobRow.id,
    sqlite_where=PENDING_ONLY,
    postgresql_where=PENDING_ONLY,
)


class JobErrorRow(Base):
    __tablename__ = "job_errors"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Id, ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[str] = mapped_column(Text, comment="comma-separated; * for all")
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Its heartbeat comes every third of this; NULL for rows written before revision 0002.
    lease: Mapped[float | None] = mapped_column(Float, comment="seconds")


# The claim of one queue (`--queue`, a queue's limits) and the count of a queue's pending jobs
# (its max_pending) seek here instead of scanning every pending job of every queue.
Index(
    "ix_jobs_queue_claim",
    JobRow.queue,
    JobRow.priority.desc(),
    JobRow.run_at,
    JobRow.id,
    sqlite_where=PENDING_ONLY,
    postgresql_where=PENDING_ONLY,
)


UNIQUE_HELD = text(unique_held())
HAS_IDEMPOTENCY_KEY = text("idempotency_key IS NOT NULL")
FROM_SCHEDULE = text("schedule IS NOT NULL")

# The database, not a read-then-write, enforces both keys (and one job per schedule tick).
Index(
    "uq_jobs_unique_key",
    JobRow.unique_key,
    unique=True,
    sqlite_where=UNIQUE_HELD,
    postgresql_where=UNIQUE_HELD,
)
Index(
    "uq_jobs_idempotency_key",
    JobRow.idempotency_key,
    unique=True,
    sqlite_where=HAS_IDEMPOTENCY_KEY,
    postgresql_where=HAS_IDEMPOTENCY_KEY,
)
Index(
    "uq_jobs_schedule_tick",
    JobRow.schedule,
    JobRow.schedule_tick,
    unique=True,
    sqlite_where=FROM_SCHEDULE,
    postgresql_where=FROM_SCHEDULE,
)


class QueueRow(Base):
    """A queue's controls; a row appears when a queue name is first used. Empty = no limit."""

    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    concurrency: Mapped[int | None] = mapped_column(Integer, comment="running, all daemons")
    max_pending: Mapped[int | None] = mapped_column(Integer)
    rate_count: Mapped[int | None] = mapped_column(Integer, comment="starts per rate_period")
    rate_period: Mapped[float | None] = mapped_column(Float, comment="seconds")
    rate_burst: Mapped[int | None] = mapped_column(Integer)
    # GCRA's theoretical arrival time, in Unix seconds: one number is the whole limiter.
    rate_tat: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LeadershipRow(Base):
    """Who leads the daemons on this database: a lease with a term, like a job's.

    One row, made by the migration. A daemon leads while `holder` is its id and `expires_at` is
    ahead; another may take over once it has passed. `term` grows by one at every change of
    holder, so a write fenced by (holder, term) fails for a leader that was replaced.
    """

    __tablename__ = "leadership"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    term: Mapped[int] = mapped_column(Integer)
    elected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduleRow(Base):
    """A recurring job as a daemon of the app declared it, and where its ticks have got to.

    `next_run_at` is the compare-and-set guard: a tick is fired by the one transaction that
    moves it on from the value it read, and that transaction also inserts the tick's jobs.
    """

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text, comment="JSON object")
    catch_up: Mapped[str] = mapped_column(String(16))
    max_catch_up: Mapped[int] = mapped_column(Integer)
    no_overlap: Mapped[bool] = mapped_column(Boolean)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_tick: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_job_id: Mapped[int | None] = mapped_column(Id)
    # Renewed by every daemon that knows the schedule; one nobody renews is shown inactive.
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobMinuteRow(Base):
    """Revision 0005: the throughput history, one row per (minute, queue, type, outcome),
    written once per minute by the rollup (core/history.py) and kept for its own retention."""

    __tablename__ = "job_minutes"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    queue: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    duration: Mapped[float] = mapped_column(Float, comment="seconds, summed")
    wait: Mapped[float] = mapped_column(Float, comment="seconds, summed")


class RollupRow(Base):
    """How far the rollup has got: every minute before `rolled_up_to` is in job_minutes. The
    rollup moves it on by compare-and-set in the transaction that writes the minutes."""

    __tablename__ = "rollups"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    rolled_up_to: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The rollup counts failed attempts per minute by this (its own range, like finished_at's).
Index("ix_job_errors_failed_at", JobErrorRow.failed_at)

# Revision 0006: the failed and the canceled jobs, newest first, without a scan of a table of
# completed ones (the dashboard's tabs, `jobs list --status failed`). Rows enter them only when
# a job fails or is canceled: the hot path (claim, complete) never writes to them.
FAILED_ONLY = text(f"status = '{JobStatus.FAILED.value}'")
CANCELED_ONLY = text(f"status = '{JobStatus.CANCELED.value}'")
Index("ix_jobs_failed", JobRow.id, sqlite_where=FAILED_ONLY, postgresql_where=FAILED_ONLY)
Index("ix_jobs_canceled", JobRow.id, sqlite_where=CANCELED_ONLY, postgresql_where=CANCELED_ONLY)


jobs_table: Table = JobRow.__table__  # type: ignore[assignment]
job_errors_table: Table = JobErrorRow.__table__  # type: ignore[assignment]
workers_table: Table = WorkerRow.__table__  # type: ignore[assignment]
queues_table: Table = QueueRow.__table__  # type: ignore[assignment]
leadership_table: Table = LeadershipRow.__table__  # type: ignore[assignment]
schedules_table: Table = ScheduleRow.__table__  # type: ignore[assignment]
job_minutes_table: Table = JobMinuteRow.__table__  # type: ignore[assignment]
rollups_table: Table = RollupRow.__table__  # type: ignore[assignment]
