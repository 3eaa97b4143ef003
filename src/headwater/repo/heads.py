"""What the fast path knows of each channel without asking the database: its id, privacy and
head revision, and the head's (and its parent's) conda index of each subdir.

A channel is read in a worker thread the first time a request names it. Past `ttl` seconds
its view is stale: still used, while one background read brings it up to date; past `limit`
seconds it is not used until read again. So a publish, a deletion or a change of privacy made
by another process shows within about `ttl` seconds, as for the simple pages
(page_cache.PublicChannels); one made by this process (its embedded worker, an upload, the
API) shows at once (repo/changes.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import URL
from starlette.concurrency import run_in_threadpool

from headwater.db import Database
from headwater.models import Blob, Channel, Privacy, RevisionIndex
from headwater.page_cache import Recent
from headwater.repo.changes import Changes, listen
from headwater.repo.loads import Loads
from headwater.services.channels import CHANNEL_NAME, MAX_NAME_LENGTH, RESERVED_NAMES
from headwater.services.indexes import repodata_gz_key

log = logging.getLogger(__name__)
_MISSING_KEPT = 4096  # names found to be no channel, remembered for `ttl`


@dataclass(frozen=True)
class SubdirIndex:
    """A subdir's index row as the head has it, and the size of its gzipped repodata.json
    (None: an index published before those were made; it is served in the other codings)."""

    row: RevisionIndex
    gz_size: int | None


@dataclass(frozen=True)
class ChannelView:
    id: int
    name: str
    privacy: Privacy
    head: int
    indexes: dict[str, SubdirIndex] = field(default_factory=dict)  # the head's, by subdir
    parents: dict[str, RevisionIndex] = field(default_factory=dict)  # the parent's (shards)
    read_at: float = 0.0

    @property
    def public(self) -> bool:
        return self.privacy == Privacy.public

    def shard_indexes(self, subdir: str) -> list[RevisionIndex]:
        """Where a shard of the subdir may be: the head's index, then its parent's, whose
        shards a client holding the previous shard index still asks for."""
        found = self.indexes.get(subdir)
        parent = self.parents.get(subdir)
        rows = [found.row] if found is not None else []
        return [*rows, parent] if parent is not None else rows


def valid_channel_name(name: str) -> bool:
    return (
        len(name) <= MAX_NAME_LENGTH
        and CHANNEL_NAME.fullmatch(name) is not None
        and name not in RESERVED_NAMES
    )


def read_view(db: Database, name: str) -> ChannelView | None:
    """The channel as it is now (None: there is none). Blocks: run it in a thread."""
    started = time.monotonic()  # a change committed from now on makes this view outdated
    with db.reading() as session:
        found = session.execute(
            select(Channel.id, Channel.privacy, Channel.head).where(Channel.name == name)
        ).first()
        if found is None:
            return None
        channel_id, privacy, head = found
        rows = list(
            session.scalars(
                select(RevisionIndex).where(
                    RevisionIndex.channel_id == channel_id,
                    RevisionIndex.number.in_([head, head - 1]),
                )
            )
        )
        # The gzip artifacts' sizes, from their rows in `blobs` (recorded before the index
        # landed): no request to the store, which may be away.
        gz_keys = [
            repodata_gz_key(channel_id, row.subdir, row.repodata_sha256)
            for row in rows
            if row.number == head
        ]
        gz_sizes = dict(
            session.execute(select(Blob.key, Blob.size).where(Blob.key.in_(gz_keys))).all()
        )
    indexes, parents = {}, {}
    for row in rows:
        if row.number != head:
            parents[row.subdir] = row
            continue
        key = repodata_gz_key(channel_id, row.subdir, row.repodata_sha256)
        indexes[row.subdir] = SubdirIndex(row, gz_sizes.get(key))
    return ChannelView(channel_id, name, Privacy(privacy), head, indexes, parents, started)


class ChannelViews:
    """The views of the channels requests named, kept per app; used from the event loop."""

    def __init__(
        self,
        database: URL,
        read: Callable[[str, ChannelView | None], ChannelView | None],
        ttl: float = 1.0,
        limit: float = 10.0,
    ) -> None:
        self.database = database
        self.read = read
        self.ttl = ttl
        self.limit = limit
        self._views: dict[str, ChannelView] = {}  # as many as there are channels
        self._missing: Recent[str, float] = Recent(_MISSING_KEPT)
        self._loads = Loads()
        # When this process last committed a change to a channel, by id and by name, and to
        # channels it cannot tell.
        self._changed_ids: dict[int, float] = {}
        self._changed_names: dict[str, float] = {}
        self._changed_any = 0.0
        listen(self)

    async def current(self, name: str) -> ChannelView | None:
        """The channel's view, read first if need be; None for a name that is no channel."""
        view = self._views.get(name)
        now = time.monotonic()
        if view is not None and not self._outdated(view.id, name, view.read_at):
            age = now - view.read_at
            if age <= self.ttl:
                return view
            if age <= self.limit:
                self._loads.start(name, lambda: self._read(name))
                return view
        if not valid_channel_name(name):
            return None
        missing = self._missing.get(name)
        if (
            missing is not None
            and now - missing <= self.ttl
            and not self._outdated(-1, name, missing)
        ):
            return None
        return await self._loads.run(name, lambda: self._read(name))

    def _outdated(self, channel_id: int, name: str, read_at: float) -> bool:
        changed = max(
            self._changed_ids.get(channel_id, 0.0),
            self._changed_names.get(name, 0.0),
            self._changed_any,
        )
        return changed >= read_at

    def changed(self, database: URL, changes: Changes) -> None:
        """In the committing thread (repo/changes.py): single dict updates, atomic."""
        if database != self.database:
            return
        now = time.monotonic()
        if changes.every_channel:
            self._changed_any = now
        for channel_id in changes.channel_ids:
            self._changed_ids[channel_id] = now
        for name in changes.channel_names:
            self._changed_names[name] = now
        if len(self._changed_ids) + len(self._changed_names) > _MISSING_KEPT:
            old = now - self.limit  # a view older than that is read again anyway
            self._changed_ids = {k: v for k, v in self._changed_ids.items() if v > old}
            self._changed_names = {k: v for k, v in self._changed_names.items() if v > old}

    async def _read(self, name: str) -> ChannelView | None:
        try:
            view = await run_in_threadpool(self.read, name, self._views.get(name))
        except Exception:
            log.exception("could not read channel %r for the fast path", name)
            raise
        if view is None:
            self._views.pop(name, None)
            self._missing.put(name, time.monotonic())
        else:
            self._views[name] = view
        return view
