"""A revision's conda indexes: rendered from its files, stored content-addressed, found again.

The head's indexes are rendered when a change lands (services/revisions.py); an older pinned
revision's are rendered again on first request. Each rendered subdir is a `RevisionIndex` row
naming artifacts under `indexes/<channel id>/<subdir>/<sha256>.<kind>`: revisions with the same
index share its artifacts, and garbage collection takes an artifact no row names any more
(services/blobs.py).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from operator import itemgetter
from typing import Any

from isal import isal_zlib
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from headwater.db import utcnow
from headwater.formats.conda.index import BuiltIndex, PreviousIndex, SubdirIndexBuilder
from headwater.formats.conda.shards import read_pack_directory
from headwater.models import Channel, PackageFile, PackageType, RevisionIndex
from headwater.services import blobs
from headwater.services.blobs import Stored
from headwater.services.channels import index_prefix
from headwater.storage import BlobStore

log = logging.getLogger(__name__)
_YIELD_PER = 5000


def lock_channel(session: Session, channel_id: int) -> None:
    """Serialise the short transactions that move a channel's head or drop its index rows (on
    SQLite the write transaction already does)."""
    session.execute(select(Channel.id).where(Channel.id == channel_id).with_for_update())


def _artifact_key(channel_id: int, subdir: str, sha256: str, suffix: str) -> str:
    return f"{index_prefix(channel_id)}{subdir}/{sha256}{suffix}"


def repodata_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".json")


def repodata_directory_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".json.directory")


def repodata_zst_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".json.zst")


def repodata_gz_key(channel_id: int, subdir: str, repodata_sha256: str) -> str:
    """repodata.json gzipped, sent to clients whose Accept-Encoding takes gzip (repo/encodings):
    named by the repodata's own sha256, which its index row holds."""
    return _artifact_key(channel_id, subdir, repodata_sha256, ".json.gz")


def shard_index_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".shards.msgpack.zst")


def shard_pack_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".pack")


def pack_directory_key(channel_id: int, subdir: str, sha256: str) -> str:
    return _artifact_key(channel_id, subdir, sha256, ".pack.directory")


# A change touching more of a subdir's names than this renders it whole.
INCREMENTAL_SHARE = 0.2


def render_subdir(
    session: Session,
    store: BlobStore,
    channel_id: int,
    subdir: str,
    members: ColumnElement[bool],
    *,
    previous: RevisionIndex | None = None,
    changed: set[str] | None = None,
) -> RevisionIndex:
    """Render the subdir's index from the files `members` selects and store its artifacts.

    Given the `previous` index and the package names a change touched, the names nothing
    changed are copied from it (their entries in repodata.json, their shards) and only the
    `changed` ones are read and rendered: the same bytes as a whole render, in a fraction of
    the time for a change of a few records in a conda-forge-sized subdir.

    The row it answers is not added to the session: the caller numbers it and adds it in the
    transaction that makes it visible.
    """
    reused = _previous_index(store, previous) if previous is not None and changed else None
    if (
        reused is not None
        and changed is not None
        and (len(changed) <= INCREMENTAL_SHARE * max(len(reused.spans), 1))
    ):
        builder = _build_incrementally(session, channel_id, subdir, members, reused, changed)
        del reused  # the previous index's bytes are copied: let them go before finishing
        built = builder.finish()
    else:
        del reused
        built = build_subdir_index(session, channel_id, subdir, members)
    return store_index(store, channel_id, built)


def _rows(session: Session, channel_id: int, subdir: str, *conditions: ColumnElement[bool]) -> Any:
    """The subdir's records in the order of a repodata.json: by name, then file name, by code
    point (PostgreSQL's collation would order otherwise, and every render must agree)."""
    name, filename = PackageFile.name, PackageFile.filename
    if session.get_bind().dialect.name == "postgresql":
        name, filename = name.collate("C"), filename.collate("C")  # type: ignore[assignment]
    return session.connection().execute(
        select(PackageFile.name, PackageFile.filename, PackageFile.record)
        .where(
            PackageFile.channel_id == channel_id,
            PackageFile.subdir == subdir,
            PackageFile.package_type == PackageType.conda,
            *conditions,
        )
        .order_by(name, filename)
        .execution_options(yield_per=_YIELD_PER)
    )


def build_subdir_index(
    session: Session, channel_id: int, subdir: str, members: ColumnElement[bool]
) -> BuiltIndex:
    builder = SubdirIndexBuilder(subdir)
    for name, group in itertools.groupby(
        _rows(session, channel_id, subdir, members), itemgetter(0)
    ):
        builder.add_package(name, [(row[1], row[2]) for row in group])
    return builder.finish()


def _build_incrementally(
    session: Session,
    channel_id: int,
    subdir: str,
    members: ColumnElement[bool],
    previous: PreviousIndex,
    changed: set[str],
) -> SubdirIndexBuilder:
    fresh: dict[str, list[tuple[str, bytes]]] = {}
    listed = sorted(changed)
    for start in range(0, len(listed), 500):
        batch = PackageFile.name.in_(listed[start : start + 500])
        for name, filename, record in _rows(session, channel_id, subdir, members, batch):
            fresh.setdefault(name, []).append((filename, record))
    builder = SubdirIndexBuilder(subdir)
    unchanged: list[str] = []  # names in a row that nothing changed: copied as one stretch
    for name in sorted(previous.spans.keys() | changed):
        if name not in changed:
            unchanged.append(name)
            continue
        if unchanged:
            builder.reuse_packages(unchanged, previous)
            unchanged = []
        if name in fresh:
            builder.add_package(name, fresh[name])
    if unchanged:
        builder.reuse_packages(unchanged, previous)
    return builder


