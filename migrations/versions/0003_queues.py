"""Queues with controls (pause, concurrency, max_pending, rate), a per-queue claim index, and
the leadership row the daemons elect a leader with.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
PENDING_ONLY = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("paused_at", Timestamp, nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=True, comment="running, all daemons"),
        sa.Column("max_pending", sa.Integer(), nullable=True),
        sa.Column("rate_count", sa.Integer(), nullable=True, comment="starts per rate_period"),
        sa.Column("rate_period", sa.Float(), nullable=True, comment="seconds"),
        sa.Column("rate_burst", sa.Integer(), nullable=True),
        sa.Column("rate_tat", sa.Float(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_queues")),
    )
    op.create_index(
        "ix_jobs_queue_claim",
        "jobs",
        ["queue", sa.column("priority").desc(), "run_at", "id"],
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    )
    op.create_table(
        "leadership",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("elected_at", Timestamp, nullable=True),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leadership")),
    )
    op.execute("INSERT INTO leadership (name, holder, term) VALUES ('leader', NULL, 0)")
    # The queues in use get their rows now; later ones get theirs on first enqueue.
    op.execute(
        "INSERT INTO queues (name, created_at, updated_at) "
        "SELECT queue, MIN(created_at), MIN(created_at) FROM jobs GROUP BY queue"
    )


def downgrade() -> None:
    op.drop_table("leadership")
    op.drop_index("ix_jobs_queue_claim", table_name="jobs")
    op.drop_table("queues")
