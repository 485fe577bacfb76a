"""The tables, as SQLAlchemy Core tables (no ORM: importing and mapping it cost every CLI call
about 0.1 s, and nothing here uses a session). Alembic's scripts must match these exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
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


metadata = MetaData(naming_convention=NAMING_CONVENTION)


_STATUSES = ", ".join(f"'{status.value}'" for status in JobStatus)
PENDING_ONLY = text(f"status = '{JobStatus.PENDING.value}'")
RUNNING_ONLY = text(f"status = '{JobStatus.RUNNING.value}'")
FINISHED_ONLY = text("finished_at IS NOT NULL")


jobs_table = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("queue", String(200), default="default", nullable=False),
    Column("type", String(200), nullable=False),
    Column("payload", Text, comment="JSON object", nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, default=0, nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("timeout", Float, comment="seconds"),
    Column("run_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("last_error", Text),
    Column("result", Text, comment="JSON"),
    Column("cancel_requested", Boolean, default=False, nullable=False),
    Column("worker_id", String(64)),
    Column("lease_token", String(32), comment="fencing token"),
    Column("lease_expires_at", UTCDateTime),
    # Revision 0004: the keys that make an enqueue idempotent or a job unique, and the
    # schedule and tick that made a recurring job.
    Column("idempotency_key", String(200)),
    Column("unique_key", String(64), comment="sha256 of the fields"),
    Column("unique_states", Integer, comment="bit per status"),
    Column("schedule", String(200)),
    Column("schedule_tick", UTCDateTime),
    # Revision 0006: what a running handler reports (ctx.report_progress, ctx.update_meta).
    Column("progress", Float, comment="0 to 1"),
    Column("progress_message", Text),
    Column("meta", Text, comment="JSON object"),
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
    sqlite_autoincrement=True,
)


# Shaped like the claim's ORDER BY and limited to pending rows: claiming costs O(log n)
# however many finished jobs the table keeps.
Index(
    "ix_jobs_claim",
    jobs_table.c.priority.desc(),
    jobs_table.c.run_at,
    jobs_table.c.id,
    sqlite_where=PENDING_ONLY,
    postgresql_where=PENDING_ONLY,
)


job_errors_table = Table(
    "job_errors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("traceback", Text),
    Column("failed_at", UTCDateTime, nullable=False),
)


workers_table = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("queues", Text, comment="comma-separated; * for all", nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    # Its heartbeat comes every third of this; NULL for rows written before revision 0002.
    Column("lease", Float, comment="seconds"),
)


# The claim of one queue (`--queue`, a queue's limits) and the count of a queue's pending jobs
# (its max_pending) seek here instead of scanning every pending job of every queue.
Index(
    "ix_jobs_queue_claim",
    jobs_table.c.queue,
    jobs_table.c.priority.desc(),
    jobs_table.c.run_at,
    jobs_table.c.id,
    sqlite_where=PENDING_ONLY,
    postgresql_where=PENDING_ONLY,
)


UNIQUE_HELD = text(unique_held())
HAS_IDEMPOTENCY_KEY = text("idempotency_key IS NOT NULL")
FROM_SCHEDULE = text("schedule IS NOT NULL")

# The database, not a read-then-write, enforces both keys (and one job per schedule tick).
Index(
    "uq_jobs_unique_key",
    jobs_table.c.unique_key,
    unique=True,
    sqlite_where=UNIQUE_HELD,
    postgresql_where=UNIQUE_HELD,
)
Index(
    "uq_jobs_idempotency_key",
    jobs_table.c.idempotency_key,
    unique=True,
    sqlite_where=HAS_IDEMPOTENCY_KEY,
    postgresql_where=HAS_IDEMPOTENCY_KEY,
)
Index(
    "uq_jobs_schedule_tick",
    jobs_table.c.schedule,
    jobs_table.c.schedule_tick,
    unique=True,
    sqlite_where=FROM_SCHEDULE,
    postgresql_where=FROM_SCHEDULE,
)


# A queue's controls; a row appears when a queue name is first used. Empty = no limit.
queues_table = Table(
    "queues",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("paused_at", UTCDateTime),
    Column("concurrency", Integer, comment="running, all daemons"),
    Column("max_pending", Integer),
    Column("rate_count", Integer, comment="starts per rate_period"),
    Column("rate_period", Float, comment="seconds"),
    Column("rate_burst", Integer),
    # GCRA's theoretical arrival time, in Unix seconds: one number is the whole limiter.
    Column("rate_tat", Float),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Who leads the daemons on this database: a lease with a term, like a job's.
#
# One row, made by the migration. A daemon leads while `holder` is its id and `expires_at` is
# ahead; another may take over once it has passed. `term` grows by one at every change of
# holder, so a write fenced by (holder, term) fails for a leader that was replaced.
leadership_table = Table(
    "leadership",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(64)),
    Column("term", Integer, nullable=False),
    Column("elected_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
)


# A recurring job as a daemon of the app declared it, and where its ticks have got to.
#
# `next_run_at` is the compare-and-set guard: a tick is fired by the one transaction that
# moves it on from the value it read, and that transaction also inserts the tick's jobs.
schedules_table = Table(
    "schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("type", String(200), nullable=False),
    Column("queue", String(200), nullable=False),
    Column("payload", Text, comment="JSON object", nullable=False),
    Column("catch_up", String(16), nullable=False),
    Column("max_catch_up", Integer, nullable=False),
    Column("no_overlap", Boolean, nullable=False),
    Column("next_run_at", UTCDateTime),
    Column("last_tick", UTCDateTime),
    Column("last_run_at", UTCDateTime),
    Column("last_job_id", Id),
    # Renewed by every daemon that knows the schedule; one nobody renews is shown inactive.
    Column("seen_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Revision 0005: the throughput history, one row per (minute, queue, type, outcome),
# written once per minute by the rollup (core/history.py) and kept for its own retention.
job_minutes_table = Table(
    "job_minutes",
    metadata,
    Column("minute", UTCDateTime, primary_key=True),
    Column("queue", String(200), primary_key=True),
    Column("type", String(200), primary_key=True),
    Column("outcome", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("duration", Float, comment="seconds, summed", nullable=False),
    Column("wait", Float, comment="seconds, summed", nullable=False),
)


# How far the rollup has got: every minute before `rolled_up_to` is in job_minutes. The
# rollup moves it on by compare-and-set in the transaction that writes the minutes.
rollups_table = Table(
    "rollups",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("rolled_up_to", UTCDateTime),
)


# The rollup counts failed attempts per minute by this (its own range, like finished_at's).
Index("ix_job_errors_failed_at", job_errors_table.c.failed_at)

# Revision 0006: the failed and the canceled jobs, newest first, without a scan of a table of
# completed ones (the dashboard's tabs, `jobs list --status failed`). Rows enter them only when
# a job fails or is canceled: the hot path (claim, complete) never writes to them.
FAILED_ONLY = text(f"status = '{JobStatus.FAILED.value}'")
CANCELED_ONLY = text(f"status = '{JobStatus.CANCELED.value}'")
Index("ix_jobs_failed", jobs_table.c.id, sqlite_where=FAILED_ONLY, postgresql_where=FAILED_ONLY)
Index(
    "ix_jobs_canceled", jobs_table.c.id, sqlite_where=CANCELED_ONLY, postgresql_where=CANCELED_ONLY
)