def _previous_index(store: BlobStore, index: RevisionIndex) -> PreviousIndex | None:
    """The artifacts of `index` an incremental render reuses; None for an index rendered
    before they were kept (a migrated one), or collected meanwhile."""
    channel_id, subdir = index.channel_id, index.subdir
    directory = repodata_directory_key(channel_id, subdir, index.repodata_sha256)
    try:
        return PreviousIndex.read(
            store.read(repodata_key(channel_id, subdir, index.repodata_sha256)),
            store.read(directory),
            store.read(shard_index_key(channel_id, subdir, index.shard_index_sha256)),
            store.read(shard_pack_key(channel_id, subdir, index.shard_pack_sha256)),
            store.read(pack_directory_key(channel_id, subdir, index.shard_pack_sha256)),
        )
    except (FileNotFoundError, KeyError):
        return None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gzipped(data: bytes) -> bytes:
    """repodata.json as gzip-taking clients get it. ISA-L's deflate at level 1 compresses a
    conda-forge-sized linux-64 (225 MB) 5.6:1 in about 0.8 s on one core; zlib's level 1 gives
    5:1 in 2 s, its level 6 6:1 in 10 s."""
    compressor = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def store_index(store: BlobStore, channel_id: int, built: BuiltIndex) -> RevisionIndex:
    subdir = built.subdir
    index = RevisionIndex(
        channel_id=channel_id,
        subdir=subdir,
        repodata_sha256=built.repodata_sha256 or _digest(built.repodata),
        repodata_size=len(built.repodata),
        repodata_zst_sha256=_digest(built.repodata_zst),
        repodata_zst_size=len(built.repodata_zst),
        shard_index_sha256=_digest(built.shard_index),
        shard_index_size=len(built.shard_index),
        shard_pack_sha256=_digest(built.shard_pack),
        record_count=built.record_count,
        published_at=utcnow(),
        on_demand=False,
    )
    gz_key = repodata_gz_key(channel_id, subdir, index.repodata_sha256)
    # Compressed on the other core while the other artifacts are written.
    with ThreadPoolExecutor(max_workers=1) as pool:
        gz = pool.submit(gzipped, built.repodata) if store.stat(gz_key) is None else None
        _put_missing(store, channel_id, built, index)
        if gz is not None:
            store.put(gz_key, gz.result())
    return index


def _put_missing(
    store: BlobStore, channel_id: int, built: BuiltIndex, index: RevisionIndex
) -> None:
    subdir = built.subdir
    for key, data in (
        (repodata_key(channel_id, subdir, index.repodata_sha256), built.repodata),
        (repodata_zst_key(channel_id, subdir, index.repodata_zst_sha256), built.repodata_zst),
        (shard_index_key(channel_id, subdir, index.shard_index_sha256), built.shard_index),
        (shard_pack_key(channel_id, subdir, index.shard_pack_sha256), built.shard_pack),
        (pack_directory_key(channel_id, subdir, index.shard_pack_sha256), built.pack_directory),
        (
            repodata_directory_key(channel_id, subdir, index.repodata_sha256),
            built.repodata_directory,
        ),
    ):
        if store.stat(key) is None:
            store.put(key, data)


def artifact_blobs(index: RevisionIndex) -> list[Stored]:
    """The blobs of `index`, which the transaction adding its row makes sure are recorded."""
    return [Stored.artifact(key) for key in sorted(artifact_keys(index))]


def artifact_keys(index: RevisionIndex) -> set[str]:
    channel_id, subdir = index.channel_id, index.subdir
    return {
        repodata_key(channel_id, subdir, index.repodata_sha256),
        repodata_gz_key(channel_id, subdir, index.repodata_sha256),
        repodata_zst_key(channel_id, subdir, index.repodata_zst_sha256),
        shard_index_key(channel_id, subdir, index.shard_index_sha256),
        shard_pack_key(channel_id, subdir, index.shard_pack_sha256),
        pack_directory_key(channel_id, subdir, index.shard_pack_sha256),
        repodata_directory_key(channel_id, subdir, index.repodata_sha256),
    }


def drop_indexes(session: Session, channel_id: int, condition: ColumnElement[bool]) -> int:
    """Delete the channel's index rows that `condition` selects; the artifacts no remaining row
    names are garbage collection's, after the grace that starts now."""
    blobs.touch_indexes(session, channel_id, condition)
    dropped = session.execute(
        delete(RevisionIndex).where(RevisionIndex.channel_id == channel_id, condition)
    )
    return int(dropped.rowcount or 0)  # type: ignore[attr-defined]


def find_shard(store: BlobStore, indexes: Iterable[RevisionIndex], sha256: str) -> bytes | None:
    """A shard of any of `indexes`, read from its pack."""
    for index in indexes:
        pack = index.shard_pack_sha256
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
    try:
        return _cached_directory(store, key)
    except FileNotFoundError:
        return {}


def describe(index: Any) -> str:
    return f"the {index.subdir} index: {index.record_count} records"
