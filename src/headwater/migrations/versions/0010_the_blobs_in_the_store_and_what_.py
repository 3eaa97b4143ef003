"""the blobs in the store and what references them; a PyPI file's metadata blob

Blobs stored before this revision get their rows from the first garbage collection, which
adopts every listed blob before it judges any (services/blobs.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:50:01.161613
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_blobs_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_blobs")),
    )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index("ix_blobs_channel_id", ["channel_id"], unique=False)
        batch_op.create_index("ix_blobs_sha256", ["sha256"], unique=False)
        batch_op.create_index("ix_blobs_touched_at", ["touched_at"], unique=False)

    with op.batch_alter_table("package_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metadata_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_package_files_metadata_sha256", ["metadata_sha256"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        digest = "NULLIF(convert_from(record, 'UTF8')::jsonb ->> 'core_metadata', '')"
    else:
        digest = "NULLIF(json_extract(CAST(record AS TEXT), '$.core_metadata'), '')"
    op.execute(f"UPDATE package_files SET metadata_sha256 = {digest} WHERE package_type = 'python'")


def downgrade() -> None:
    with op.batch_alter_table("package_files", schema=None) as batch_op:
        batch_op.drop_index("ix_package_files_metadata_sha256")
        batch_op.drop_column("metadata_sha256")

    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_index("ix_blobs_touched_at")
        batch_op.drop_index("ix_blobs_sha256")
        batch_op.drop_index("ix_blobs_channel_id")

    op.drop_table("blobs")
