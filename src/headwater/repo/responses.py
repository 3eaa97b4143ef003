"""HTTP answers for repository files: validators, conditional requests, HEAD, content codings,
and where the bytes come from (memory, the blob store, a presigned URL, a front proxy).

The routed handlers and the fast path (repo/fast_path.py) build their answers here, so that a
file gets the same headers whichever way its request went.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import FileResponse

from headwater.repo.encodings import IDENTITY, matches_any_coding
from headwater.repo.sending import Accel, Answer, AnswerResponse, Headers
from headwater.storage import BlobStore, LocalFile, Redirect

# Without "public" or "private": the channel's privacy decides which (ChannelAccess).
INDEX_CACHE_CONTROL = "no-cache"  # revalidate every time: a run's publish shows at once
IMMUTABLE_CACHE_CONTROL = "max-age=31536000, immutable"


def http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


@dataclass(frozen=True)
class Asked:
    """What of a request decides its answer: read from the framework's request by the handlers,
    from the raw ASGI headers by the fast path."""

    method: str
    if_none_match: str | None = None
    if_modified_since: str | None = None
    accept_encoding: str | None = None
    ranged: bool = False

    @classmethod
    def of(cls, request: Request) -> Asked:
        headers = request.headers
        return cls(
            request.method,
            headers.get("if-none-match"),
            headers.get("if-modified-since"),
            headers.get("accept-encoding"),
            "range" in headers,
        )

    @classmethod
    def of_headers(cls, method: str, headers: dict[bytes, bytes]) -> Asked:
        def text(name: bytes) -> str | None:
            value = headers.get(name)
            return value.decode("latin-1") if value is not None else None

        return cls(
            method,
            text(b"if-none-match"),
            text(b"if-modified-since"),
            text(b"accept-encoding"),
            b"range" in headers,
        )

    @property
    def head(self) -> bool:
        return self.method == "HEAD"

    def is_fresh(
        self, etag: str, modified: dt.datetime | None, document: str | None = None
    ) -> bool:
        """True when the client's copy (If-None-Match, else If-Modified-Since) is current.
        `document`: the sha256 of the document these bytes are one content coding of, whose
        other codings' tags count too (repo/encodings.py)."""
        if self.if_none_match is not None:
            if document is not None:
                return matches_any_coding(self.if_none_match, document)
            return etag_matches(self.if_none_match, etag)
        if self.if_modified_since and modified is not None:
            try:
                since = parsedate_to_datetime(self.if_modified_since)
            except (TypeError, ValueError):
                return False
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.UTC)
            return modified.replace(microsecond=0) <= since
        return False


def not_modified(request: Request, etag: str, modified: dt.datetime | None) -> bool:
    """True when the client's copy (If-None-Match, else If-Modified-Since) is current."""
    return Asked.of(request).is_fresh(etag, modified)


def validators(
    etag: str, cache_control: str, modified: dt.datetime | None = None, vary: str | None = None
) -> Headers:
    """The headers every answer about these bytes carries, a 304's included."""
    headers = [(b"etag", etag.encode()), (b"cache-control", cache_control.encode())]
    if modified is not None:
        headers.append((b"last-modified", http_date(modified).encode()))
    if vary is not None:
        headers.append((b"vary", vary.encode()))
    return headers


def blob_answer(
    asked: Asked,
    store: BlobStore,
    key: str,
    *,
    etag: str,
    size: int | None,
    media_type: str,
    cache_control: str,
    modified: dt.datetime | None = None,
    coding: str = IDENTITY,
    vary: str | None = None,
    document: str | None = None,
    redirect: bool = False,
    accel: Accel | None = None,
    cached: bytes | None = None,
) -> Answer:
    """The blob under `key` (or `cached`, its bytes already in memory), a 304, or a HEAD's
    headers. With `redirect`, a backend with presigned URLs sends the client there instead
    (package files: the bytes never pass through Headwater); with `accel`, a front proxy sends
    a local file. `coding`: the blob is the body in that content coding of `document`
    (repodata.json's, negotiated: `vary`)."""
    headers = validators(etag, cache_control, modified, vary)
    if asked.is_fresh(etag, modified, document):
        return Answer(304, headers)
    typed = [(b"content-type", media_type.encode())]
    if coding != IDENTITY:
        typed.append((b"content-encoding", coding.encode()))
    if asked.head:
        length = [(b"content-length", str(size).encode())] if size is not None else []
        return Answer(200, [*headers, *typed, *length, (b"accept-ranges", b"bytes")])
    if cached is not None:
        length = [(b"content-length", str(len(cached)).encode()), (b"accept-ranges", b"bytes")]
        return Answer(200, [*headers, *typed, *length], cached)
    sendable = store.sendable(key, size or 0, redirect=redirect)
    if isinstance(sendable, Redirect):
        location = quote(sendable.url, safe=":/%#?=@[]!$&'()*+,;")
        return Answer(307, [*headers, (b"location", location.encode()), (b"content-length", b"0")])
    if isinstance(sendable, LocalFile) and accel is not None:
        moved = [(accel.header, accel.location(key)), (b"content-length", b"0")]
        return Answer(200, [*headers, *typed, *moved])
    length = [(b"content-length", str(sendable.size).encode()), (b"accept-ranges", b"bytes")]
    return Answer(200, [*headers, *typed, *length], sendable)


def blob_response(
    request: Request,
    store: BlobStore,
    key: str,
    *,
    etag: str,
    size: int | None,
    media_type: str,
    cache_control: str,
    modified: dt.datetime | None = None,
    coding: str = IDENTITY,
    vary: str | None = None,
    document: str | None = None,
    redirect: bool = False,
    accel: Accel | None = None,
) -> Response:
    """`blob_answer` for a routed handler."""
    asked = Asked.of(request)
    answer = blob_answer(
        asked,
        store,
        key,
        etag=etag,
        size=size,
        media_type=media_type,
        cache_control=cache_control,
        modified=modified,
        coding=coding,
        vary=vary,
        document=document,
        redirect=redirect,
        accel=accel,
    )
    return respond(asked, answer, media_type)


def respond(asked: Asked, answer: Answer, media_type: str) -> Response:
    """An answer as a routed handler's response. A range request of a local file is answered
    by Starlette's FileResponse (206), which the fast path leaves to the handlers."""
    if asked.ranged and answer.status == 200 and isinstance(answer.body, LocalFile):
        kept = {name.decode(): value.decode() for name, value in answer.headers}
        kept.pop("content-length", None)
        return FileResponse(answer.body.path, headers=kept, media_type=media_type)
    return AnswerResponse(answer)


def bytes_answer(
    asked: Asked, content: bytes, *, etag: str, media_type: str, cache_control: str
) -> Answer:
    headers = validators(etag, cache_control)
    if asked.is_fresh(etag, None):
        return Answer(304, headers)
    typed = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(content)).encode()),
    ]
    return Answer(200, [*headers, *typed], b"" if asked.head else content)


def bytes_response(
    request: Request, content: bytes, *, etag: str, media_type: str, cache_control: str
) -> Response:
    answer = bytes_answer(
        Asked.of(request), content, etag=etag, media_type=media_type, cache_control=cache_control
    )
    return AnswerResponse(answer)
