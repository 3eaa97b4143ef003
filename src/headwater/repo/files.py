"""Serving a package file's bytes, conda or PyPI: from the blob store, or fetched from upstream
the first time a client asks (passive mirrors)."""

from __future__ import annotations

import logging
from functools import partial

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Send

from headwater.errors import HeadwaterError, PackageFileNotFoundError
from headwater.repo.access import cache_control
from headwater.repo.responses import IMMUTABLE_CACHE_CONTROL, Asked, blob_answer, respond
from headwater.repo.sending import Accel, Answer, AnswerResponse
from headwater.resources import Resources
from headwater.services.access.decisions import ChannelRef
from headwater.services.packages import ServableFile
from headwater.storage import content_key

PACKAGE = "application/octet-stream"
log = logging.getLogger(__name__)


def etag_of(sha256: str) -> str:
    return f'"{sha256}"'


def accel_of(resources: Resources) -> Accel | None:
    """The front proxy that sends blob files, when one is set (HEADWATER_ACCEL_*)."""
    settings = resources.settings
    if settings.accel_redirect_prefix is None or resources.store.backend != "local":
        return None
    return Accel(settings.accel_redirect_prefix, settings.accel_header.lower().encode())


def file_answer(
    asked: Asked,
    resources: Resources,
    sha256: str,
    size: int | None,
    public: bool,
    *,
    media_type: str = PACKAGE,
    cached: bytes | None = None,
) -> Answer:
    """A stored package file (or its 304, or a HEAD's headers): the routed handler's and the
    fast path's answer alike."""
    return blob_answer(
        asked,
        resources.store,
        content_key(sha256),
        etag=etag_of(sha256),
        size=size,
        media_type=media_type,
        cache_control=f"{'public' if public else 'private'}, {IMMUTABLE_CACHE_CONTROL}",
        redirect=resources.settings.blob_redirects,
        accel=accel_of(resources),
        cached=cached,
    )


async def serve_file(
    request: Request,
    resources: Resources,
    channel: ChannelRef,
    file: ServableFile,
    media_type: str = PACKAGE,
) -> Response:
    key = content_key(file.sha256)
    etag = etag_of(file.sha256)
    asked = Asked.of(request)
    if asked.is_fresh(etag, None):
        return AnswerResponse(file_answer(asked, resources, file.sha256, None, channel.public))
    stored = await run_in_threadpool(resources.store.stat, key)
    stored_size = stored.size if stored is not None else None
    # Stored bytes are this file's only if its upstream delivered them (or it was uploaded).
    usable = stored_size is not None and file.delivered
    if not usable and (file.source_url is None or file.upstream is None):
        raise PackageFileNotFoundError(
            f"the bytes of {file.filename} are missing from the blob store"
        )
    stream = None
    if not usable and request.method == "GET":
        assert file.upstream is not None
        stream = await resources.fetcher.open(file.expected(), file.proxy, file.upstream)
        if stream is None:  # delivered meanwhile to another request: stored now
            stored = await run_in_threadpool(resources.store.stat, key)
            if stored is None:
                raise PackageFileNotFoundError(f"the bytes of {file.filename} went missing")
            stored_size = stored.size
    if stream is None:  # usable, delivered meanwhile to another request, or a HEAD
        size = stored_size if usable or request.method == "GET" else file.size
        answer_of = partial(file_answer, asked, resources, file.sha256, size, channel.public)
        if resources.settings.blob_redirects:  # presigning may fetch credentials: a thread
            answer = await run_in_threadpool(answer_of, media_type=media_type)
        else:
            answer = answer_of(media_type=media_type)
        return respond(asked, answer, media_type)
    caching = cache_control(channel, IMMUTABLE_CACHE_CONTROL)
    headers = {"ETag": etag, "Cache-Control": caching}
    if file.size is not None:
        headers["Content-Length"] = str(file.size)
    return FetchedResponse(stream, headers=headers, media_type=media_type)


class FetchedResponse(StreamingResponse):
    """A file streamed while it is fetched from upstream. A fetch that fails midway (the bytes
    do not match the index, the upstream stops) ends the response without its last message:
    the server cuts the connection, so the client never takes a short body for the file, and
    the log gets one line saying why, not a traceback anyone could fill it with."""

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                assert isinstance(chunk, bytes)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except HeadwaterError as error:
            log.warning("a passive fetch failed while it was served: %s", error.message)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
