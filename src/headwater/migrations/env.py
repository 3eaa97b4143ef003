"""Alembic environment: runs on the connection `headwater.migrations.upgrade` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

import headwater.models  # noqa: F401  (registers every table)
from headwater.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # `alembic -x url=... revision --autogenerate` from a developer's shell.
        url = context.get_x_argument(as_dictionary=True)["url"]
        with create_engine(url).connect() as fresh:
            _run(fresh)
            fresh.commit()
        return
    _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
