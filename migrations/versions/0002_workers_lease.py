"""Workers record their lease, so liveness is judged by each worker's own heartbeat rate.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: rows of workers started before this revision have no lease; readers assume theirs.
    op.add_column("workers", sa.Column("lease", sa.Float(), nullable=True, comment="seconds"))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("lease")
