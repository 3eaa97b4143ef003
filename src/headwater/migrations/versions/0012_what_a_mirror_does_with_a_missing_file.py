"""what a mirror does with a file upstream lists but cannot deliver; a run's warnings

`mirrors.on_missing_file` is skip (left out with a warning, tried again next run) or fail;
`runs.warnings` lists what a completed run left out. Runs from before have none.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mirrors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("on_missing_file", sa.String(length=8), nullable=False, server_default="skip")
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("warnings")
    with op.batch_alter_table("mirrors", schema=None) as batch_op:
        batch_op.drop_column("on_missing_file")
