"""Alembic migrations, applied at start by `upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).parent
# Held (on PostgreSQL) while migrations run, so that replicas starting together migrate one at a
# time: the others wait, then find the schema up to date. Any fixed number will do.
_MIGRATION_LOCK = 0x68656164_77617472  # "headwatr"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest revision.

    On SQLite, foreign keys are switched off while migrations run (it can only be done outside
    a transaction): a migration that rebuilds a table (Alembic's batch mode copies it to a new
    one and drops the old) would otherwise delete, by cascade, every row that refers to it.
    The references are checked before the migrations commit.

    On PostgreSQL, a transaction-scoped advisory lock makes processes that start together
    (several `serve` replicas, workers) take turns."""
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite:
                    _check_references(connection)
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _check_references(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"a migration left rows referring to nothing: {broken[:5]}")
