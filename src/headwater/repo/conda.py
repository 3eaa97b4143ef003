"""Conda serving: repodata.json (+ .zst, and gzip or zstd by Accept-Encoding), CEP-16 shards
and package files of a channel subdir.

The answers are built here for the routed handlers below and for the fast path
(repo/conda_fast_path.py) alike, so that both send the same headers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cache

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from headwater.errors import IndexNotFoundError, PackageFileNotFoundError
from headwater.formats.conda import KNOWN_SUBDIRS, is_package_filename
from headwater.formats.conda.index import BuiltIndex, SubdirIndexBuilder
from headwater.formats.conda.shards import SHARD_INDEX_NAME
from headwater.models import RevisionIndex
from headwater.repo.access import Served
from headwater.repo.encodings import GZIP, IDENTITY, ZSTD, coded_etag, negotiate
from headwater.repo.files import accel_of, serve_file
from headwater.repo.responses import (
    IMMUTABLE_CACHE_CONTROL,
    INDEX_CACHE_CONTROL,
    Asked,
    blob_response,
    bytes_answer,
)
from headwater.repo.sending import Answer, AnswerResponse
from headwater.resources import Resources
from headwater.services import packages
from headwater.services.channel_revisions import pinned_index
from headwater.services.indexes import (
    find_shard,
    repodata_gz_key,
    repodata_key,
    repodata_zst_key,
    shard_index_key,
)
from headwater.storage import BlobStore

JSON = "application/json"
ZSTD_MEDIA = "application/zstd"
MSGPACK_ZSTD = "application/octet-stream"
PACKAGE = "application/octet-stream"
INDEX_NAMES = frozenset({"repodata.json", "repodata.json.zst", SHARD_INDEX_NAME})
_ZSTD_ONLY = frozenset({ZSTD})
_ZSTD_GZIP = frozenset({ZSTD, GZIP})


@cache
def empty_index(subdir: str) -> BuiltIndex:
    """What a channel serves for a subdir it has no files in (noarch, always)."""
    return SubdirIndexBuilder(subdir).finish()


def _etag(sha256: str) -> str:
    return f'"{sha256}"'


@dataclass(frozen=True)
class Artifact:
    """The blob an index URL answers with, as this request negotiated it."""

    key: str
    etag: str
    size: int
    media_type: str
    coding: str = IDENTITY
    document: str | None = None  # repodata.json's sha256, whichever coding is sent
    vary: str | None = None


def repodata_codings(gz_size: int | None) -> frozenset[str]:
    """The codings repodata.json is stored in besides identity (gzip: since it was made)."""
    return _ZSTD_ONLY if gz_size is None else _ZSTD_GZIP


def index_artifact(
    index: RevisionIndex, name: str, accept_encoding: str | None, gz_size: int | None
) -> Artifact:
    """`name` of `index`: repodata.json in the coding the client takes best (the `.zst`
    artifact is its zstd body; `gz_size` None: no gzip one was made), or the other two."""
    channel_id, subdir = index.channel_id, index.subdir
    if name == "repodata.json":
        sha = index.repodata_sha256
        coding = negotiate(accept_encoding, repodata_codings(gz_size))
        etag, vary = coded_etag(sha, coding), "Accept-Encoding"
        if coding == ZSTD:
            key = repodata_zst_key(channel_id, subdir, index.repodata_zst_sha256)
            return Artifact(key, etag, index.repodata_zst_size, JSON, ZSTD, sha, vary)
        if coding == GZIP and gz_size is not None:
            key = repodata_gz_key(channel_id, subdir, sha)
            return Artifact(key, etag, gz_size, JSON, GZIP, sha, vary)
        key = repodata_key(channel_id, subdir, sha)
        return Artifact(key, etag, index.repodata_size, JSON, IDENTITY, sha, vary)
    if name == "repodata.json.zst":
        sha = index.repodata_zst_sha256
        key = repodata_zst_key(channel_id, subdir, sha)
        return Artifact(key, _etag(sha), index.repodata_zst_size, ZSTD_MEDIA)
    sha = index.shard_index_sha256
    key = shard_index_key(channel_id, subdir, sha)
    return Artifact(key, _etag(sha), index.shard_index_size, MSGPACK_ZSTD)


@cache
def _empty_artifact(name: str) -> tuple[bytes, str, str]:
    built = empty_index("noarch")
    content = {
        "repodata.json": built.repodata,
        "repodata.json.zst": built.repodata_zst,
        SHARD_INDEX_NAME: built.shard_index,
    }[name]
    media = JSON if name == "repodata.json" else ZSTD_MEDIA
    return content, _etag(hashlib.sha256(content).hexdigest()), media


def empty_answer(asked: Asked, name: str, caching: str) -> Answer:
    """An index of noarch for a channel with no noarch files."""
    content, etag, media = _empty_artifact(name)
    return bytes_answer(asked, content, etag=etag, media_type=media, cache_control=caching)


def shard_answer(asked: Asked, content: bytes, digest: str, public: bool) -> Answer:
    caching = f"{'public' if public else 'private'}, {IMMUTABLE_CACHE_CONTROL}"
    return bytes_answer(
        asked, content, etag=_etag(digest), media_type=MSGPACK_ZSTD, cache_control=caching
    )


def find_shard_in(
    store: BlobStore, indexes: list[RevisionIndex], digest: str
) -> tuple[str, bytes] | None:
    """The shard and the pack it was found in (the head's, else its parent's). Blocks."""
    for index in indexes:
        found = find_shard(store, [index], digest)
        if found is not None:
            return index.shard_pack_sha256, found
    return None


async def serve(
    request: Request, resources: Resources, served: Served, rest: list[str]
) -> Response:
    name = served.segment
    subdir, names = rest[0], rest[1:]
    if subdir not in KNOWN_SUBDIRS:
        raise IndexNotFoundError(f"{subdir!r} is not a conda subdir of channel {name!r}")
    if not names:
        raise IndexNotFoundError(f"channel {name!r} serves /api/repo/{name}/{subdir}/repodata.json")
    if len(names) == 1 and names[0] in INDEX_NAMES:
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


def gz_size(store: BlobStore, index: RevisionIndex) -> int | None:
    """The size of the index's gzipped repodata.json; None for one published before they
    were made. Blocks."""
    info = store.stat(repodata_gz_key(index.channel_id, index.subdir, index.repodata_sha256))
    return info.size if info is not None else None


def _serve_index(
    request: Request, resources: Resources, served: Served, subdir: str, name: str
) -> Response:
    served, indexes = _indexes(resources, served, subdir)
    caching = served.index_cache_control(INDEX_CACHE_CONTROL)
    if not indexes or indexes[0].number != served.number:
        if subdir != "noarch":
            raise IndexNotFoundError(f"channel {served.segment!r} has no packages for {subdir}")
        return served.label(AnswerResponse(empty_answer(Asked.of(request), name, caching)))
    index = indexes[0]
    gzipped = gz_size(resources.store, index) if name == "repodata.json" else None
    artifact = index_artifact(index, name, request.headers.get("accept-encoding"), gzipped)
    return served.label(
        blob_response(
            request,
            resources.store,
            artifact.key,
            etag=artifact.etag,
            size=artifact.size,
            media_type=artifact.media_type,
            cache_control=caching,
            modified=index.published_at,
            coding=artifact.coding,
            vary=artifact.vary,
            document=artifact.document,
            accel=accel_of(resources),
        )
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
    answer = shard_answer(Asked.of(request), shard, digest, served.channel.public)
    return served.label(AnswerResponse(answer))


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
