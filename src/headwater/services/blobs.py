"""The blobs table: what is stored, whether anything still references it, and collecting it.

Every write into the store is recorded here (`record`), with the write's time as `touched_at`;
a run that decides to use bytes already stored touches their rows first (`touch`), and dropping
the last rows that name a blob (pruning, a superseded index, a deleted channel) touches it too
(`touch_files`, `touch_indexes`): a blob that nothing references is collected only once its
`touched_at` is older than the grace period *and* than the start of every mirror run under way,
so a run that found bytes present, or wrote them, finds them still there when it publishes,
however long it takes. A collection deletes a blob's row and its bytes in one transaction,
holding the row: a writer that touches it waits, then finds no row and stores the bytes again;
a writer outside a run (an upload) checks, in the transaction that references its bytes, that
they are still stored (`confirm_stored`) (docs/architecture.md, "Blobs and garbage collection").
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from headwater.db import Database, insert_or_ignore, utcnow
from headwater.models import Blob, Channel, JobKind, Mirror, PackageFile, RevisionIndex
from headwater.services.progress import RunProgress
from headwater.services.runs import oldest_running_start
from headwater.storage import BlobInfo, BlobStore, content_key, content_sha256

PACKAGE = "package"
INDEX = "index"
_BATCH = 500  # keys per statement: under SQLite's bound-parameter limit with room to spare
_INDEX_PREFIX = "indexes/"
T = TypeVar("T")


@dataclass(frozen=True)
class Stored:
    """A blob as the table records it."""

    key: str
    size: int
    kind: str
    sha256: str
    channel_id: int | None = None
    written_at: dt.datetime | None = None  # as the store lists it

    @classmethod
    def content(cls, sha256: str, size: int) -> Stored:
        return cls(content_key(sha256), size, PACKAGE, sha256)

    @classmethod
    def artifact(cls, key: str, size: int = 0) -> Stored:
        """An index artifact under `indexes/<channel id>/<subdir>/<sha256>.<kind>`."""
        stored = cls.listed(BlobInfo(key, size, 0))
        assert stored is not None and stored.kind == INDEX, key
        return stored

    @classmethod
    def listed(cls, info: BlobInfo) -> Stored | None:
        """What a listed key is, by its shape; None for a key Headwater never writes."""
        written = dt.datetime.fromtimestamp(info.modified, dt.UTC)
        sha256 = content_sha256(info.key)
        if sha256 is not None:
            return cls(info.key, info.size, PACKAGE, sha256, written_at=written)
        parts = info.key.split("/")
        if len(parts) == 4 and parts[0] == "indexes" and parts[1].isdigit():
            digest = parts[3].split(".", 1)[0]
            if len(digest) == 64:
                return cls(info.key, info.size, INDEX, digest, int(parts[1]), written)
        return None


def record(
    session: Session, blobs: Iterable[Stored], touched_at: dt.datetime | None = None
) -> None:
    """Rows for blobs just written; a row already there is touched."""
    now = touched_at or utcnow()
    rows = {
        stored.key: {
            "key": stored.key,
            "kind": stored.kind,
            "sha256": stored.sha256,
            "channel_id": stored.channel_id,
            "size": stored.size,
            "stored_at": now,
            "touched_at": now,
        }
        for stored in blobs
    }
    for batch in _batches(list(rows)):
        _touch_keys(session, batch, now)
        session.execute(
            insert_or_ignore(session, Blob.__table__),  # type: ignore[arg-type]
            [rows[key] for key in batch],
        )


def record_written(db: Database, store: BlobStore, written: Iterable[Stored]) -> None:
    """Rows for blobs just written whose sizes the writer did not keep (index artifacts): each
    is stat'ed outside any transaction, then recorded in one short one."""
    sized = []
    for stored in written:
        info = store.stat(stored.key)
        if info is not None:
            sized.append(replace(stored, size=info.size))
    if sized:
        with db.writing() as session:
            record(session, sized)


