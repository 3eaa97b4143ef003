"""How a repository answer reaches the client: its status and headers, then its body from
memory, from a file on disk, as chunks of a remote store, or not at all when a front proxy
sends the file (X-Accel-Redirect, X-Sendfile).

The fast path (repo/fast_path.py) and the routed handlers build the same `Answer` with the same
functions (repo/responses.py), so both send the same headers; the handlers wrap it in an
`AnswerResponse`.

A file goes out with the ASGI `http.response.pathsend` extension where the server has it
(Granian); elsewhere (uvicorn) it is read in large pieces, each one thread hop, instead of
Starlette's 64 KiB ones: a 1 MB package is one read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from headwater.storage import Chunks, LocalFile

# A file up to this size is read whole in one thread hop; a larger one in pieces of this size.
READ_SIZE = 4 << 20
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Accel:
    """A front proxy sends blob files itself: the answer names the blob's internal location
    (`prefix` + its key) in `header` and carries no body (docs/operations.md)."""

    prefix: str
    header: bytes

    def location(self, key: str) -> bytes:
        return (self.prefix + key).encode()


@dataclass
class Answer:
    status: int
    headers: Headers  # names in lower case
    body: bytes | LocalFile | Chunks = b""


async def send_answer(
    answer: Answer,
    scope: Scope,
    receive: Receive,
    send: Send,
    added: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """`added`: headers sent after the answer's own (the security headers, where no
    middleware adds them)."""
    headers = [*answer.headers, *added] if added else answer.headers
    start = {"type": "http.response.start", "status": answer.status, "headers": headers}
    await send(start)
    body = answer.body
    if isinstance(body, bytes):
        await send({"type": "http.response.body", "body": body})
    elif isinstance(body, LocalFile):
        if "http.response.pathsend" in scope.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": str(body.path)})
        else:
            await _send_file(body.path, body.size, receive, send)
    else:
        await _send_chunks(body, receive, send)


async def _send_file(path: Path, size: int, receive: Receive, send: Send) -> None:
    if size <= READ_SIZE:
        data = await run_in_threadpool(path.read_bytes)
        await send({"type": "http.response.body", "body": data})
        return
    stream: BinaryIO = await run_in_threadpool(path.open, "rb")
    try:
        async with _until_disconnected(receive) as gone:
            left = size
            while left > 0 and not gone.is_set():
                chunk = await run_in_threadpool(stream.read, min(READ_SIZE, left))
                if not chunk:
                    raise OSError(f"{path} ended {left} bytes short of its size")
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
    finally:
        stream.close()


async def _send_chunks(chunks: Chunks, receive: Receive, send: Send) -> None:
    iterator = chunks.chunks
    async with _until_disconnected(receive) as gone:
        while not gone.is_set():
            chunk = await run_in_threadpool(next, iterator, None)
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    close = getattr(iterator, "close", None)
    if close is not None:
        await run_in_threadpool(close)
    await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def _until_disconnected(receive: Receive):  # type: ignore[no-untyped-def]
    """An event set once the client went away, so a long body stops being read (servers of
    ASGI spec < 2.4 do not raise on sending to a closed connection)."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.ensure_future(watch())
    try:
        yield gone
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher


class AnswerResponse(Response):
    """An `Answer` as the framework's response (a routed handler's)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.status_code = answer.status
        self.background = None
        self.body = b""
        self.raw_headers = answer.headers  # the same list: `headers[...] = ...` adds to it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_answer(self.answer, scope, receive, send)
