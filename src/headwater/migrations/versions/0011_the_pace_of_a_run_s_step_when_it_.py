"""the pace of a run's step: when it started, its bytes, rate and time left

Written by each heartbeat (services/progress.py Pace); runs from before have none.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:02:21.350172
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("step_bytes_done", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("bytes_per_second", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("eta_seconds", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("eta_seconds")
        batch_op.drop_column("bytes_per_second")
        batch_op.drop_column("step_bytes_done")
        batch_op.drop_column("step_started_at")
