"""Recurring jobs (the schedules table) and unique jobs and idempotent enqueues (job keys).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Frozen here as the schema renders it (schema.UNIQUE_HELD); a test holds the two equal.
UNIQUE_HELD = sa.text(
    "unique_key IS NOT NULL AND (unique_states & CASE status WHEN 'pending' THEN 1 "
    "WHEN 'running' THEN 2 WHEN 'completed' THEN 4 WHEN 'failed' THEN 8 "
    "WHEN 'canceled' THEN 16 ELSE 0 END) <> 0"
)
HAS_IDEMPOTENCY_KEY = sa.text("idempotency_key IS NOT NULL")
FROM_SCHEDULE = sa.text("schedule IS NOT NULL")


def upgrade() -> None:
    # Plain ADD COLUMNs of nullable columns: no table rebuild, instant on a big SQLite file.
    op.add_column("jobs", sa.Column("idempotency_key", sa.String(length=200), nullable=True))
    op.add_column(
        "jobs",
        sa.Column(
            "unique_key", sa.String(length=64), nullable=True, comment="sha256 of the fields"
        ),
    )
    op.add_column(
        "jobs", sa.Column("unique_states", sa.Integer(), nullable=True, comment="bit per status")
    )
    op.add_column("jobs", sa.Column("schedule", sa.String(length=200), nullable=True))
    op.add_column("jobs", sa.Column("schedule_tick", Timestamp, nullable=True))
    op.create_index(
        "uq_jobs_unique_key",
        "jobs",
        ["unique_key"],
        unique=True,
        sqlite_where=UNIQUE_HELD,
        postgresql_where=UNIQUE_HELD,
    )
    op.create_index(
        "uq_jobs_idempotency_key",
        "jobs",
        ["idempotency_key"],
        unique=True,
        sqlite_where=HAS_IDEMPOTENCY_KEY,
        postgresql_where=HAS_IDEMPOTENCY_KEY,
    )
    op.create_index(
        "uq_jobs_schedule_tick",
        "jobs",
        ["schedule", "schedule_tick"],
        unique=True,
        sqlite_where=FROM_SCHEDULE,
        postgresql_where=FROM_SCHEDULE,
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False, comment="JSON object"),
        sa.Column("catch_up", sa.String(length=16), nullable=False),
        sa.Column("max_catch_up", sa.Integer(), nullable=False),
        sa.Column("no_overlap", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", Timestamp, nullable=True),
        sa.Column("last_tick", Timestamp, nullable=True),
        sa.Column("last_run_at", Timestamp, nullable=True),
        sa.Column("last_job_id", Id, nullable=True),
        sa.Column("seen_at", Timestamp, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedules")),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_index("uq_jobs_schedule_tick", table_name="jobs")
    op.drop_index("uq_jobs_idempotency_key", table_name="jobs")
    op.drop_index("uq_jobs_unique_key", table_name="jobs")
    for column in ("schedule_tick", "schedule", "unique_states", "unique_key", "idempotency_key"):
        op.drop_column("jobs", column)