def touch(session: Session, keys: Iterable[str]) -> set[str]:
    """Touch the rows of `keys` (a run is about to use those bytes); returns the keys that have
    a row. One without a row is not known to be stored: check the store, or write it again."""
    now = utcnow()
    found: set[str] = set()
    for batch in _batches(sorted(set(keys))):
        found |= _touch_keys(session, batch, now)
    return found


def _touch_keys(session: Session, keys: list[str], now: dt.datetime) -> set[str]:
    touched = session.execute(
        update(Blob).where(Blob.key.in_(keys)).values(touched_at=now).returning(Blob.key)
    )
    return set(touched.scalars())


def held(db: Database, store: BlobStore, blobs: Iterable[Stored]) -> set[str]:
    """The keys of `blobs` the store holds, each touched (a row recorded for one that had
    none): safe from collection for the grace period. The others must be written again.

    Rows are touched or recorded first, in one short transaction; only then is every blob
    looked for in the store, outside it. A row is no proof of bytes (a collection whose
    deletion failed midway, a run that recorded a row for bytes it then failed to fetch): a
    collection that held a row meanwhile has deleted its bytes before letting the touch
    through, so the look finds them gone."""
    wanted = {stored.key: stored for stored in blobs}
    with db.writing() as session:
        found = touch(session, wanted)
        record(session, [wanted[key] for key in wanted.keys() - found])
    return {key for key in wanted if store.stat(key) is not None}


def ensure_recorded(session: Session, store: BlobStore, blobs: Iterable[Stored]) -> bool:
    """In the transaction that makes these blobs referenced: whether their rows are there (now
    touched), or, for one without a row, whether the store holds it (it is recorded). False
    when a collection took one since it was written: the caller writes it again."""
    wanted = {stored.key: stored for stored in blobs}
    found = touch(session, wanted)
    unrecorded = []
    for key in sorted(wanted.keys() - found):
        info = store.stat(key)
        if info is None:
            return False
        unrecorded.append(replace(wanted[key], size=info.size))
    record(session, unrecorded)
    return True


def confirm_stored(session: Session, store: BlobStore, blobs: Iterable[Stored]) -> bool:
    """In the transaction that makes these just-written blobs referenced: their rows touched (or
    recorded), then each looked for in the store. False when a collection took one between the
    write and this transaction (it held the row meanwhile): the caller writes it again."""
    wanted = list(blobs)
    record(session, wanted)
    return all(store.stat(stored.key) is not None for stored in wanted)


