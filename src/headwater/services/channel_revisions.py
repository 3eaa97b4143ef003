"""A channel's revisions as people and clients see them: listing, one revision's difference
from its parent, pinning by number or kept name, keeping, rolling back."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from headwater.cves.names import CondaNames
from headwater.db import Database, insert_or_ignore
from headwater.errors import (
    ChannelBusyError,
    ConflictError,
    InvalidInputError,
    RevisionNotFoundError,
)
from headwater.models import ChannelRevision, PackageFile, RevisionCause, RevisionIndex
from headwater.services import blobs
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import ChannelRef
from headwater.services.blobs import ensure_recorded
from headwater.services.indexes import (
    artifact_blobs,
    drop_indexes,
    lock_channel,
    render_subdir,
)
from headwater.services.revisions import Change, Plan, apply_change, file_row
from headwater.sorting import Sort
from headwater.storage import BlobStore

KEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NUMBER = re.compile(
    r"[0-9]{1,10}"
)  # ASCII digits only: str.isdigit takes superscripts and fullwidth digits
MAX_NUMBER = 2**31 - 1  # the column's range
DIFFERENCE_LIMIT = 1000  # files listed per side of a revision's difference


def resolve(session: Session, channel: ChannelRef, text: str) -> int:
    """The revision `text` names (a number, or a name it was kept under), if it is still kept."""
    condition: ColumnElement[bool] = ChannelRevision.keep == text
    if NUMBER.fullmatch(text):
        wanted = int(text)
        condition = ChannelRevision.number == wanted if wanted <= MAX_NUMBER else false()
    number = session.scalar(
        select(ChannelRevision.number).where(ChannelRevision.channel_id == channel.id, condition)
    )
    if number is None:
        raise RevisionNotFoundError(
            f"channel {channel.name!r} has no revision {text!r}; {available(session, channel)}"
        )
    return number


def available(session: Session, channel: ChannelRef) -> str:
    """The revisions a client may still pin, in words."""
    low, high = session.execute(
        select(func.min(ChannelRevision.number), func.max(ChannelRevision.number)).where(
            ChannelRevision.channel_id == channel.id
        )
    ).one()
    if low is None:
        return "it has no revision yet"
    count = (
        session.scalar(select(func.count()).where(ChannelRevision.channel_id == channel.id)) or 0
    )
    numbers = f"{low} to {high}" if count == high - low + 1 else _listed(session, channel)
    kept = [
        f"{name} ({number})"
        for number, name in session.execute(
            select(ChannelRevision.number, ChannelRevision.keep)
            .where(ChannelRevision.channel_id == channel.id, ChannelRevision.keep.is_not(None))
            .order_by(ChannelRevision.number)
        )
    ]
    return f"revisions available: {numbers}" + (f"; kept: {', '.join(kept)}" if kept else "")


def _listed(session: Session, channel: ChannelRef) -> str:
    numbers = list(
        session.scalars(
            select(ChannelRevision.number)
            .where(ChannelRevision.channel_id == channel.id)
            .order_by(ChannelRevision.number)
        )
    )
    return ", ".join(str(number) for number in numbers[:50]) + (" ..." if len(numbers) > 50 else "")


# What the Revisions tab sorts by, in its words; the number breaks ties.
REVISION_SORTS: dict[str, SQLColumnExpression[Any]] = {
    "number": ChannelRevision.number,
    "cause": ChannelRevision.cause,
    "actor": ChannelRevision.actor,
    "files": ChannelRevision.file_count,
    "added": ChannelRevision.added,
    "removed": ChannelRevision.removed,
    "kept": ChannelRevision.keep,
}


def list_revisions(
    session: Session,
    channel: ChannelRef,
    *,
    offset: int,
    limit: int,
    sort: Sort = Sort("number", descending=True),
) -> tuple[list[ChannelRevision], int]:
    """The channel's revisions, newest first unless told."""
    condition = ChannelRevision.channel_id == channel.id
    total = session.scalar(select(func.count()).where(condition)) or 0
    tie = ChannelRevision.number.desc() if sort.descending else ChannelRevision.number.asc()
    revisions = list(
        session.scalars(
            select(ChannelRevision)
            .where(condition)
            .order_by(*sort.order_by({sort.key: REVISION_SORTS[sort.key]}), tie)
            .offset(offset)
            .limit(limit)
        )
    )
    return revisions, total


