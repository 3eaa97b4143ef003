"""Pruning revisions past retention: the last N of each channel (REVISIONS_KEPT, or the
channel's own `revisions_kept`) and every revision kept under a name stay pinnable; the others
go, with their index rows and the file rows no remaining revision holds.

The bytes of the files and indexes pruned stay in the blob store until garbage collection
finds nothing references them (services/blobs.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.orm import Session

from headwater.db import Database
from headwater.models import Channel, ChannelRevision, PackageFile, RevisionIndex
from headwater.services import blobs
from headwater.services.indexes import drop_indexes, lock_channel
from headwater.services.progress import RunProgress
from headwater.services.revisions import sweep_staged
from headwater.storage import BlobStore


@dataclass(frozen=True)
class Pruned:
    revisions: int
    files: int
    indexes: int


def prune_all(
    db: Database,
    store: BlobStore,
    kept: int,
    progress: RunProgress,
    stopping: threading.Event | None = None,
) -> Pruned:
    """Prune every channel in turn, one short transaction each."""
    with db.reading() as session:
        channels = list(session.execute(select(Channel.id, Channel.name).order_by(Channel.id)))
    progress.step("pruning revisions", total=len(channels))
    revisions = files = indexes = 0
    for channel_id, name in channels:
        if stopping is not None and stopping.is_set():
            break
        pruned = prune_channel(db, store, channel_id, kept)
        if pruned.revisions:
            progress.log(
                f"{name}: pruned {pruned.revisions} revisions ({pruned.files} file rows, "
                f"{pruned.indexes} rendered indexes)"
            )
        revisions += pruned.revisions
        files += pruned.files
        indexes += pruned.indexes
        progress.advance()
    progress.log(f"pruned {revisions} revisions of {len(channels)} channels")
    return Pruned(revisions, files, indexes)


def prune_channel(db: Database, store: BlobStore, channel_id: int, kept: int) -> Pruned:
    with db.writing() as session:
        lock_channel(session, channel_id)
        channel = session.get(Channel, channel_id)
        if channel is None:
            return Pruned(0, 0, 0)
        retained = _retained(session, channel, channel.revisions_kept or kept)
        doomed = list(
            session.scalars(
                select(ChannelRevision.number).where(
                    ChannelRevision.channel_id == channel_id,
                    ChannelRevision.number.not_in(retained),
                )
            )
        )
        sweep_staged(session, channel_id)
        if not doomed:
            return Pruned(0, 0, 0)
        session.execute(
            delete(ChannelRevision).where(
                ChannelRevision.channel_id == channel_id, ChannelRevision.number.in_(doomed)
            )
        )
        indexes = drop_indexes(
            session,
            channel_id,
            and_(RevisionIndex.number.in_(doomed), RevisionIndex.number < channel.head - 1),
        )
        files = _drop_unheld_files(session, channel_id)
        return Pruned(len(doomed), files, indexes)


def _retained(session: Session, channel: Channel, kept: int) -> list[int]:
    newest = channel.head - kept + 1
    return list(
        session.scalars(
            select(ChannelRevision.number).where(
                ChannelRevision.channel_id == channel.id,
                (ChannelRevision.number >= newest) | ChannelRevision.keep.is_not(None),
            )
        )
    )


def _drop_unheld_files(session: Session, channel_id: int) -> int:
    """File rows whose interval of revisions holds no revision that is left."""
    held = exists().where(
        ChannelRevision.channel_id == PackageFile.channel_id,
        ChannelRevision.number >= PackageFile.added_in,
        ChannelRevision.number < PackageFile.removed_in,
    )
    unheld = and_(PackageFile.channel_id == channel_id, PackageFile.removed_in.is_not(None), ~held)
    blobs.touch_files(session, unheld)  # their grace starts now
    dropped = session.execute(delete(PackageFile).where(unheld))
    return int(dropped.rowcount or 0)  # type: ignore[attr-defined]
