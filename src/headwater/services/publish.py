"""Publishing a channel's conda index: render from its files, store, and swap in atomically."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.db import utcnow
from headwater.formats.conda.index import BuiltIndex, SubdirIndexBuilder
from headwater.formats.conda.shards import read_shard_index
from headwater.models import Channel, ChannelIndex, PackageFile, PackageType
from headwater.services.channels import index_prefix
from headwater.storage import BlobStore

log = logging.getLogger(__name__)

_YIELD_PER = 5000


@dataclass
class Publication:
    """What a publish did, and the artifacts that become garbage once it is committed."""

    indexes: list[ChannelIndex] = field(default_factory=list)
    obsolete_keys: list[str] = field(default_factory=list)

    def collect_garbage(self, store: BlobStore) -> None:
        """Delete superseded artifacts; call only after the publishing transaction committed."""
        for key in self.obsolete_keys:
            store.delete(key)


def lock_channel(session: Session, channel_id: int) -> None:
    """Serialise publishers of one channel (on SQLite the write transaction already does)."""
    session.execute(select(Channel.id).where(Channel.id == channel_id).with_for_update())


def repodata_key(channel_id: int, subdir: str, sha256: str) -> str:
    return f"{index_prefix(channel_id)}{subdir}/repodata/{sha256}.json"


def repodata_zst_key(channel_id: int, subdir: str, sha256: str) -> str:
    return f"{index_prefix(channel_id)}{subdir}/repodata/{sha256}.json.zst"


def shard_index_key(channel_id: int, subdir: str, sha256: str) -> str:
    return f"{index_prefix(channel_id)}{subdir}/shard-index/{sha256}.msgpack.zst"


def shard_key(channel_id: int, subdir: str, sha256: str) -> str:
    return f"{index_prefix(channel_id)}{subdir}/shards/{sha256}.msgpack.zst"


def publish_subdirs(
    session: Session, store: BlobStore, channel_id: int, subdirs: Iterable[str]
) -> Publication:
    """Re-render each subdir's index from the channel's files as this transaction sees them.

    The caller holds the channel lock and commits; clients switch to the new index at commit.
    """
    publication = Publication()
    for subdir in sorted(set(subdirs)):
        built = build_subdir_index(session, store, channel_id, subdir)
        index, obsolete = _swap_index(session, store, channel_id, built)
        publication.indexes.append(index)
        publication.obsolete_keys.extend(obsolete)
    return publication


def build_subdir_index(
    session: Session, store: BlobStore, channel_id: int, subdir: str
) -> BuiltIndex:
    rows = session.execute(
        select(PackageFile.name, PackageFile.filename, PackageFile.record)
        .where(
            PackageFile.channel_id == channel_id,
            PackageFile.subdir == subdir,
            PackageFile.package_type == PackageType.conda,
        )
        .order_by(PackageFile.name, PackageFile.filename)
        .execution_options(yield_per=_YIELD_PER)
    )
    builder = SubdirIndexBuilder(subdir)
    for name, group in itertools.groupby(rows, key=itemgetter(0)):
        shard = builder.add_package(name, [(row[1], row[2]) for row in group])
        key = shard_key(channel_id, subdir, shard.sha256)
        if not store.exists(key):
            store.put(key, shard.content)
    built = builder.finish()
    _put_artifacts(store, channel_id, built)
    return built


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put_artifacts(store: BlobStore, channel_id: int, built: BuiltIndex) -> None:
    subdir = built.subdir
    for key, data in (
        (repodata_key(channel_id, subdir, _digest(built.repodata)), built.repodata),
        (repodata_zst_key(channel_id, subdir, _digest(built.repodata_zst)), built.repodata_zst),
        (shard_index_key(channel_id, subdir, _digest(built.shard_index)), built.shard_index),
    ):
        if not store.exists(key):
            store.put(key, data)


def _swap_index(
    session: Session, store: BlobStore, channel_id: int, built: BuiltIndex
) -> tuple[ChannelIndex, list[str]]:
    subdir = built.subdir
    repodata_sha = _digest(built.repodata)
    zst_sha = _digest(built.repodata_zst)
    shard_index_sha = _digest(built.shard_index)
    index = session.get(ChannelIndex, (channel_id, subdir))
    obsolete: list[str] = []
    if index is None:
        index = ChannelIndex(channel_id=channel_id, subdir=subdir, previous_shard_index_sha256=None)
        session.add(index)
    elif index.repodata_sha256 == repodata_sha:
        return index, obsolete  # nothing changed: keep the ETag and Last-Modified clients hold
    else:
        obsolete = _superseded_keys(store, index, repodata_sha, zst_sha, shard_index_sha, built)
        index.previous_shard_index_sha256 = index.shard_index_sha256
    index.repodata_sha256 = repodata_sha
    index.repodata_size = len(built.repodata)
    index.repodata_zst_sha256 = zst_sha
    index.repodata_zst_size = len(built.repodata_zst)
    index.shard_index_sha256 = shard_index_sha
    index.shard_index_size = len(built.shard_index)
    index.record_count = built.record_count
    index.published_at = utcnow()
    session.flush()
    return index, obsolete


def _superseded_keys(
    store: BlobStore,
    old: ChannelIndex,
    repodata_sha: str,
    zst_sha: str,
    shard_index_sha: str,
    built: BuiltIndex,
) -> list[str]:
    """Artifacts the swap makes unreachable.

    Shards of the index being replaced stay for one more publish, so that a client holding
    that shard index can still fetch its shards; the generation before it goes.
    """
    channel_id, subdir = old.channel_id, old.subdir
    keys = []
    if old.repodata_sha256 != repodata_sha:
        keys.append(repodata_key(channel_id, subdir, old.repodata_sha256))
    if old.repodata_zst_sha256 != zst_sha:
        keys.append(repodata_zst_key(channel_id, subdir, old.repodata_zst_sha256))
    retired = old.previous_shard_index_sha256
    if retired and retired not in (old.shard_index_sha256, shard_index_sha):
        keys.append(shard_index_key(channel_id, subdir, retired))
        keep = set(built.shards.values()) | set(_shards_of(store, channel_id, subdir, old.shard_index_sha256))
        for digest in _shards_of(store, channel_id, subdir, retired):
            if digest not in keep:
                keys.append(shard_key(channel_id, subdir, digest))
    return keys


def _shards_of(store: BlobStore, channel_id: int, subdir: str, shard_index_sha: str) -> list[str]:
    key = shard_index_key(channel_id, subdir, shard_index_sha)
    if not store.exists(key):
        return []
    return list(read_shard_index(store.read(key)).values())
