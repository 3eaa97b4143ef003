"""Reading what an upstream sends: its bytes as they came, at a pace that shows it is still
sending, and decoded (gzip, deflate) only by Headwater, within the limit of what is read.

httpx would decode a response's Content-Encoding itself, a network read at a time, and one
read of 64 KiB can decode to gigabytes before any limit is looked at. So bodies are read raw:
files as stored bytes (their digest decides), index documents decoded here, off the event
loop, never past their limit. A per-read timeout alone lets a byte a minute keep a run, a
preview or a shutdown waiting for ever, so each transfer must also keep a minimum pace.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator

import httpx

from headwater.errors import UpstreamError, UpstreamFormatError

# What index requests accept: the encodings decoded here. Files are asked for as they are.
DOCUMENT_ENCODINGS = "gzip, deflate"
MIN_BYTES_PER_WINDOW = 16 << 10
_DECODE_STEP = 1 << 20


class Pace:
    """Fails a transfer that brings fewer than MIN_BYTES_PER_WINDOW bytes in a `window` of
    seconds (the HTTP timeout): a stalled read times out on its own, a drip does not."""

    def __init__(self, url: str, window: float) -> None:
        self.url = url
        self.window = window
        self.started = time.monotonic()
        self.received = 0

    def observe(self, count: int) -> None:
        self.received += count
        now = time.monotonic()
        if now - self.started < self.window:
            return
        if self.received < MIN_BYTES_PER_WINDOW:
            raise UpstreamError(
                f"{self.url} sent {self.received} bytes in {now - self.started:.0f} s, less than "
                f"{MIN_BYTES_PER_WINDOW >> 10} KiB per {self.window:g} s; giving up on it"
            )
        self.started, self.received = now, 0


async def raw_chunks(response: httpx.Response, window: float) -> AsyncIterator[bytes]:
    """The body's bytes as they came over the wire, at a pace that shows the sender is there."""
    pace = Pace(str(response.request.url), window)
    async for chunk in response.aiter_raw():
        pace.observe(len(chunk))
        yield chunk


async def read_document(response: httpx.Response, window: float, limit: int) -> bytearray:
    """An index document (repodata, a project page, core metadata), at most `limit` bytes once
    decoded, whatever it was sent as."""
    url = str(response.request.url)
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise UpstreamFormatError(f"{url} came as {encoding!r}, which was not asked for")
    raw = bytearray()
    async for chunk in raw_chunks(response, window):
        raw += chunk
        if len(raw) > limit:
            raise too_large(url, limit)
    if encoding == "identity":
        return raw
    return await asyncio.to_thread(_decode, raw, url, limit)


def _decode(raw: bytearray, url: str, limit: int) -> bytearray:
    """gzip or zlib, in steps of a mebibyte, refused as soon as it outgrows `limit`."""
    decoder = zlib.decompressobj(wbits=47)  # 32 + 15: a gzip or a zlib header, told apart
    body = bytearray()
    data: bytes | bytearray = raw
    try:
        while data:
            body += decoder.decompress(data, _DECODE_STEP)
            if len(body) > limit:
                raise too_large(url, limit)
            data = decoder.unconsumed_tail
    except zlib.error as error:
        raise UpstreamFormatError(f"{url}: its compressed body is broken ({error})") from None
    return body


def too_large(url: str, limit: int) -> UpstreamError:
    return UpstreamError(f"{url} is larger than {limit >> 20} MiB; refusing it")
