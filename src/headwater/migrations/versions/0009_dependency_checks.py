"""dependency checks: a channel's must_install specs, the channels available beside it and what
an unsolvable must_install does; a run's dependency report

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("must_install", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("also_available", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("on_unsolvable", sa.String(length=8), nullable=False, server_default="fail")
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("report", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("report")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("on_unsolvable")
        batch.drop_column("also_available")
        batch.drop_column("must_install")
