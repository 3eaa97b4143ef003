"""runs of jobs of several kinds: kind, concurrency key, params; schedules of jobs. On
SQLite, ids never reused again in the tables 0006 rebuilt without AUTOINCREMENT

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIVE = sa.text("state IN ('pending', 'running')")
# SQLite rebuilds the table to change a column; run ids must still never be reused.
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


# 0006 changed columns of these on SQLite, which rebuilds a table, and the rebuilt tables lost
# AUTOINCREMENT: a deleted channel's, user's, token's or file's id could be given again.
REBUILT_IN_0006 = ("users", "api_tokens", "channels", "package_files")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for table in REBUILT_IN_0006:
            with op.batch_alter_table(table, recreate="always", table_kwargs=KEEP_AUTOINCREMENT):
                pass
    # A rebuild counts ids again from the highest row left: a deleted last run's id would
    # be given again. The counter is kept across it.
    last_run_id = _sequence("runs") if sqlite else None
    with op.batch_alter_table("runs", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="mirror")
        )
        batch_op.add_column(sa.Column("concurrency_key", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE runs SET concurrency_key = 'mirror:' || CAST(mirror_id AS VARCHAR), params = '{}'"
    )
    with op.batch_alter_table("runs", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.alter_column("concurrency_key", existing_type=sa.String(100), nullable=False)
        batch_op.alter_column("params", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("mirror_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_index("uq_runs_one_active_per_mirror")
        batch_op.create_index(
            "uq_runs_one_active_per_key",
            ["concurrency_key"],
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        )

    if last_run_id is not None:
        for statement in (
            "UPDATE sqlite_sequence SET seq = :seq WHERE name = 'runs' AND seq < :seq",
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'runs', :seq "
            "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'runs')",
        ):
            op.execute(sa.text(statement).bindparams(seq=last_run_id))

    op.create_table(
        "job_schedules",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_job_schedules")),
    )


def _sequence(table: str) -> int | None:
    """SQLite's AUTOINCREMENT counter of `table`: the highest id it ever gave."""
    found = op.get_bind().execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = :table"), {"table": table}
    )
    value = found.scalar()
    return int(value) if value is not None else None


def downgrade() -> None:
    op.drop_table("job_schedules")
    op.execute("DELETE FROM runs WHERE mirror_id IS NULL")
    with op.batch_alter_table("runs", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_index("uq_runs_one_active_per_key")
        batch_op.create_index(
            "uq_runs_one_active_per_mirror",
            ["mirror_id"],
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        )
        batch_op.alter_column("mirror_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("params")
        batch_op.drop_column("concurrency_key")
        batch_op.drop_column("kind")
