"""The throughput history (job_minutes), the rollup's progress (rollups), and an index on
failed attempts' times for the rollup.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_minutes",
        sa.Column("minute", Timestamp, nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False, comment="seconds, summed"),
        sa.Column("wait", sa.Float(), nullable=False, comment="seconds, summed"),
        sa.PrimaryKeyConstraint("minute", "queue", "type", "outcome", name=op.f("pk_job_minutes")),
    )
    op.create_table(
        "rollups",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("rolled_up_to", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollups")),
    )
    # NULL: not started; the first run begins at the oldest finished job it still finds.
    op.execute("INSERT INTO rollups (name, rolled_up_to) VALUES ('job_minutes', NULL)")
    op.create_index("ix_job_errors_failed_at", "job_errors", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_job_errors_failed_at", table_name="job_errors")
    op.drop_table("rollups")
    op.drop_table("job_minutes")
