"""One way to change a channel: build the next revision, then move the head in one short
transaction (docs/architecture.md, "Channel revisions").

Every change (a mirror run, an upload, a file deletion, a mirror deletion, a rollback) is a
`Change`: it plans its difference from the head it read, the service stages the new rows and
the removals, renders the touched subdirs' indexes and matches the new files against the CVE
database, all outside the write lock and invisible to clients, and then lands it with
`UPDATE channels SET head = h + 1 WHERE head = h`. If another change landed first, the plan is
made again on the new head, so both changes land. A change that fails lands nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from headwater.cves.names import CondaNames
from headwater.db import Database, utcnow
from headwater.errors import ChannelBusyError, ChannelNotFoundError
from headwater.models import (
    Channel,
    ChannelRevision,
    PackageFile,
    PackageType,
    PendingRemoval,
    RevisionCause,
    RevisionIndex,
)
from headwater.models.file import BULK_COLUMNS
from headwater.services import blobs
from headwater.services.blobs import ensure_recorded
from headwater.services.cve_matching import match_staged
from headwater.services.indexes import (
    artifact_blobs,
    drop_indexes,
    lock_channel,
    render_subdir,
)
from headwater.storage import BlobStore

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 5  # a change rebuilt on a moved head this many times gives up
_BATCH = 10_000
# Rows a change staged are removed when it fails; these are what a crash left behind.
STAGED_RETENTION_SECONDS = 6 * 3600


@dataclass
class Plan:
    """A change's difference from one head: rows to add (in BULK_COLUMNS order, without the
    change key) and ids of head files to remove."""

    additions: list[tuple[Any, ...]] = field(default_factory=list)
    removals: list[int] = field(default_factory=list)
    changes: dict[str, list[int]] = field(default_factory=dict)  # subdir → [added, removed]
    render: set[str] = field(default_factory=set)  # conda subdirs whose index to render
    names: dict[str, set[str]] = field(default_factory=dict)  # conda subdir → names changed

    @property
    def empty(self) -> bool:
        """Nothing to land: no file changes, and no subdir to publish for the first time."""
        return not self.additions and not self.removals and not self.render

    def add(self, row: tuple[Any, ...]) -> None:
        self.additions.append(row)
        self._count(row[2], row[3], row[5], 0)

    def remove(self, file_id: int, package_type: str, subdir: str, name: str) -> None:
        self.removals.append(file_id)
        self._count(package_type, subdir, name, 1)

    def _count(self, package_type: str, subdir: str, name: str, column: int) -> None:
        self.changes.setdefault(subdir, [0, 0])[column] += 1
        if package_type == PackageType.conda:
            self.render.add(subdir)
            self.names.setdefault(subdir, set()).add(name)


@dataclass(frozen=True)
class Candidate:
    """The revision a change built, before it lands: what `Change.verify` checks."""

    channel_id: int
    number: int
    key: str
    indexes: dict[str, RevisionIndex]  # conda subdir → its index in this revision

    def files(self) -> ColumnElement[bool]:
        """The files of this revision (staged rows and the head's not removed)."""
        return and_(PackageFile.channel_id == self.channel_id, _after(self.key))


class Change(ABC):
    """What an edge asks of the service. `plan` reads the head; `land` runs in the transaction
    that moves it (a run completes there, under its fence) and may raise to land nothing."""

    cause: RevisionCause
    actor: str | None = None
    run_id: int | None = None
    rolled_back_to: int | None = None

    @abstractmethod
    def plan(self, session: Session, channel_id: int, head: int) -> Plan: ...

    def land(self, session: Session, revision: ChannelRevision | None) -> None:  # noqa: B027
        """Anything else the landing transaction must hold."""

    def rendered(self, index: RevisionIndex) -> None:  # noqa: B027
        """Told of each index rendered for the new revision (before it lands)."""

    def rebuilding(self) -> None:  # noqa: B027
        """Told that another change landed first and this one is planned again."""

    def landing(self) -> AbstractContextManager[object]:
        """Held around the landing transaction (taken before it begins)."""
        return nullcontext()

    def verify(self, db: Database, store: BlobStore, candidate: Candidate) -> None:  # noqa: B027
        """Check the built revision before it lands (outside any write lock); raise to land
        nothing."""


class _HeadMoved(Exception):
    pass


def apply_change(
    db: Database,
    store: BlobStore,
    channel_id: int,
    change: Change,
    *,
    cve_names: CondaNames | None = None,
) -> ChannelRevision | None:
    """Land `change` as the channel's next revision (None: it changed nothing).

    Given `cve_names`, the staged files are matched against the CVE database before they
    land (services/cve_matching.match_staged), so a revision shows its CVEs from the start.
    """
    for _ in range(MAX_ATTEMPTS):
        key = uuid.uuid4().hex
        rendered: list[RevisionIndex] = []
        try:
            return _attempt(db, store, channel_id, change, key, rendered, cve_names)
        except _HeadMoved:
            _discard(db, store, channel_id, key, rendered)
            change.rebuilding()
        except BaseException:
            _discard(db, store, channel_id, key, rendered)
            raise
    raise ChannelBusyError(
        f"the channel changed {MAX_ATTEMPTS} times while this change was being built; try again"
    )


def _attempt(
    db: Database,
    store: BlobStore,
    channel_id: int,
    change: Change,
    key: str,
    indexes: list[RevisionIndex],
    cve_names: CondaNames | None,
) -> ChannelRevision | None:
    with db.reading() as session:
        head = session.scalar(select(Channel.head).where(Channel.id == channel_id))
        if head is None:
            raise ChannelNotFoundError(f"channel {channel_id} no longer exists")
        plan = change.plan(session, channel_id, head)
    if plan.empty:  # the head stays; what it holds is checked all the same
        with db.reading() as session:
            built = _indexes_of(session, channel_id, head, ())
        change.verify(db, store, Candidate(channel_id, head, key, built))
        with change.landing(), db.writing() as session:
            lock_channel(session, channel_id)
            change.land(session, None)
        return None
    _stage(db, key, plan)
    with db.reading() as session:
        for subdir in sorted(plan.render):
            previous = session.get(RevisionIndex, (channel_id, head, subdir)) if head else None
            index = render_subdir(
                session,
                store,
                channel_id,
                subdir,
                _after(key),
                previous=previous,
                changed=plan.names.get(subdir),
            )
            indexes.append(index)
            change.rendered(index)
    # Recorded now, outside the landing transaction, which then finds their rows.
    blobs.record_written(db, store, [blob for index in indexes for blob in artifact_blobs(index)])
    if cve_names is not None:
        match_staged(db, key, names=cve_names)
    with db.reading() as session:
        built = _indexes_of(session, channel_id, head, indexes)
    change.verify(db, store, Candidate(channel_id, head + 1, key, built))
    with change.landing(), db.writing() as session:
        revision = _land(session, store, channel_id, head, key, plan, indexes, change)
        change.land(session, revision)
    _collect_superseded_indexes(db, store, channel_id, revision.number)
    return revision


def _indexes_of(
    session: Session, channel_id: int, head: int, rendered: Sequence[RevisionIndex]
) -> dict[str, RevisionIndex]:
    """The conda indexes the new revision will have: those rendered, the head's elsewhere."""
    indexes = {
        index.subdir: index
        for index in session.scalars(
            select(RevisionIndex).where(
                RevisionIndex.channel_id == channel_id, RevisionIndex.number == head
            )
        )
    }
    session.expunge_all()
    indexes.update((index.subdir, index) for index in rendered)
    return indexes


def _after(key: str) -> ColumnElement[bool]:
    """The files of the head as this change will leave it."""
    pending = select(PendingRemoval.file_id).where(PendingRemoval.change_key == key)
    return or_(
        and_(PackageFile.in_head(), PackageFile.id.not_in(pending)),
        PackageFile.change_key == key,
    )


def _stage(db: Database, key: str, plan: Plan) -> None:
    """Write the change's rows in short transactions: on SQLite others write in between."""
    for batch in chunks(plan.additions, _BATCH):
        with db.writing() as session:
            bulk_insert_files(session, ((*row, key) for row in batch))
    for removals in chunks(plan.removals, _BATCH):
        try:
            with db.writing() as session:
                session.execute(
                    insert(PendingRemoval),
                    [
                        {"change_key": key, "file_id": file_id, "created_at": utcnow()}
                        for file_id in removals
                    ],
                )
        except IntegrityError as gone:  # another change removed it and pruning took its row
            raise _HeadMoved from gone


def _land(
    session: Session,
    store: BlobStore,
    channel_id: int,
    head: int,
    key: str,
    plan: Plan,
    rendered: Sequence[RevisionIndex],
    change: Change,
) -> ChannelRevision:
    number = head + 1
    moved = session.execute(
        update(Channel).where(Channel.id == channel_id, Channel.head == head).values(head=number)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _HeadMoved
    pending = select(PendingRemoval.file_id).where(PendingRemoval.change_key == key)
    removed = session.execute(
        update(PackageFile)
        .where(PackageFile.id.in_(pending), PackageFile.removed_in.is_(None))
        .values(removed_in=number)
    )
    session.execute(delete(PendingRemoval).where(PendingRemoval.change_key == key))
    added = session.execute(
        update(PackageFile)
        .where(PackageFile.change_key == key)
        .values(added_in=number, change_key=None)
    )
    landed = (removed.rowcount, added.rowcount)  # type: ignore[attr-defined]
    if landed != (len(plan.removals), len(plan.additions)):
        raise _HeadMoved  # what it staged was swept meanwhile (a change gone on for hours)
    parent = session.get(ChannelRevision, (channel_id, head)) if head else None
    revision = ChannelRevision(
        channel_id=channel_id,
        number=number,
        parent=head or None,
        cause=change.cause,
        run_id=change.run_id,
        actor=change.actor,
        rolled_back_to=change.rolled_back_to,
        file_count=(parent.file_count if parent else 0) + len(plan.additions) - len(plan.removals),
        added=len(plan.additions),
        removed=len(plan.removals),
        changes=plan.changes,
    )
    session.add(revision)
    _number_indexes(session, store, channel_id, head, number, rendered)
    session.flush()
    return revision


def _number_indexes(
    session: Session,
    store: BlobStore,
    channel_id: int,
    head: int,
    number: int,
    rendered: Sequence[RevisionIndex],
) -> None:
    """The new revision's index rows: those rendered, and the head's for untouched subdirs."""
    previous = {
        index.subdir: index
        for index in session.scalars(
            select(RevisionIndex).where(
                RevisionIndex.channel_id == channel_id, RevisionIndex.number == head
            )
        )
    }
    for index in rendered:
        old = previous.pop(index.subdir, None)
        if old is not None and old.repodata_sha256 == index.repodata_sha256:
            index = copy_index(old)  # unchanged: clients keep their ETag and Last-Modified
        elif not ensure_recorded(session, store, artifact_blobs(index)):
            raise _HeadMoved  # a collection took an artifact of the same content: render again
        index.number = number
        session.add(index)
    for old in previous.values():
        copied = copy_index(old)
        copied.number = number
        session.add(copied)


def copy_index(index: RevisionIndex) -> RevisionIndex:
    return RevisionIndex(
        channel_id=index.channel_id,
        subdir=index.subdir,
        repodata_sha256=index.repodata_sha256,
        repodata_size=index.repodata_size,
        repodata_zst_sha256=index.repodata_zst_sha256,
        repodata_zst_size=index.repodata_zst_size,
        shard_index_sha256=index.shard_index_sha256,
        shard_index_size=index.shard_index_size,
        shard_pack_sha256=index.shard_pack_sha256,
        record_count=index.record_count,
        published_at=index.published_at,
        on_demand=False,
    )


def _collect_superseded_indexes(db: Database, store: BlobStore, channel_id: int, head: int) -> None:
    """The head's and its parent's indexes stay materialized (a request that read the old head
    finishes, a client holding the old shard index finds its shards); older ones go, but for
    those rendered again for a pinned client, which retention drops with their revision."""
    try:
        with db.writing() as session:
            lock_channel(session, channel_id)
            drop_indexes(
                session,
                channel_id,
                and_(RevisionIndex.number < head - 1, RevisionIndex.on_demand.is_(False)),
            )
    except Exception:  # the revision has landed; garbage can wait for the next one
        log.exception("collecting superseded indexes of channel %s failed", channel_id)


def _discard(
    db: Database, store: BlobStore, channel_id: int, key: str, rendered: list[RevisionIndex]
) -> None:
    """What a change that did not land left: its staged rows. The artifacts it rendered are
    blobs no row names, left to garbage collection (a change rendering the same content may be
    about to name them)."""
    try:
        with db.writing() as session:
            lock_channel(session, channel_id)
            session.execute(delete(PendingRemoval).where(PendingRemoval.change_key == key))
            session.execute(delete(PackageFile).where(PackageFile.change_key == key))
    except Exception:  # rows are left for sweep_staged_rows
        log.exception("discarding what change %s staged failed", key)
    rendered.clear()


def sweep_staged(session: Session, channel_id: int) -> int:
    """What changes a crash interrupted left staged in the channel: rows and pending removals
    older than STAGED_RETENTION_SECONDS (a change that is still going lands nothing then)."""
    before = utcnow() - dt.timedelta(seconds=STAGED_RETENTION_SECONDS)
    rows = session.execute(
        delete(PackageFile).where(
            PackageFile.channel_id == channel_id,
            PackageFile.change_key.is_not(None),
            PackageFile.created_at < before,
        )
    )
    in_channel = select(PackageFile.id).where(PackageFile.channel_id == channel_id)
    session.execute(
        delete(PendingRemoval).where(
            PendingRemoval.file_id.in_(in_channel), PendingRemoval.created_at < before
        )
    )
    return int(rows.rowcount or 0)  # type: ignore[attr-defined]


def bulk_insert_files(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert package file rows (in BULK_COLUMNS order) at the driver's full speed.

    A conda-forge subdir is half a million rows: PostgreSQL takes them through COPY, SQLite
    through executemany, both beneath the ORM, inside the session's transaction.
    """
    connection = session.connection()
    columns = ", ".join(BULK_COLUMNS)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY package_files ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    statement = (
        f"INSERT INTO package_files ({columns}) VALUES ({', '.join('?' * len(BULK_COLUMNS))})"
    )
    for batch in chunks(rows, _BATCH):
        connection.exec_driver_sql(statement, batch)


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def file_row(file: PackageFile) -> tuple[Any, ...]:
    """A file's row as a change adds it again (a rollback), in BULK_COLUMNS order."""
    return tuple(getattr(file, column) for column in BULK_COLUMNS[:-1])
