"""HTTP responses for repository files: validators, conditional requests, HEAD, and bytes."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from headwater.storage import BlobStore

# Without "public" or "private": the channel's privacy decides which (ChannelAccess).
INDEX_CACHE_CONTROL = "no-cache"  # revalidate every time: a run's publish shows at once
IMMUTABLE_CACHE_CONTROL = "max-age=31536000, immutable"


def http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


def not_modified(request: Request, etag: str, modified: dt.datetime | None) -> bool:
    """True when the client's copy (If-None-Match, else If-Modified-Since) is current."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since and modified is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return modified.replace(microsecond=0) <= since
    return False


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
) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if modified is not None:
        headers["Last-Modified"] = http_date(modified)
    if not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        if size is not None:
            headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers, media_type=media_type)
    path = store.local_path(key)
    if path is not None:
        return FileResponse(path, headers=headers, media_type=media_type)
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(store.iter_chunks(key), headers=headers, media_type=media_type)


def bytes_response(
    request: Request, content: bytes, *, etag: str, media_type: str, cache_control: str
) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if not_modified(request, etag, None):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(content))
        return Response(status_code=200, headers=headers, media_type=media_type)
    return Response(content, headers=headers, media_type=media_type)
