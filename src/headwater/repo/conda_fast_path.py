"""conda's URLs answered before the framework: a channel's indexes, shards and package files,
for anonymous readers of public channels and for token holders alike, from what this process
knows already.

Per request: no routing, no database query, and no thread hop once the bytes are in memory.
What it takes to answer is kept per app: each channel's head, privacy and index rows
(repo/heads.py, read again in the background at most once a second), each token's decision
to read a channel (repo/grants.py, a few seconds), where each package file of a head is
stored, and the immutable bytes themselves (page_cache.BlobCache, bounded by size). Whatever
is not known yet is read once in a worker thread, shared by the requests waiting for it.

Anything it cannot answer goes on to the application unchanged, which answers it as always:
a pinned revision (`channel@3`), a range request, a channel it does not know or may not show
to this caller (the application answers 401, 403 or 404), a file whose bytes a passive mirror
has not fetched yet (the application fetches them), a name that is no conda file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import Scope

from headwater.credentials import SESSION_COOKIE, request_token
from headwater.formats.conda import KNOWN_SUBDIRS, is_package_filename
from headwater.page_cache import BlobCache, Recent
from headwater.repo.access import REVISION_HEADER
from headwater.repo.conda import (
    INDEX_NAMES,
    empty_answer,
    find_shard_in,
    index_artifact,
    repodata_codings,
    shard_answer,
)
from headwater.repo.encodings import IDENTITY, matches_any_coding, negotiate
from headwater.repo.files import accel_of, etag_of, file_answer
from headwater.repo.grants import ReadGrants
from headwater.repo.heads import ChannelView, ChannelViews, read_view
from headwater.repo.loads import Loads
from headwater.repo.responses import INDEX_CACHE_CONTROL, Asked, blob_answer, etag_matches
from headwater.repo.sending import READ_SIZE, Answer
from headwater.resources import Resources
from headwater.services import packages
from headwater.storage import Chunks, content_key

_PREFIX = "/api/repo/"
_SHARD = re.compile(r"[0-9a-f]{64}\.msgpack\.zst")
_REVISION = REVISION_HEADER.lower().encode()
_FILES_KEPT = 65_536  # where package files of channel heads are stored
_PREPARED_KEPT = 16_384  # representations whose answers are made already
_COOKIE = SESSION_COOKIE.encode() + b"="


@dataclass(frozen=True)
class CondaAddress:
    """What a conda URL names: `kind` is index, shard or package; `name` the file name, or
    the shard's digest."""

    channel: str
    subdir: str
    kind: str
    name: str
    token: str | None = None


def conda_address(path: str) -> CondaAddress | None:
    """The conda file `/api/repo/[t/<token>/]<channel>/<subdir>/...` names; None for any other
    path (a pinned revision's among them, and anything not shaped as conda's files are)."""
    if not path.startswith(_PREFIX):
        return None
    parts = path[len(_PREFIX) :].split("/")
    token = None
    if parts[0] == "t" and len(parts) > 2:
        token, parts = parts[1], parts[2:]
        if not token:
            return None
    if len(parts) == 3:
        channel, subdir, name = parts
        if name in INDEX_NAMES:
            kind = "index"
        elif is_package_filename(name):
            kind = "package"
        else:
            return None
    elif len(parts) == 4 and parts[2] == "shards" and _SHARD.fullmatch(parts[3]):
        channel, subdir, kind, name = parts[0], parts[1], "shard", parts[3][:64]
    else:
        return None
    if subdir not in KNOWN_SUBDIRS or "@" in channel:
        return None
    return CondaAddress(channel, subdir, kind, name, token)


@dataclass(frozen=True)
class StoredFile:
    """A package file of a head whose bytes are in the store, this mirror's upstream having
    delivered them (or uploaded): what the fast path may send."""

    sha256: str
    size: int


def locate_file(
    resources: Resources, channel_id: int, subdir: str, filename: str
) -> StoredFile | None:
    """Blocks: run it in a thread. None for a file the application must serve (missing, or
    not fetched from its upstream yet)."""
    with resources.db.reading() as session:
        file = packages.find_file(session, channel_id, subdir, filename)
    if file is None or not file.delivered:
        return None
    info = resources.store.stat(content_key(file.sha256))
    return StoredFile(file.sha256, info.size) if info is not None else None


@dataclass(frozen=True)
class Validators:
    """What decides a 304, and where the body is kept (a blob cache key; None: the answer
    holds it, a file or a few constant bytes)."""

    etag: str
    document: str | None = None  # repodata.json's sha256: any coding's tag revalidates it
    blob: object | None = None


