"""Publishing a channel's conda index: render from its files, store, and swap in atomically."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.db import utcnow
from headwater.formats.conda.index import BuiltIndex, SubdirIndexBuilder
from headwater.formats.conda.shards import read_pack_directory
from headwater.models import Channel, ChannelIndex, PackageFile, PackageType
from headwater.services.channels import index_prefix
from headwater.storage import BlobStore

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


def _artifact_key(channel_id: int, subdir: str, sha256: str, suffix: str) -> str:
    return f"{index_prefix(channel_id)}{subdir}/{sha256}{suffix}"


def repodata_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".json")


def repodata_zst_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".json.zst")


def shard_index_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".shards.msgpack.zst")


def shard_pack_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".pack")


def pack_directory_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".pack.directory")


def publish_subdirs(
    session: Session, store: BlobStore, channel_id: int, subdirs: Iterable[str]
) -> Publication:
    """Re-render each subdir's index from the channel's files as this transaction sees them.

    The caller holds the channel lock and commits; clients switch to the new index at commit.
    """
    publication = Publication()
    for subdir in sorted(set(subdirs)):
        built = build_subdir_index(session, channel_id, subdir)
        index, obsolete = _swap_index(session, store, channel_id, built)
        publication.indexes.append(index)
        publication.obsolete_keys.extend(obsolete)
    return publication


def build_subdir_index(session: Session, channel_id: int, subdir: str) -> BuiltIndex:
    rows = session.connection().execute(
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
        builder.add_package(name, [(row[1], row[2]) for row in group])
    return builder.finish()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _swap_index(
    session: Session, store: BlobStore, channel_id: int, built: BuiltIndex
) -> tuple[ChannelIndex, list[str]]:
    subdir = built.subdir
    repodata_sha = _digest(built.repodata)
    index = session.get(ChannelIndex, (channel_id, subdir))
    if index is not None and index.repodata_sha256 == repodata_sha:
        return index, []  # nothing changed: keep the ETag and Last-Modified clients hold
    shas = {
        "repodata": repodata_sha,
        "zst": _digest(built.repodata_zst),
        "shard_index": _digest(built.shard_index),
        "pack": _digest(built.shard_pack),
    }
    for key, data in (
        (repodata_key(channel_id, subdir, shas["repodata"]), built.repodata),
        (repodata_zst_key(channel_id, subdir, shas["zst"]), built.repodata_zst),
        (shard_index_key(channel_id, subdir, shas["shard_index"]), built.shard_index),
        (shard_pack_key(channel_id, subdir, shas["pack"]), built.shard_pack),
        (pack_directory_key(channel_id, subdir, shas["pack"]), built.pack_directory),
    ):
        if not store.exists(key):
            store.put(key, data)
    obsolete: list[str] = []
    if index is None:
        index = ChannelIndex(channel_id=channel_id, subdir=subdir, previous_shard_pack_sha256=None)
        session.add(index)
    else:
        obsolete = _superseded_keys(index, shas)
        index.previous_shard_pack_sha256 = index.shard_pack_sha256
    index.repodata_sha256 = shas["repodata"]
    index.repodata_size = len(built.repodata)
    index.repodata_zst_sha256 = shas["zst"]
    index.repodata_zst_size = len(built.repodata_zst)
    index.shard_index_sha256 = shas["shard_index"]
    index.shard_index_size = len(built.shard_index)
    index.shard_pack_sha256 = shas["pack"]
    index.record_count = built.record_count
    index.published_at = utcnow()
    session.flush()
    return index, obsolete


def _superseded_keys(old: ChannelIndex, new: dict[str, str]) -> list[str]:
    """Artifacts the swap makes unreachable: the old index's, except its shard pack, which
    stays one more publish for clients holding the old shard index; the pack before it goes."""
    channel_id, subdir = old.channel_id, old.subdir
    keys = []
    if old.repodata_sha256 != new["repodata"]:
        keys.append(repodata_key(channel_id, subdir, old.repodata_sha256))
    if old.repodata_zst_sha256 != new["zst"]:
        keys.append(repodata_zst_key(channel_id, subdir, old.repodata_zst_sha256))
    if old.shard_index_sha256 != new["shard_index"]:
        keys.append(shard_index_key(channel_id, subdir, old.shard_index_sha256))
    retired = old.previous_shard_pack_sha256
    if retired and retired not in (old.shard_pack_sha256, new["pack"]):
        keys.append(shard_pack_key(channel_id, subdir, retired))
        keys.append(pack_directory_key(channel_id, subdir, retired))
    return keys


def find_shard(store: BlobStore, index: ChannelIndex, sha256: str) -> bytes | None:
    """A shard of the subdir's current or previous index, read from its pack."""
    for pack in (index.shard_pack_sha256, index.previous_shard_pack_sha256):
        if pack is None:
            continue
        place = _pack_directory(store, index.channel_id, index.subdir, pack).get(sha256)
        if place is not None:
            return store.read_range(shard_pack_key(index.channel_id, index.subdir, pack), *place)
    return None


@lru_cache(maxsize=64)
def _cached_directory(store: BlobStore, key: str) -> dict[str, tuple[int, int]]:
    return read_pack_directory(store.read(key))


def _pack_directory(
    store: BlobStore, channel_id: int, subdir: str, pack: str
) -> dict[str, tuple[int, int]]:
    key = pack_directory_key(channel_id, subdir, pack)
    if not store.exists(key):
        return {}
    return _cached_directory(store, key)
