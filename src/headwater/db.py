"""Declarative base, naming convention, shared column types, and the engine with its sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite otherwise hands a deleted row's id to the next insert: a recreated channel would find
# the old one's index directory, and a stale worker would write into a new run with its id.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def database_now(session: Session) -> Any:
    """Now by the database server's clock on PostgreSQL, where workers on several machines
    compare heartbeats; by this machine's on SQLite, whose processes all share one clock."""
    if session.get_bind().dialect.name == "postgresql":
        return func.now()
    return utcnow()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), str: String()}


intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
bigint = Annotated[int, mapped_column(BigInteger)]
created_at = Annotated[dt.datetime, mapped_column(UTCDateTime(), default=utcnow)]
updated_at = Annotated[dt.datetime, mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)]


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never if it rolls back)."""
    event.listen(session, "after_commit", lambda _session: callback(), once=True)


def after_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` if the session's transaction rolls back."""
    event.listen(session, "after_rollback", lambda _session: callback(), once=True)


def add_unique(session: Session, instance: object, conflict: Exception) -> None:
    """Insert `instance`, raising `conflict` if a unique constraint refuses it: the check before
    an insert can race with another writer on PostgreSQL, the constraint cannot."""
    try:
        with session.begin_nested():
            session.add(instance)
    except IntegrityError:
        raise conflict from None


def fetch_tuples(session: Session, statement: Any) -> list[tuple[Any, ...]]:
    """A select's rows as the driver's own tuples, for reads of hundreds of thousands of rows
    whose columns need no conversion (strings, numbers, bytes): without SQLAlchemy's row
    objects, a conda-forge-sized read takes half the time."""
    connection = session.connection()
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    values = compiled.construct_params()
    positions = compiled.positiontup
    parameters: Any = tuple(values[name] for name in positions) if positions else values
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), parameters)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def insert_or_ignore(session: Session, table: Table) -> Executable:
    """An INSERT into `table` that leaves alone rows another writer added meanwhile (PostgreSQL
    lets writers overlap; SQLite's take turns)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite(engine: Engine) -> None:
    """Own SQLite's transactions so that writers can ask for the write lock up front.

    pysqlite's default defers BEGIN until the first write, which lets a reader that later writes
    fail at once with SQLITE_BUSY instead of waiting. Writers here begin IMMEDIATE and wait.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        # A conda-forge subdir is half a million rows in one transaction; the default 2 MiB
        # page cache makes each index insert go to disk.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The engine and the two kinds of session Headwater uses: reading, and writing."""

    def __init__(self, url: str, *, echo: bool = False, connect_args: dict[str, Any] | None = None):
        self.url = url
        self.is_sqlite = is_sqlite(url)
        kwargs: dict[str, Any] = {"echo": echo, "connect_args": dict(connect_args or {})}
        if self.is_sqlite:
            kwargs["connect_args"].setdefault("check_same_thread", False)
            kwargs["connect_args"].setdefault("timeout", 60)
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads; on SQLite it never takes the write lock."""
        with self._read() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session for one write transaction, committed on success and rolled back on error."""
        with self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