@dataclass(frozen=True)
class Difference:
    revision: ChannelRevision
    added: list[PackageFile]
    removed: list[PackageFile]


def get_revision(session: Session, channel: ChannelRef, number: int) -> Difference:
    revision = session.get(ChannelRevision, (channel.id, number))
    if revision is None:
        raise RevisionNotFoundError(
            f"channel {channel.name!r} has no revision {number}; {available(session, channel)}"
        )

    def files(*condition: Any) -> list[PackageFile]:
        return list(
            session.scalars(
                select(PackageFile)
                .where(PackageFile.channel_id == channel.id, *condition)
                .order_by(PackageFile.subdir, PackageFile.filename)
                .limit(DIFFERENCE_LIMIT)
            )
        )

    return Difference(
        revision,
        added=files(PackageFile.added_in == number),
        removed=files(PackageFile.removed_in == number),
    )


def keep_revision(
    session: Session, channel: ChannelRef, number: int, name: str | None, *, actor: Actor
) -> ChannelRevision:
    """Keep a revision under `name` past retention (None: let retention take it again).
    Under the channel's lock, as pruning is: a revision kept is never pruned meanwhile."""
    lock_channel(session, channel.id)
    revision = get_revision(session, channel, number).revision
    if name is not None:
        if not isinstance(name, str) or not KEEP_NAME.fullmatch(name) or NUMBER.fullmatch(name):
            raise InvalidInputError(
                f"keep {name!r} is not a valid name: up to 64 letters, digits, '.', '-' and '_', "
                "starting with a letter or digit, and not a number"
            )
        holder = session.scalar(
            select(ChannelRevision.number).where(
                ChannelRevision.channel_id == channel.id,
                ChannelRevision.keep == name,
                ChannelRevision.number != number,
            )
        )
        if holder is not None:
            raise ConflictError(
                f"revision {holder} of channel {channel.name!r} is kept as {name!r}"
            )
    revision.keep = name
    try:
        session.flush()
    except IntegrityError as error:  # another request took the name meanwhile
        raise ConflictError(f"the name {name!r} is taken in channel {channel.name!r}") from error
    record(session, actor, "revision.keep", channel.name, revision=number, keep=name)
    return revision


class Rollback(Change):
    """Make the head hold what revision `target` held: a new revision, recorded as a rollback.
    Files the target held and the head does not are added again as new rows of the same
    content (a row's interval is never reopened)."""

    cause = RevisionCause.rollback

    def __init__(self, channel: ChannelRef, target: int, actor: Actor) -> None:
        self.channel = channel
        self.rolled_back_to = target
        self.actor_ = actor
        self.actor = actor.username

    def plan(self, session: Session, channel_id: int, head: int) -> Plan:
        target = self.rolled_back_to
        assert target is not None
        plan = Plan()
        then = PackageFile.in_revision(target)
        now = PackageFile.in_head()
        in_channel = PackageFile.channel_id == channel_id
        for file_id, package_type, subdir, name in session.execute(
            select(
                PackageFile.id, PackageFile.package_type, PackageFile.subdir, PackageFile.name
            ).where(in_channel, now, ~then)
        ):
            plan.remove(file_id, package_type, subdir, name)
        for file in session.scalars(select(PackageFile).where(in_channel, then, ~now)):
            plan.add(file_row(file))
        return plan

    def land(self, session: Session, revision: ChannelRevision | None) -> None:
        # Landing holds the channel's lock, as pruning does: the target was not pruned while
        # the plan was made, or the plan read what was left of it.
        if session.get(ChannelRevision, (self.channel.id, self.rolled_back_to)) is None:
            raise RevisionNotFoundError(
                f"revision {self.rolled_back_to} of channel {self.channel.name!r} was pruned "
                "meanwhile; nothing was rolled back"
            )
        record(
            session,
            self.actor_,
            "revision.rollback",
            self.channel.name,
            to=self.rolled_back_to,
            revision=revision.number if revision else None,
        )


