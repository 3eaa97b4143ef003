"""Upgrading a database that holds data: nothing is lost, owners become users, and runs of
mirrors become runs of the job kind `mirror` with the same one-at-a-time rule."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

import headwater.models  # noqa: F401  (the tables, for Base.metadata)
from headwater.db import Base, Database
from headwater.migrations import alembic_config, upgrade

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _at_revision(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _fill_0005(engine: Engine) -> None:
    """What a Headwater from before organizations holds: two users, channels owned by name
    (one by a user who is gone), a file, mirrors, a token that never expires."""
    with engine.begin() as connection:
        for user_id, name, admin in ((1, "root", True), (2, "alice", False)):
            connection.execute(
                text(
                    "INSERT INTO users (id, username, password_hash, is_admin, created_at) "
                    "VALUES (:id, :name, 'scrypt$x$y', :admin, :now)"
                ),
                {"id": user_id, "name": name, "admin": admin, "now": NOW},
            )
        for channel_id, name, owner in ((1, "tools", "alice"), (2, "orphan", "gone")):
            connection.execute(
                text(
                    "INSERT INTO channels (id, name, description, privacy, owner, filters, "
                    "simple_revision, created_at, updated_at) VALUES (:id, :name, '', "
                    "'private', :owner, '{}', 0, :now, :now)"
                ),
                {"id": channel_id, "name": name, "owner": owner, "now": NOW},
            )
        connection.execute(
            text(
                "INSERT INTO package_files (id, channel_id, package_type, subdir, filename, "
                "name, version, build, sha256, size, record, created_at) VALUES (1, 1, 'conda', "
                "'noarch', 'a-1-0.conda', 'a', '1', '0', :sha, 1, :record, :now)"
            ),
            {"sha": "0" * 64, "record": b"{}", "now": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO channel_indexes (channel_id, subdir, repodata_sha256, repodata_size, "
                "repodata_zst_sha256, repodata_zst_size, shard_index_sha256, shard_index_size, "
                "shard_pack_sha256, record_count, published_at) VALUES (1, 'noarch', :a, 10, :b, "
                "5, :c, 3, :d, 1, :now)"
            ),
            {"a": "a" * 64, "b": "b" * 64, "c": "c" * 64, "d": "d" * 64, "now": NOW},
        )
        connection.execute(
            text(
                'INSERT INTO cves (id, withdrawn, other_scores, aliases, "references", '
                "affected, updated_at) VALUES ('CVE-2026-1', false, '[]', '[]', '[]', '[]', :now)"
            ),
            {"now": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO cve_matches (id, cve_id, file_id, status, note, curated_by, "
                "curated_at, created_at) VALUES (1, 'CVE-2026-1', 1, 'cleared', 'not used', "
                "'root', :now, :now)"
            ),
            {"now": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO api_tokens (id, user_id, token_sha256, description, created_at, "
                "expires_at) VALUES (1, 2, :sha, 'login', :now, NULL)"
            ),
            {"sha": "1" * 64, "now": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO mirrors (id, channel_id, mirror_name, mirror_type, source_root, "
                "mirror_mode, cron, filters, created_at, updated_at) VALUES (1, 1, 'forge', "
                "'conda', 'https://conda.anaconda.org/conda-forge', 'passive', '', '{}', :now, "
                ":now)"
            ),
            {"now": NOW},
        )
        for run_id, state in ((1, "completed"), (2, "running"), (3, "completed")):
            connection.execute(
                text(
                    'INSERT INTO runs (id, mirror_id, state, "trigger", created_at, step, '
                    "progress_done, progress_total, seen, added, removed, unchanged, excluded, "
                    "excluded_reasons, downloaded, bytes_downloaded) VALUES (:id, 1, :state, "
                    "'manual', :now, '', 0, 0, 5, 5, 0, 0, 0, '{}', 0, 0)"
                ),
                {"id": run_id, "state": state, "now": NOW},
            )
        connection.execute(text("DELETE FROM runs WHERE id = 3"))  # its id is spent
        connection.execute(
            text(
                "INSERT INTO run_log_lines (run_id, at, level, message) "
                "VALUES (1, :now, 'info', 'claimed by worker w')"
            ),
            {"now": NOW},
        )


def _check_upgraded(engine: Engine) -> None:
    with engine.connect() as connection:
        owners = dict(connection.execute(text("SELECT name, owner_user_id FROM channels")).all())
        assert owners == {"tools": 2, "orphan": 1}  # the user, else the first administrator
        assert connection.execute(text("SELECT count(*) FROM package_files")).scalar() == 1
        # What each channel held is its revision 1, served by the index it was served by.
        heads = dict(connection.execute(text("SELECT name, head FROM channels")).all())
        assert heads == {"tools": 1, "orphan": 1}
        revisions = connection.execute(
            text(
                "SELECT channel_id, number, cause, file_count FROM channel_revisions "
                "ORDER BY channel_id"
            )
        ).all()
        assert [tuple(r) for r in revisions] == [(1, 1, "migration", 1), (2, 1, "migration", 0)]
        file = connection.execute(text("SELECT added_in, removed_in FROM package_files")).one()
        assert tuple(file) == (1, None)
        index = connection.execute(
            text("SELECT channel_id, number, subdir, repodata_sha256 FROM revision_indexes")
        ).one()
        assert tuple(index) == (1, 1, "noarch", "a" * 64)
        match = connection.execute(
            text("SELECT file_id, status, note, curated_by FROM cve_matches")
        ).one()
        assert tuple(match) == (1, "cleared", "not used", "root")
        token = connection.execute(text("SELECT kind, name, expires_at FROM api_tokens")).one()
        assert token.kind == "session" and token.name == "login"
        assert token.expires_at is not None
        runs = connection.execute(
            text("SELECT id, kind, concurrency_key, mirror_id, state, seen FROM runs ORDER BY id")
        ).all()
        assert [tuple(run) for run in runs] == [
            (1, "mirror", "mirror:1", 1, "completed", 5),
            (2, "mirror", "mirror:1", 1, "running", 5),
        ]
        assert connection.execute(text("SELECT count(*) FROM run_log_lines")).scalar() == 1
    # Still one pending-or-running run per mirror: the database refuses a second.
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, kind, concurrency_key, mirror_id, params, state, "
                '"trigger", created_at, step, progress_done, progress_total, bytes_expected, '
                "seen, added, removed, unchanged, excluded, excluded_reasons, downloaded, "
                "bytes_downloaded) VALUES (3, 'mirror', 'mirror:1', 1, '{}', 'pending', "
                "'manual', :now, '', 0, 0, 0, 0, 0, 0, 0, 0, '{}', 0, 0)"
            ),
            {"now": NOW},
        )


def test_upgrading_sqlite_keeps_every_row(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    _at_revision(engine, "0005")
    _fill_0005(engine)
    engine.dispose()
    database = Database(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(database.engine)
    _check_upgraded(database.engine)
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    _never_reuse_ids(database.engine)
    with database.engine.connect() as connection:  # run 3 was deleted: the next is 4
        spent = "SELECT seq FROM sqlite_sequence WHERE name = 'runs'"
        assert connection.exec_driver_sql(spent).scalar() == 3


def test_a_new_sqlite_database_never_reuses_ids(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    upgrade(database.engine)
    _never_reuse_ids(database.engine)


def _never_reuse_ids(engine: Engine) -> None:
    """Every table whose model says ids are never given twice (a deleted channel's id must not
    name a new one: caches and tokens keyed by it) is AUTOINCREMENT on SQLite, however the
    migrations rebuilt it."""
    with engine.connect() as connection:
        made = dict(connection.exec_driver_sql("SELECT name, sql FROM sqlite_master").all())
    wanted = [
        t.name for t in Base.metadata.sorted_tables if t.dialect_options["sqlite"]["autoincrement"]
    ]
    assert {"users", "channels", "api_tokens", "package_files", "runs"} <= set(wanted)
    assert [name for name in wanted if "AUTOINCREMENT" not in made[name]] == []


@pytest.mark.postgres
def test_upgrading_postgresql_keeps_every_row(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    _at_revision(engine, "0005")
    _fill_0005(engine)
    upgrade(engine)
    _check_upgraded(engine)


@pytest.mark.postgres
def test_processes_starting_together_on_postgresql_migrate_one_at_a_time(
    postgres_url: str, tmp_path: Path
) -> None:
    """Several `serve` replicas and workers started at once each migrate at start: they take
    turns, and every one of them starts."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEADWATER_")}
    env.update(
        HEADWATER_DATABASE_URL=postgres_url,
        HEADWATER_DATA_DIR=str(tmp_path / "var"),
        HEADWATER_ADMIN_PASSWORD="the first administrator's",
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "headwater", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, outputs
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        admins = connection.execute(text("SELECT count(*) FROM users")).scalar()
    engine.dispose()
    assert len(versions) == 1 and admins == 1


@pytest.mark.postgres
def test_the_audit_log_refuses_changes_on_postgresql(postgres_url: str) -> None:
    _refuses_changes(Database(postgres_url).engine)


def test_the_audit_log_refuses_changes_on_sqlite(tmp_path: Path) -> None:
    _refuses_changes(Database(f"sqlite:///{tmp_path / 'new.sqlite3'}").engine)


def _refuses_changes(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_events (at, actor, address, action, target, details) "
                "VALUES (:now, 'root', '127.0.0.1', 'channel.create', 'tools', '{}')"
            ),
            {"now": NOW},
        )
    for statement in (
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT actor FROM audit_events")).scalar() == "root"
