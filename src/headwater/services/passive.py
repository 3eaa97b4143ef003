"""Fetching a passive mirror's file the first time a client asks, once however many ask at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from headwater.db import Database
from headwater.errors import HeadwaterError, UpstreamError
from headwater.services import provenance
from headwater.services.downloads import ExpectedFile, check_length, verify
from headwater.storage import BlobStore, StagedBlob, content_key
from headwater.upstreams.bodies import raw_chunks
from headwater.upstreams.http import (
    REQUEST_FAILURES,
    HttpPolicy,
    TransientStatusError,
    describe_failure,
    describe_transport_error,
    raise_for_transient,
    retrying,
    shown_url,
    status_error,
    upstream_client,
)

_READ_SIZE = 1 << 20
_REMEMBERED = 100_000
_Key = tuple[str, str]  # (sha256, upstream): one fetch of one file from one upstream
log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Fetch:
    """One upstream fetch in flight. It writes to a staging file at the upstream's pace; each
    client reads that file by offset at its own pace, so no client can hold the fetch back."""

    expected: ExpectedFile
    started: asyncio.Future[None]
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    staged: StagedBlob | None = None
    written: int = 0  # bytes in the staging file that clients may read (written and flushed)
    committing: bool = False  # verified, being committed: the staging file may be gone
    verified: bool = False
    error: HeadwaterError | None = None
    task: asyncio.Task[None] | None = None  # held so the running fetch is not garbage-collected

    @property
    def finished(self) -> bool:
        return self.verified or self.error is not None

    def readable(self) -> int:
        """How far clients may read: never the last byte before the whole file is verified, so
        a client of a corrupt file never receives a complete body."""
        if self.verified:
            return self.written
        size = self.expected.size
        return min(self.written, size - 1) if size is not None else max(self.written - 1, 0)


class PassiveFetcher:
    """Streams a file from upstream to its clients while storing it, checksum verified.

    A fetch is of one file from one mirror's upstream: requests for it while it is in flight
    join it and read what is already there; a request after it finished is served from the
    blob store, whose bytes that upstream has now delivered (recorded with services/provenance,
    so that other processes know too). One fetch per file and upstream per process, however
    many clients ask at once. A fetch of the same digest from another upstream is not shared.
    """

    def __init__(
        self,
        store: BlobStore,
        policy: HttpPolicy,
        db: Database,
    ) -> None:
        self.store = store
        self.policy = policy
        self.db = db
        self._inflight: dict[_Key, _Fetch] = {}
        # Deliveries this process verified lately: a request that read "not delivered yet"
        # from the database just before a fetch finished is served from the store, not
        # fetched again.
        self._delivered: OrderedDict[_Key, None] = OrderedDict()
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._stack = contextlib.AsyncExitStack()

    async def close(self) -> None:
        for fetch in list(self._inflight.values()):
            if fetch.task is not None:
                fetch.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fetch.task
        await self._stack.aclose()

    async def _client(self, proxy: str | None) -> httpx.AsyncClient:
        if proxy not in self._clients:
            client = await self._stack.enter_async_context(
                upstream_client(self.policy, proxy=proxy)
            )
            self._clients[proxy] = client
        return self._clients[proxy]

    async def open(
        self, expected: ExpectedFile, proxy: str | None, upstream: str
    ) -> AsyncIterator[bytes] | None:
        """The file's bytes as they arrive from `upstream`, or None when that upstream's
        delivery of them is in the blob store by now.

        Raises UpstreamError, before any byte is sent, when the upstream refuses the file.
        """
        key = (expected.sha256, upstream)
        fetch = self._inflight.get(key)
        if fetch is None:
            # No await between this check and registering the fetch: no other request can
            # start a second fetch of the same file in between.
            if key in self._delivered:
                return None
            fetch = _Fetch(expected=expected, started=asyncio.get_running_loop().create_future())
            self._inflight[key] = fetch
            fetch.task = asyncio.create_task(self._fetch(fetch, proxy, key))
        await asyncio.shield(fetch.started)
        # The fetch may have ended while we waited. Until it starts committing (in a thread),
        # the staging file is there to open; once it does, the request waits for the outcome.
        if fetch.committing and not fetch.finished:
            async with fetch.changed:
                await fetch.changed.wait_for(lambda: fetch.finished)
        if fetch.error is not None:
            raise fetch.error
        if fetch.verified or fetch.committing or fetch.staged is None:
            return None  # the blob store has it
        # The descriptor stays valid after the commit renames or removes the staging file.
        descriptor = os.open(fetch.staged.path, os.O_RDONLY)
        return self._read(fetch, descriptor)

    async def _read(self, fetch: _Fetch, descriptor: int) -> AsyncIterator[bytes]:
        offset = 0

        def more_to_do() -> bool:
            return fetch.readable() > offset or fetch.finished

        try:
            while True:
                async with fetch.changed:
                    await fetch.changed.wait_for(more_to_do)
                if fetch.error is not None:
                    raise fetch.error
                limit = fetch.readable()
                while offset < limit:
                    size = min(limit - offset, _READ_SIZE)
                    chunk = await asyncio.to_thread(os.pread, descriptor, size, offset)
                    if not chunk:
                        raise UpstreamError(f"the staged copy of {fetch.expected.filename} shrank")
                    offset += len(chunk)
                    yield chunk
                if fetch.verified and offset >= fetch.written:
                    return
        finally:
            os.close(descriptor)

    async def _fetch(self, fetch: _Fetch, proxy: str | None, key: _Key) -> None:
        expected = fetch.expected
        try:
            client = await self._client(proxy)
            staged = fetch.staged = await asyncio.to_thread(self.store.stage)
            try:
                await self._stream_upstream(client, fetch, staged)
                verify(staged, expected)
                fetch.committing = True
                await asyncio.to_thread(self.store.commit, staged, content_key(expected.sha256))
            finally:
                if not staged.committed:
                    await asyncio.to_thread(staged.discard)
            self._remember(key)
            fetch.verified = True
        except HeadwaterError as error:
            fetch.error = error
        except asyncio.CancelledError:
            fetch.error = UpstreamError(f"fetching {expected.filename} was cancelled")
            raise
        except Exception as error:  # keep waiting clients from hanging on a bug
            fetch.error = UpstreamError(f"fetching {expected.filename} failed: {error}")
        finally:
            self._inflight.pop(key, None)
            if not fetch.started.done():
                fetch.started.set_exception(fetch.error or UpstreamError("the fetch ended early"))
                fetch.started.exception()  # retrieved: the waiters each get it from shield
            async with fetch.changed:
                fetch.changed.notify_all()
        if fetch.verified:
            await self._record(key, fetch.written)

    def _remember(self, key: _Key) -> None:
        self._delivered[key] = None
        self._delivered.move_to_end(key)
        while len(self._delivered) > _REMEMBERED:
            self._delivered.popitem(last=False)

    async def _record(self, key: _Key, size: int) -> None:
        """Tell the database, after the clients have their bytes: the next request, in any
        process, is served from the store."""
        sha256, upstream = key
        try:
            await asyncio.to_thread(provenance.record_now, self.db, [(sha256, upstream, size)])
        except Exception:  # the bytes are served; the next process just fetches them again
            log.exception(
                "recording the delivery of %s from %s failed", sha256, shown_url(upstream)
            )

    async def _append(self, fetch: _Fetch, staged: StagedBlob, chunks: list[bytes]) -> None:
        """Write and flush in a thread; then clients may read up to the new end."""
        if chunks:
            await asyncio.to_thread(_write_flushed, staged, chunks)
        fetch.written = staged.size
        async with fetch.changed:
            fetch.changed.notify_all()

    async def _stream_upstream(
        self, client: httpx.AsyncClient, fetch: _Fetch, staged: StagedBlob
    ) -> None:
        expected = fetch.expected
        try:
            async for attempt in retrying(self.policy):
                with attempt:
                    request = client.build_request("GET", expected.url)
                    response = await client.send(request, stream=True)
                    try:
                        raise_for_transient(response)
                    except TransientStatusError:
                        await response.aclose()
                        raise
                    break
        except REQUEST_FAILURES as error:
            raise describe_failure(error, expected.url, self.policy.attempts) from None
        try:
            if response.status_code != 200:
                raise status_error(response)
            fetch.started.set_result(None)
            writing: asyncio.Task[None] | None = None
            batch: list[bytes] = []
            received = 0
            try:
                async for chunk in raw_chunks(response, self.policy.timeout):
                    received += len(chunk)
                    check_length(received, expected)
                    batch.append(chunk)
                    # One write in flight: what arrives meanwhile is written with the next.
                    if writing is None or writing.done():
                        if writing is not None:
                            await writing
                        writing = asyncio.create_task(self._append(fetch, staged, batch))
                        batch = []
            finally:
                if writing is not None:  # never discard the file under a write
                    await asyncio.gather(writing, return_exceptions=True)
            if writing is not None:
                await writing
            await self._append(fetch, staged, batch)
        except httpx.HTTPError as error:
            raise UpstreamError(
                f"reading {expected.url} failed midway: {describe_transport_error(error)}"
            ) from None
        finally:
            await response.aclose()


def _write_flushed(staged: StagedBlob, chunks: list[bytes]) -> None:
    for chunk in chunks:
        staged.write(chunk)
    staged.flush()  # clients read the staging file as it grows
