"""What a running handler reports: progress (a fraction and a message) and metadata; and the
failed and canceled jobs indexed by id, for lists that filter on them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable ADD COLUMNs: no table rebuild, instant on a big SQLite file.
    op.add_column("jobs", sa.Column("progress", sa.Float(), nullable=True, comment="0 to 1"))
    op.add_column("jobs", sa.Column("progress_message", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("meta", sa.Text(), nullable=True, comment="JSON object"))
    for status in ("failed", "canceled"):
        only = sa.text(f"status = '{status}'")
        op.create_index(
            f"ix_jobs_{status}", "jobs", ["id"], sqlite_where=only, postgresql_where=only
        )


def downgrade() -> None:
    op.drop_index("ix_jobs_canceled", table_name="jobs")
    op.drop_index("ix_jobs_failed", table_name="jobs")
    op.drop_column("jobs", "meta")
    op.drop_column("jobs", "progress_message")
    op.drop_column("jobs", "progress")
