"""Conda serving: repodata.json (+ .zst), CEP-16 shards and package files of a channel subdir."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import cache

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from headwater.errors import IndexNotFoundError, PackageFileNotFoundError
from headwater.formats.conda import KNOWN_SUBDIRS, is_package_filename
from headwater.formats.conda.index import BuiltIndex, SubdirIndexBuilder
from headwater.formats.conda.shards import SHARD_INDEX_NAME
from headwater.models import RevisionIndex
from headwater.repo.access import Served, cache_control
from headwater.repo.files import serve_file
from headwater.repo.responses import (
    IMMUTABLE_CACHE_CONTROL,
    INDEX_CACHE_CONTROL,
    blob_response,
    bytes_response,
)
from headwater.resources import Resources
from headwater.services import packages
from headwater.services.channel_revisions import pinned_index
from headwater.services.indexes import find_shard, repodata_key, repodata_zst_key, shard_index_key

JSON = "application/json"
ZSTD = "application/zstd"
MSGPACK_ZSTD = "application/octet-stream"
PACKAGE = "application/octet-stream"


@cache
def empty_index(subdir: str) -> BuiltIndex:
    """What a channel serves for a subdir it has no files in (noarch, always)."""
    return SubdirIndexBuilder(subdir).finish()


def _etag(sha256: str) -> str:
    return f'"{sha256}"'


async def serve(
    request: Request, resources: Resources, served: Served, rest: list[str]
) -> Response:
    name = served.segment
    subdir, names = rest[0], rest[1:]
    if subdir not in KNOWN_SUBDIRS:
        raise IndexNotFoundError(f"{subdir!r} is not a conda subdir of channel {name!r}")
    if not names:
        raise IndexNotFoundError(f"channel {name!r} serves /api/repo/{name}/{subdir}/repodata.json")
    if names in (["repodata.json"], ["repodata.json.zst"], [SHARD_INDEX_NAME]):
        return await run_in_threadpool(_serve_index, request, resources, served, subdir, names[0])
    if len(names) == 2 and names[0] == "shards" and names[1].endswith(".msgpack.zst"):
        return await run_in_threadpool(_serve_shard, request, resources, served, subdir, names[1])
    if len(names) == 1 and is_package_filename(names[0]):
        return await _serve_package(request, resources, served, subdir, names[0])
    raise PackageFileNotFoundError(f"channel {name!r} has no file {subdir}/{'/'.join(names)}")


def _indexes(
    resources: Resources, served: Served, subdir: str, *, with_parent: bool = False
) -> tuple[Served, list[RevisionIndex]]:
    """The served revision's index of the subdir, then (for shards at the plain URL) its
    parent's, whose shards a client holding the previous shard index still asks for. At the
    plain URL the head is read with the index, in one query: the channel may have moved on
    since the request's access was decided."""
    if served.pinned:
        index = pinned_index(resources.db, resources.store, served.channel, served.number, subdir)
        return served, [index] if index is not None else []
    with resources.db.reading() as session:
        head, found = packages.head_indexes(session, served.channel.id, subdir, with_parent)
    return replace(served, number=head if head is not None else served.number), found


def _serve_index(
    request: Request, resources: Resources, served: Served, subdir: str, name: str
) -> Response:
    served, indexes = _indexes(resources, served, subdir)
    if not indexes or indexes[0].number != served.number:
        if subdir != "noarch":
            raise IndexNotFoundError(f"channel {served.segment!r} has no packages for {subdir}")
        return served.label(_serve_empty(request, served, name))
    index = indexes[0]
    key, sha, size, media = _artifact(index, name)
    return served.label(
        blob_response(
            request,
            resources.store,
            key,
            etag=_etag(sha),
            size=size,
            media_type=media,
            cache_control=served.index_cache_control(INDEX_CACHE_CONTROL),
            modified=index.published_at,
        )
    )


def _artifact(index: RevisionIndex, name: str) -> tuple[str, str, int, str]:
    channel_id, subdir = index.channel_id, index.subdir
    if name == "repodata.json":
        sha = index.repodata_sha256
        return repodata_key(channel_id, subdir, sha), sha, index.repodata_size, JSON
    if name == "repodata.json.zst":
        sha = index.repodata_zst_sha256
        return repodata_zst_key(channel_id, subdir, sha), sha, index.repodata_zst_size, ZSTD
    sha = index.shard_index_sha256
    return shard_index_key(channel_id, subdir, sha), sha, index.shard_index_size, MSGPACK_ZSTD


def _serve_empty(request: Request, served: Served, name: str) -> Response:
    built = empty_index("noarch")
    content = {
        "repodata.json": built.repodata,
        "repodata.json.zst": built.repodata_zst,
        SHARD_INDEX_NAME: built.shard_index,
    }[name]
    media = JSON if name == "repodata.json" else ZSTD
    return bytes_response(
        request,
        content,
        etag=_etag(hashlib.sha256(content).hexdigest()),
        media_type=media,
        cache_control=served.index_cache_control(INDEX_CACHE_CONTROL),
    )


def _serve_shard(
    request: Request, resources: Resources, served: Served, subdir: str, name: str
) -> Response:
    digest = name.removesuffix(".msgpack.zst")
    served, indexes = _indexes(resources, served, subdir, with_parent=True)
    shard = find_shard(resources.store, indexes, digest)
    if shard is None:
        raise PackageFileNotFoundError(
            f"channel {served.segment!r} has no shard {subdir}/shards/{name}"
        )
    return served.label(
        bytes_response(
            request,
            shard,
            etag=_etag(digest),
            media_type=MSGPACK_ZSTD,
            cache_control=cache_control(served.channel, IMMUTABLE_CACHE_CONTROL),
        )
    )


async def _serve_package(
    request: Request, resources: Resources, served: Served, subdir: str, filename: str
) -> Response:
    def find() -> packages.ServableFile | None:
        with resources.db.reading() as session:
            return packages.find_file(session, served.channel.id, subdir, filename, served.revision)

    file = await run_in_threadpool(find)
    if file is None:
        raise PackageFileNotFoundError(
            f"channel {served.segment!r} has no file {subdir}/{filename}"
        )
    return served.label(await serve_file(request, resources, served.channel, file))