@dataclass(frozen=True)
class Prepared:
    """A representation's answers, made once: GET, HEAD and 304 differ only by the request's
    method and If-None-Match, and never change for a channel's head."""

    validators: Validators
    ok: Answer
    head: Answer
    fresh: Answer

    def choose(self, method: str, headers: dict[bytes, bytes], blobs: BlobCache) -> Answer | None:
        """The answer for this request; None when it needs the full reckoning (a date to
        compare, a body no longer in memory)."""
        if_none_match = headers.get(b"if-none-match")
        if if_none_match is not None:
            tag = if_none_match.decode("latin-1")
            document = self.validators.document
            if document is not None:
                if matches_any_coding(tag, document):
                    return self.fresh
            elif etag_matches(tag, self.validators.etag):
                return self.fresh
        elif b"if-modified-since" in headers:
            return None
        if method == "HEAD":
            return self.head
        if self.validators.blob is None:
            return self.ok
        body = blobs.get(self.validators.blob)
        return Answer(200, self.ok.headers, body) if body is not None else None


def _etag_of(answer: Answer) -> str:
    return next(value.decode() for name, value in answer.headers if name == b"etag")


class CondaFastPath:
    """One app's conda fast path and what it keeps; used from the event loop."""

    def __init__(self, resources: Resources) -> None:
        settings, db = resources.settings, resources.db
        self.resources = resources
        self.views = ChannelViews(db.engine.url, lambda name, before: read_view(db, name))
        self.grants = ReadGrants(resources.db, settings.token_cache_seconds)
        self.blobs = BlobCache(settings.serve_cache_bytes)
        self.files: Recent[tuple[int, int, str, str], StoredFile] = Recent(_FILES_KEPT)
        self.accel = accel_of(resources)
        self._loads = Loads()
        self._loading = 0  # bytes being read into memory now
        self._prepared: Recent[tuple[object, ...], Prepared] = Recent(_PREPARED_KEPT)

    async def answer(
        self, scope: Scope, address: CondaAddress, headers: dict[bytes, bytes]
    ) -> Answer | None:
        """The answer, or None when the application should answer instead."""
        if b"range" in headers:
            return None
        token = address.token or _header_token(scope, headers)
        view = await self.views.current(address.channel)
        if view is None:
            return None
        if token is not None:
            grant = await self.grants.grant(token, address.channel)
            if not grant.allowed or grant.channel_id != view.id:
                return None
            if grant.token_id is not None:
                self.resources.token_uses.used(grant.token_id)
        elif not view.public:
            return None
        accept_encoding = headers.get(b"accept-encoding")
        coding = self._coding(view, address, accept_encoding)
        key = (address.kind, address.subdir, address.name, view.id, view.head, view.public, coding)
        prepared = self._prepared.get(key)
        if prepared is not None:
            chosen = prepared.choose(scope["method"], headers, self.blobs)
            if chosen is not None:
                return chosen
        asked = Asked.of_headers(scope["method"], headers)
        found = await self._build(asked, view, address)
        if found is None:
            return None
        answer, validators = found
        if validators is not None and answer.status in (200, 304):
            # Made from whichever request came first: a client revalidating a copy it got
            # elsewhere, or asking for it in another coding than before, is answered from the
            # prepared 304 from its second request on.
            got = answer if answer.status == 200 and not asked.head else None
            await self._prepare(key, asked, view, address, got, validators)
        return answer

    def _coding(
        self, view: ChannelView, address: CondaAddress, accept_encoding: bytes | None
    ) -> str:
        """The content coding of repodata.json this request gets, as index_artifact chooses."""
        found = view.indexes.get(address.subdir)
        if address.name != "repodata.json" or accept_encoding is None or found is None:
            return IDENTITY
        return negotiate(accept_encoding.decode("latin-1"), repodata_codings(found.gz_size))

    async def _build(
        self, asked: Asked, view: ChannelView, address: CondaAddress
    ) -> tuple[Answer, Validators | None] | None:
        if address.kind == "index":
            found = await self._index(asked, view, address.subdir, address.name)
        elif address.kind == "shard":
            found = await self._shard(asked, view, address.subdir, address.name)
        else:
            found = await self._package(asked, view, address.subdir, address.name)
        if found is not None:
            found[0].headers.append((_REVISION, str(view.head).encode()))
        return found

    async def _prepare(
        self,
        key: tuple[object, ...],
        asked: Asked,
        view: ChannelView,
        address: CondaAddress,
        answer: Answer | None,
        validators: Validators,
    ) -> None:
        """Keep the GET, HEAD and 304 answers of this representation for the next requests
        (`answer`: the GET's, when the request was one)."""
        plain = replace(asked, method="GET", if_none_match=None, if_modified_since=None)
        if answer is None:
            got = await self._build(plain, view, address)
            if got is None or got[0].status != 200:
                return
            answer, current = got
            if current is None or current.etag != validators.etag:
                return  # the head moved meanwhile: the next request prepares it
            validators = current  # the GET's: where its body is kept
        if isinstance(answer.body, Chunks):
            return
        etag = validators.etag
        head = await self._build(replace(plain, method="HEAD"), view, address)
        fresh = await self._build(replace(plain, if_none_match=etag), view, address)
        if head is None or fresh is None or fresh[0].status != 304:
            return
        # A body kept in the blob cache is looked up there each time, not held twice.
        ok = Answer(200, answer.headers, b"") if validators.blob is not None else answer
        self._prepared.put(key, Prepared(validators, ok, head[0], fresh[0]))

    async def _index(
        self, asked: Asked, view: ChannelView, subdir: str, name: str
    ) -> tuple[Answer, Validators | None] | None:
        caching = f"{'public' if view.public else 'private'}, {INDEX_CACHE_CONTROL}"
        found = view.indexes.get(subdir)
        if found is None:  # no files there: noarch is served empty, others are not found
            if subdir != "noarch":
                return None
            answer = empty_answer(asked, name, caching)
            return answer, Validators(_etag_of(answer))
        index = found.row
        artifact = index_artifact(index, name, asked.accept_encoding, found.gz_size)
        wanted = not asked.head and not asked.is_fresh(
            artifact.etag, index.published_at, artifact.document
        )
        cached = None
        if wanted and self.accel is None:
            cached = await self._bytes(artifact.key, artifact.size)
        answer = blob_answer(
            asked,
            self.resources.store,
            artifact.key,
            etag=artifact.etag,
            size=artifact.size,
            media_type=artifact.media_type,
            cache_control=caching,
            modified=index.published_at,
            coding=artifact.coding,
            vary=artifact.vary,
            document=artifact.document,
            accel=self.accel,
            cached=cached,
        )
        blob = artifact.key if cached is not None else None
        return answer, Validators(artifact.etag, artifact.document, blob)

    async def _shard(
        self, asked: Asked, view: ChannelView, subdir: str, digest: str
    ) -> tuple[Answer, Validators | None] | None:
        indexes = view.shard_indexes(subdir)
        for index in indexes:
            blob = (index.shard_pack_sha256, digest)
            content = self.blobs.get(blob)
            if content is not None:
                answer = shard_answer(asked, content, digest, view.public)
                return answer, Validators(etag_of(digest), blob=blob)
        if not indexes:
            return None
        store = self.resources.store
        found = await self._loads.run(
            (view.id, subdir, digest),
            lambda: run_in_threadpool(find_shard_in, store, indexes, digest),
        )
        if found is None:
            return None
        pack, content = found
        self.blobs.put((pack, digest), content)
        answer = shard_answer(asked, content, digest, view.public)
        kept = self.blobs.get((pack, digest)) is not None
        return answer, Validators(etag_of(digest), blob=(pack, digest)) if kept else None

    async def _package(
        self, asked: Asked, view: ChannelView, subdir: str, filename: str
    ) -> tuple[Answer, Validators | None] | None:
        where = (view.id, view.head, subdir, filename)
        stored = self.files.get(where)
        if stored is None:
            stored = await self._loads.run(where, lambda: self._locate(where))
            if stored is None:
                return None
        etag = etag_of(stored.sha256)
        cached = None
        wanted = not asked.head and not asked.is_fresh(etag, None)
        # Sent by the front proxy, or by the bucket (a presigned redirect): never read here.
        by_others = self.accel is not None or self.resources.settings.blob_redirects
        if wanted and not by_others and stored.size <= READ_SIZE:
            cached = await self._bytes(content_key(stored.sha256), stored.size)
        if self.resources.settings.blob_redirects and wanted:
            # Presigning may fetch the store's credentials: not on the event loop.
            answer = await run_in_threadpool(
                file_answer, asked, self.resources, stored.sha256, stored.size, view.public
            )
        else:
            answer = file_answer(
                asked, self.resources, stored.sha256, stored.size, view.public, cached=cached
            )
        if answer.status == 307:  # a presigned URL: it expires, never kept
            return answer, None
        blob = content_key(stored.sha256) if cached is not None else None
        return answer, Validators(etag, blob=blob)

    async def _locate(self, where: tuple[int, int, str, str]) -> StoredFile | None:
        channel_id, _, subdir, filename = where
        stored = await run_in_threadpool(locate_file, self.resources, channel_id, subdir, filename)
        if stored is not None:
            self.files.put(where, stored)
        return stored

    async def _bytes(self, key: str, size: int) -> bytes | None:
        """The blob from memory, read into it first if it fits; None: send it from the store.
        What is being read at once is bounded by the cache's budget too."""
        found = self.blobs.get(key)
        if found is not None or not self.blobs.fits(size):
            return found
        if self._loading + size > self.blobs.budget and key not in self._loads:
            return None
        return await self._loads.run(key, lambda: self._read(key, size))

    async def _read(self, key: str, size: int) -> bytes:
        self._loading += size
        try:
            data = await run_in_threadpool(self.resources.store.read, key)
        finally:
            self._loading -= size
        self.blobs.put(key, data)
        return data


def _header_token(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    """The token in the request's headers or session cookie, read as the application reads
    it (credentials.request_token); None for an anonymous request."""
    cookie = headers.get(b"cookie")
    if (
        b"x-auth" not in headers
        and b"authorization" not in headers
        and (cookie is None or _COOKIE not in cookie)
    ):
        return None
    return request_token(Request(scope))
