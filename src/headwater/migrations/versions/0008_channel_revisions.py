"""channel revisions: files hold the interval of revisions they are in; every channel's
current contents become its revision 1, its published indexes revision 1's

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}
IN_HEAD = sa.text("removed_in IS NULL AND added_in IS NOT NULL")
INDEX_COLUMNS = (
    "channel_id, subdir, repodata_sha256, repodata_size, repodata_zst_sha256, "
    "repodata_zst_size, shard_index_sha256, shard_index_size, shard_pack_sha256, "
    "record_count, published_at"
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    counters = (
        {table: _sequence(table) for table in ("channels", "package_files")} if sqlite else {}
    )
    op.create_table(
        "channel_revisions",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parent", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("rolled_back_to", sa.Integer(), nullable=True),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("keep", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_revisions_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "number", name=op.f("pk_channel_revisions")),
        sa.UniqueConstraint("channel_id", "keep", name="uq_channel_revisions_keep"),
    )
    op.create_table(
        "revision_indexes",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("subdir", sa.String(length=32), nullable=False),
        sa.Column("repodata_sha256", sa.String(length=64), nullable=False),
        sa.Column("repodata_size", sa.Integer(), nullable=False),
        sa.Column("repodata_zst_sha256", sa.String(length=64), nullable=False),
        sa.Column("repodata_zst_size", sa.Integer(), nullable=False),
        sa.Column("shard_index_sha256", sa.String(length=64), nullable=False),
        sa.Column("shard_index_size", sa.Integer(), nullable=False),
        sa.Column("shard_pack_sha256", sa.String(length=64), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("on_demand", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_revision_indexes_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "number", "subdir", name=op.f("pk_revision_indexes")),
    )
    op.create_index(
        "ix_revision_indexes_channel_subdir", "revision_indexes", ["channel_id", "subdir"]
    )

    with op.batch_alter_table("channels", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column("head", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("revisions_kept", sa.Integer(), nullable=True))
        batch_op.drop_column("simple_revision")

    with op.batch_alter_table("package_files", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column("added_in", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("removed_in", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("change_key", sa.String(length=40), nullable=True))
        batch_op.drop_constraint("uq_package_files_channel_id", type_="unique")
        batch_op.drop_constraint("fk_package_files_mirror_id_mirrors", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_package_files_mirror_id_mirrors",
            "mirrors",
            ["mirror_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute("UPDATE package_files SET added_in = 1")
    with op.batch_alter_table("package_files", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.create_index(
            "uq_package_files_in_head",
            ["channel_id", "subdir", "filename"],
            unique=True,
            sqlite_where=IN_HEAD,
            postgresql_where=IN_HEAD,
        )
        batch_op.create_index("ix_package_files_channel_added_in", ["channel_id", "added_in"])
        batch_op.create_index("ix_package_files_channel_removed_in", ["channel_id", "removed_in"])
        batch_op.create_index("ix_package_files_change_key", ["change_key"])
        batch_op.create_index("ix_package_files_sha256", ["sha256"])
        batch_op.drop_index("ix_package_files_mirror_subdir")
        batch_op.create_index(
            "ix_package_files_mirror_head",
            ["mirror_id", "subdir", "filename", "sha256", "name", "id"],
            sqlite_where=IN_HEAD,
            postgresql_where=IN_HEAD,
        )

    op.create_table(
        "pending_removals",
        sa.Column("change_key", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["package_files.id"],
            name=op.f("fk_pending_removals_file_id_package_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("change_key", "file_id", name=op.f("pk_pending_removals")),
    )

    # Every channel's contents as they are become its revision 1, published as they were.
    op.execute(
        "INSERT INTO channel_revisions (channel_id, number, parent, created_at, cause, "
        "file_count, added, removed, changes) "
        "SELECT c.id, 1, NULL, CURRENT_TIMESTAMP, 'migration', "
        "(SELECT count(*) FROM package_files f WHERE f.channel_id = c.id), "
        "(SELECT count(*) FROM package_files f WHERE f.channel_id = c.id), 0, '{}' "
        "FROM channels c"
    )
    op.execute("UPDATE channels SET head = 1")
    op.execute(
        f"INSERT INTO revision_indexes (number, on_demand, {INDEX_COLUMNS}) "
        f"SELECT 1, false, {INDEX_COLUMNS} FROM channel_indexes"
    )
    op.drop_table("channel_indexes")

    for table, last_id in counters.items():
        if last_id is not None:
            _keep_sequence(table, last_id)


def _sequence(table: str) -> int | None:
    """SQLite's AUTOINCREMENT counter of `table`: the highest id it ever gave."""
    found = op.get_bind().execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = :table"), {"table": table}
    )
    value = found.scalar()
    return int(value) if value is not None else None


def _keep_sequence(table: str, last_id: int) -> None:
    """A rebuilt table counts ids again from its highest row: a deleted last row's id would
    be given again."""
    for statement in (
        "UPDATE sqlite_sequence SET seq = :seq WHERE name = :table AND seq < :seq",
        "INSERT INTO sqlite_sequence (name, seq) SELECT :table, :seq "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :table)",
    ):
        op.execute(sa.text(statement).bindparams(seq=last_id, table=table))


def downgrade() -> None:
    raise NotImplementedError(
        "revisions cannot be folded back into one generation: restore a backup taken before "
        "upgrading instead"
    )
