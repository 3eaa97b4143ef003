"""Publishing a channel's conda index: render from its files, store, and swap in atomically."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from headwater.db import after_commit, utcnow
from headwater.formats.conda.index import BuiltIndex, SubdirIndexBuilder
from headwater.formats.conda.shards import read_pack_directory
from headwater.models import Channel, ChannelIndex, PackageFile, PackageType
from headwater.services.channels import index_prefix
from headwater.storage import BlobStore

log = logging.getLogger(__name__)
_YIELD_PER = 5000


@dataclass
class Publication:
    """The indexes a publish switched to; superseded artifacts go after the commit."""

    indexes: list[ChannelIndex] = field(default_factory=list)


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

    The caller holds the channel lock and commits; clients switch to the new index at commit,
    and then the artifacts no index generation references any more are deleted.
    """
    publication = Publication()
    chosen = sorted(set(subdirs))
    for subdir in chosen:
        built = build_subdir_index(session, channel_id, subdir)
        publication.indexes.append(_swap_index(session, store, channel_id, built))
    if chosen:
        bind = session.get_bind()
        after_commit(session, lambda: collect_index_garbage(bind, store, channel_id, chosen))
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
) -> ChannelIndex:
    subdir = built.subdir
    repodata_sha = _digest(built.repodata)
    index = session.get(ChannelIndex, (channel_id, subdir))
    if index is not None and index.repodata_sha256 == repodata_sha:
        return index  # nothing changed: keep the ETag and Last-Modified clients hold
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
        store.put(key, data)  # always written: a collection may have just removed an old copy
    if index is None:
        index = ChannelIndex(channel_id=channel_id, subdir=subdir)
        session.add(index)
    else:
        index.previous_repodata_sha256 = index.repodata_sha256
        index.previous_repodata_zst_sha256 = index.repodata_zst_sha256
        index.previous_shard_index_sha256 = index.shard_index_sha256
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
    return index


def referenced_keys(index: ChannelIndex) -> set[str]:
    """Every artifact of the index's current and previous generation."""
    channel_id, subdir = index.channel_id, index.subdir
    keys = set()
    for repodata, zst, shard_index, pack in (
        (
            index.repodata_sha256,
            index.repodata_zst_sha256,
            index.shard_index_sha256,
            index.shard_pack_sha256,
        ),
        (
            index.previous_repodata_sha256,
            index.previous_repodata_zst_sha256,
            index.previous_shard_index_sha256,
            index.previous_shard_pack_sha256,
        ),
    ):
        if repodata:
            keys.add(repodata_key(channel_id, subdir, repodata))
        if zst:
            keys.add(repodata_zst_key(channel_id, subdir, zst))
        if shard_index:
            keys.add(shard_index_key(channel_id, subdir, shard_index))
        if pack:
            keys.add(shard_pack_key(channel_id, subdir, pack))
            keys.add(pack_directory_key(channel_id, subdir, pack))
    return keys


def collect_index_garbage(
    bind: Any, store: BlobStore, channel_id: int, subdirs: Iterable[str]
) -> None:
    """Delete the subdirs' artifacts that no index generation references.

    It runs under the channel lock, so no publish can be between writing its artifacts and
    committing them; artifacts left by a publish that rolled back go too.
    """
    try:
        with Session(bind=bind) as session, session.begin():
            lock_channel(session, channel_id)
            for subdir in subdirs:
                index = session.get(ChannelIndex, (channel_id, subdir))
                keep = referenced_keys(index) if index is not None else set()
                for key in list(store.list_keys(f"{index_prefix(channel_id)}{subdir}/")):
                    if key not in keep:
                        store.delete(key)
    except Exception:  # the index is published; garbage can wait for the next publish
        log.exception("collecting superseded index artifacts of channel %s failed", channel_id)


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


def bump_simple_revision(session: Session, channel_id: int) -> None:
    """Tell every server that the channel's simple pages changed (they cache by revision)."""
    session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(simple_revision=Channel.simple_revision + 1)
    )


def publish_removal(
    session: Session, store: BlobStore, channel_id: int, removed: Iterable[tuple[str, str]]
) -> None:
    """After files left a channel outside a run: republish the conda subdirs they were in, and
    bump the simple revision if any was a PyPI file. `removed` is (package_type, subdir) pairs."""
    pairs = list(removed)
    conda = sorted({subdir for kind, subdir in pairs if kind != PackageType.python})
    if any(kind == PackageType.python for kind, _ in pairs):
        bump_simple_revision(session, channel_id)
    if conda:
        publish_subdirs(session, store, channel_id, conda)