def touch_files(session: Session, dropped: ColumnElement[bool]) -> None:
    """Before the file rows `dropped` selects are deleted: their contents' blobs are touched, so
    that their grace runs from when they stopped being referenced."""
    contents = select(PackageFile.sha256).where(dropped)
    metadata = select(PackageFile.metadata_sha256).where(
        dropped, PackageFile.metadata_sha256.is_not(None)
    )
    session.execute(
        update(Blob)
        .where(Blob.kind == PACKAGE, or_(Blob.sha256.in_(contents), Blob.sha256.in_(metadata)))
        .values(touched_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def touch_indexes(session: Session, channel_id: int, dropped: ColumnElement[bool]) -> None:
    """Before the channel's index rows `dropped` selects are deleted: their artifacts are
    touched, so that their grace runs from when they stopped being referenced."""
    rows = select(RevisionIndex).where(RevisionIndex.channel_id == channel_id, dropped).subquery()
    digests = [
        select(rows.c.repodata_sha256),
        select(rows.c.repodata_zst_sha256),
        select(rows.c.shard_index_sha256),
        select(rows.c.shard_pack_sha256),
    ]
    session.execute(
        update(Blob)
        .where(
            Blob.kind == INDEX,
            Blob.channel_id == channel_id,
            or_(*(Blob.sha256.in_(digest) for digest in digests)),
        )
        .values(touched_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _referenced() -> ColumnElement[bool]:
    package = and_(
        Blob.kind == PACKAGE,
        or_(
            exists().where(PackageFile.sha256 == Blob.sha256),
            exists().where(PackageFile.metadata_sha256 == Blob.sha256),
        ),
    )
    index = and_(
        Blob.kind == INDEX,
        exists().where(
            RevisionIndex.channel_id == Blob.channel_id,
            or_(
                RevisionIndex.repodata_sha256 == Blob.sha256,
                RevisionIndex.repodata_zst_sha256 == Blob.sha256,
                RevisionIndex.shard_index_sha256 == Blob.sha256,
                RevisionIndex.shard_pack_sha256 == Blob.sha256,
            ),
        ),
    )
    return or_(package, index)


@dataclass
class Collected:
    """What one collection did."""

    listed: int = 0
    adopted: int = 0  # blobs found in the store without a row (stored before rows were kept)
    deleted: int = 0
    bytes_deleted: int = 0
    kept_in_grace: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "listed": self.listed,
            "adopted": self.adopted,
            "deleted": self.deleted,
            "bytes_deleted": self.bytes_deleted,
            "kept_in_grace": self.kept_in_grace,
        }


def collect(
    db: Database,
    store: BlobStore,
    grace: dt.timedelta,
    progress: RunProgress,
    stopping: threading.Event | None = None,
) -> Collected:
    """Delete the blobs nothing references whose last touch is older than `grace`.

    First every stored key is listed and any without a row is adopted (with its write time as
    its touch): bytes written by a process that died before recording them, or before rows
    were kept, are judged like the rest. Then the unreferenced rows past the grace period go,
    a batch per transaction.
    """
    collected = Collected()
    cutoff = _cutoff(db, grace)
    progress.step("listing the blob store")
    for prefix in ("blobs/", _INDEX_PREFIX):
        for batch in _batches(_listed(store, prefix)):
            if stopping is not None and stopping.is_set():
                return collected
            collected.listed += len(batch)
            collected.adopted += _adopt(db, batch)
    progress.log(f"listed {collected.listed} blobs, {collected.adopted} of them not recorded")
    progress.step("deleting unreferenced blobs")
    while stopping is None or not stopping.is_set():
        deleted, size = _collect_batch(db, store, cutoff)
        if not deleted:
            break
        collected.deleted += deleted
        collected.bytes_deleted += size
        progress.advance(deleted)
    with db.reading() as session:
        collected.kept_in_grace = int(
            session.scalar(
                select(func.count())
                .select_from(Blob)
                .where(Blob.touched_at >= cutoff, ~_referenced())
            )
            or 0
        )
    progress.log(
        f"deleted {collected.deleted} blobs ({collected.bytes_deleted} bytes); "
        f"{collected.kept_in_grace} unreferenced blobs are still in their grace period"
    )
    return collected


def _cutoff(db: Database, grace: dt.timedelta) -> dt.datetime:
    """Blobs touched before this may go: older than the grace period, and than the start of
    every mirror run under way (whatever such a run touched or wrote, it may still publish)."""
    cutoff = utcnow() - grace
    with db.reading() as session:
        running = oldest_running_start(session, JobKind.mirror)
    return cutoff if running is None else min(cutoff, running)


def _listed(store: BlobStore, prefix: str) -> Iterator[Stored]:
    for info in store.list(prefix):
        stored = Stored.listed(info)
        if stored is not None:
            yield stored


def _adopt(db: Database, listed: list[Stored]) -> int:
    """Rows for listed blobs that have none, touched when they were written: a blob a process
    wrote and died before recording is collected once its write is older than the cutoff. A
    writer still between writing and recording is safe all the same: a mirror run's writes are
    younger than its start (the cutoff's bound), and an upload looks for its bytes as it lands
    (`confirm_stored`), writing them again if they went."""
    by_key = {stored.key: stored for stored in listed}
    with db.reading() as session:
        known = set(session.scalars(select(Blob.key).where(Blob.key.in_(list(by_key)))))
    unknown = [stored for key, stored in by_key.items() if key not in known]
    if not unknown:
        return 0
    now = utcnow()
    with db.writing() as session:
        owners = {stored.channel_id for stored in unknown if stored.channel_id is not None}
        # Held until this transaction ends (PostgreSQL): no channel goes between the look and
        # the insert that names it.
        channels = set(
            session.scalars(
                select(Channel.id).where(Channel.id.in_(owners)).with_for_update(read=True)
            )
        )
        rows = [
            {
                "key": stored.key,
                "kind": stored.kind,
                "sha256": stored.sha256,
                # the artifact of a deleted channel is nobody's
                "channel_id": stored.channel_id if stored.channel_id in channels else None,
                "size": stored.size,
                "stored_at": stored.written_at or now,
                "touched_at": stored.written_at or now,
            }
            for stored in unknown
        ]
        session.execute(insert_or_ignore(session, Blob.__table__), rows)  # type: ignore[arg-type]
    return len(unknown)


def _collect_batch(db: Database, store: BlobStore, cutoff: dt.datetime) -> tuple[int, int]:
    """One transaction: take a batch of collectable rows (locked on PostgreSQL), delete their
    bytes, then their rows. A failure to delete bytes keeps the rows, to be tried again."""
    with db.writing() as session:
        doomed = session.execute(
            select(Blob.key, Blob.size)
            .where(Blob.touched_at < cutoff, ~_referenced())
            .limit(_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        if not doomed:
            return 0, 0
        keys = [key for key, _ in doomed]
        store.delete(keys)
        session.execute(delete(Blob).where(Blob.key.in_(keys)))
        return len(doomed), sum(size for _, size in doomed)


def _batches(items: Iterable[T]) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class Usage:
    """Bytes a channel or mirror holds in the store."""

    name: str
    files: int
    package_bytes: int
    index_bytes: int = 0


def _package_usage(session: Session, owner: Any) -> dict[int, tuple[int, int]]:
    """owner (a channel's or mirror's id) → the distinct package blobs its files name, and
    their bytes."""
    contents = (
        select(owner.label("owner"), PackageFile.sha256)
        .where(owner.is_not(None))
        .distinct()
        .subquery()
    )
    return {
        owner_id: (int(files), int(size))
        for owner_id, files, size in session.execute(
            select(contents.c.owner, func.count(Blob.key), func.coalesce(func.sum(Blob.size), 0))
            .join(Blob, and_(Blob.sha256 == contents.c.sha256, Blob.kind == PACKAGE))
            .group_by(contents.c.owner)
        )
    }


def channel_usage(session: Session) -> list[Usage]:
    """Per channel: the distinct package blobs its files (of every retained revision) name, and
    its index artifacts. A blob shared by channels counts in each."""
    packages = _package_usage(session, PackageFile.channel_id)
    indexes = dict(
        session.execute(
            select(Blob.channel_id, func.coalesce(func.sum(Blob.size), 0))
            .where(Blob.kind == INDEX, Blob.channel_id.is_not(None))
            .group_by(Blob.channel_id)
        ).all()
    )
    channels = select(Channel.id, Channel.name).order_by(Channel.name)
    return [
        Usage(name, *packages.get(channel_id, (0, 0)), int(indexes.get(channel_id, 0)))
        for channel_id, name in session.execute(channels)
    ]


def mirror_usage(session: Session) -> list[Usage]:
    """Per mirror: the distinct package blobs its files in any retained revision name."""
    packages = _package_usage(session, PackageFile.mirror_id)
    mirrors = (
        select(Mirror.id, Channel.name, Mirror.mirror_name)
        .join(Channel, Channel.id == Mirror.channel_id)
        .order_by(Channel.name, Mirror.mirror_name)
    )
    return [
        Usage(f"{channel}/{name}", *packages.get(mirror_id, (0, 0)))
        for mirror_id, channel, name in session.execute(mirrors)
    ]


@dataclass(frozen=True)
class Totals:
    blobs: int
    bytes: int
    unreferenced: int
    unreferenced_bytes: int


def totals(session: Session) -> Totals:
    count, size = session.execute(
        select(func.count(Blob.key), func.coalesce(func.sum(Blob.size), 0))
    ).one()
    loose, loose_size = session.execute(
        select(func.count(Blob.key), func.coalesce(func.sum(Blob.size), 0)).where(~_referenced())
    ).one()
    return Totals(int(count), int(size), int(loose), int(loose_size))