def rollback(
    db: Database,
    store: BlobStore,
    channel: ChannelRef,
    target: int,
    *,
    actor: Actor,
    cve_names: CondaNames | None = None,
) -> ChannelRevision:
    """A new head revision whose contents equal revision `target`'s."""
    with db.reading() as session:
        get_revision(session, channel, target)
    landed = apply_change(
        db, store, channel.id, Rollback(channel, target, actor), cve_names=cve_names
    )
    if landed is None:
        raise ConflictError(
            f"channel {channel.name!r} already holds what revision {target} held; "
            "nothing to roll back"
        )
    return landed


# Rendering an old revision again costs seconds for a conda-forge-sized subdir, and anyone who
# may read the channel may ask: one render at a time per process, each (channel, revision,
# subdir) rendered once while others wait for it, and at most this many kept per channel.
ON_DEMAND_KEPT = 8
_rendering = threading.Lock()


def pinned_index(
    db: Database, store: BlobStore, channel: ChannelRef, number: int, subdir: str
) -> RevisionIndex | None:
    """Revision `number`'s index of `subdir`, rendered again from its files if no longer
    materialized (None: the revision held no file there)."""
    found = _stored_index(db, channel.id, number, subdir)
    if found is not None:
        return found
    with _rendering:
        found = _stored_index(db, channel.id, number, subdir)  # rendered while we waited
        if found is not None:
            return found
        return _render_again(db, store, channel, number, subdir)


def _stored_index(db: Database, channel_id: int, number: int, subdir: str) -> RevisionIndex | None:
    with db.reading() as session:
        return session.get(RevisionIndex, (channel_id, number, subdir))


def _render_again(
    db: Database, store: BlobStore, channel: ChannelRef, number: int, subdir: str
) -> RevisionIndex | None:
    with db.reading() as session:
        held = session.scalar(
            select(PackageFile.id)
            .where(
                PackageFile.channel_id == channel.id,
                PackageFile.in_revision(number),
                PackageFile.subdir == subdir,
            )
            .limit(1)
        )
        if held is None:
            return None
        index = render_subdir(session, store, channel.id, subdir, PackageFile.in_revision(number))
    blobs.record_written(db, store, artifact_blobs(index))
    index.number = number
    index.on_demand = True
    with db.writing() as session:
        lock_channel(session, channel.id)
        if session.get(ChannelRevision, (channel.id, number)) is None:
            # pruned while it was rendered: what was rendered is garbage collection's
            raise RevisionNotFoundError(
                f"channel {channel.name!r} has no revision {number}; {available(session, channel)}"
            )
        if not ensure_recorded(session, store, artifact_blobs(index)):  # collected meanwhile
            raise ChannelBusyError(
                f"revision {number} of channel {channel.name!r} is being rendered; try again"
            )
        values = {column: getattr(index, column) for column in _INDEX_COLUMNS}
        session.execute(insert_or_ignore(session, RevisionIndex.__table__), [values])  # type: ignore[arg-type]
        _drop_oldest_renders(session, channel.id)
    return index


def _drop_oldest_renders(session: Session, channel_id: int) -> None:
    renders = list(
        session.execute(
            select(RevisionIndex.number, RevisionIndex.subdir)
            .where(RevisionIndex.channel_id == channel_id, RevisionIndex.on_demand.is_(True))
            .order_by(RevisionIndex.published_at.desc())
            .offset(ON_DEMAND_KEPT)
        )
    )
    for number, subdir in renders:
        drop_indexes(
            session, channel_id, (RevisionIndex.number == number) & (RevisionIndex.subdir == subdir)
        )


_INDEX_COLUMNS = [column.key for column in RevisionIndex.__table__.columns]
