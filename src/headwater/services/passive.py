"""Fetching a passive mirror's file the first time a client asks, once however many ask at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from headwater.errors import HeadwaterError, UpstreamError
from headwater.services.downloads import ExpectedFile, check_length, verify
from headwater.storage import BlobStore, StagedBlob, content_key
from headwater.upstreams.http import (
    HttpPolicy,
    TransientStatusError,
    describe_failure,
    raise_for_transient,
    retrying,
    status_error,
    upstream_client,
)

_QUEUE_CHUNKS = 64  # a slow client holds back the fetch rather than fill memory


class _Verified:
    pass


VERIFIED = _Verified()


@dataclass
class _Fetch:
    """One upstream fetch in flight, with the clients streaming it."""

    started: asyncio.Future[None]
    task: asyncio.Task[None] | None = None  # held so the running fetch is not garbage-collected
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: HeadwaterError | None = None
    subscribers: list[asyncio.Queue[bytes | _Verified | HeadwaterError]] = field(
        default_factory=list
    )


class PassiveFetcher:
    """Streams a file from upstream to its first client while storing it, checksum verified.

    The last chunk is held back until the whole file matched its index: a client of a corrupt
    file never receives a complete body, and nothing is stored. Clients asking while a fetch
    is in flight wait for it and are then served from the blob store.
    """

    def __init__(
        self,
        store: BlobStore,
        policy: HttpPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.transport = transport
        self._inflight: dict[str, _Fetch] = {}
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._stack = contextlib.AsyncExitStack()
        self.upstream_fetches = 0

    async def close(self) -> None:
        for fetch in list(self._inflight.values()):
            await fetch.done.wait()
        await self._stack.aclose()

    async def _client(self, proxy: str | None) -> httpx.AsyncClient:
        if proxy not in self._clients:
            client = await self._stack.enter_async_context(
                upstream_client(self.policy, proxy=proxy, transport=self.transport)
            )
            self._clients[proxy] = client
        return self._clients[proxy]

    async def open(self, expected: ExpectedFile, proxy: str | None) -> AsyncIterator[bytes] | None:
        """Start the fetch and return its stream, or wait for the one in flight.

        None means the bytes are now in the blob store: serve them from there. Raises
        UpstreamError before any byte is sent when the upstream refuses.
        """
        fetch = self._inflight.get(expected.sha256)
        if fetch is not None:
            await fetch.done.wait()
            if fetch.error is not None:
                raise fetch.error
            return None
        # A fetch may have finished since the caller looked in the store; with no await between
        # this check and registering a new fetch, no other request can slip in between.
        if self.store.has_content(expected.sha256):
            return None
        loop = asyncio.get_running_loop()
        fetch = _Fetch(started=loop.create_future())
        queue: asyncio.Queue[bytes | _Verified | HeadwaterError] = asyncio.Queue(_QUEUE_CHUNKS)
        fetch.subscribers.append(queue)
        self._inflight[expected.sha256] = fetch
        fetch.task = asyncio.create_task(self._fetch(fetch, expected, proxy))
        await fetch.started  # raises when the upstream refused
        return self._follow(fetch, queue)

    async def _follow(
        self, fetch: _Fetch, queue: asyncio.Queue[bytes | _Verified | HeadwaterError]
    ) -> AsyncIterator[bytes]:
        held: bytes | None = None
        try:
            while True:
                item = await queue.get()
                if isinstance(item, HeadwaterError):
                    raise item
                if isinstance(item, _Verified):
                    if held is not None:
                        yield held
                    return
                if held is not None:
                    yield held
                held = item
        finally:
            if queue in fetch.subscribers:
                fetch.subscribers.remove(queue)
            while not queue.empty():  # unblock a fetch waiting to hand this client a chunk
                queue.get_nowait()

    async def _publish(self, fetch: _Fetch, item: bytes | _Verified | HeadwaterError) -> None:
        for queue in list(fetch.subscribers):
            await queue.put(item)

    async def _fetch(self, fetch: _Fetch, expected: ExpectedFile, proxy: str | None) -> None:
        self.upstream_fetches += 1
        try:
            client = await self._client(proxy)
            with self.store.stage() as staged:
                await self._stream_upstream(client, fetch, expected, staged)
                verify(staged, expected)
                self.store.commit(staged, content_key(expected.sha256))
            await self._publish(fetch, VERIFIED)
        except HeadwaterError as error:
            await self._fail(fetch, error)
        except Exception as error:  # keep waiting clients from hanging on a bug
            await self._fail(fetch, UpstreamError(f"fetching {expected.filename} failed: {error}"))
        finally:
            fetch.done.set()
            self._inflight.pop(expected.sha256, None)

    async def _fail(self, fetch: _Fetch, error: HeadwaterError) -> None:
        fetch.error = error
        if not fetch.started.done():
            fetch.started.set_exception(error)
        else:
            await self._publish(fetch, error)

    async def _stream_upstream(
        self, client: httpx.AsyncClient, fetch: _Fetch, expected: ExpectedFile, staged: StagedBlob
    ) -> None:
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
        except (httpx.TransportError, TransientStatusError) as error:
            raise describe_failure(error, expected.url, self.policy.attempts) from None
        try:
            if response.status_code != 200:
                raise status_error(response)
            fetch.started.set_result(None)
            async for chunk in response.aiter_bytes():
                staged.write(chunk)
                check_length(staged, expected)
                await self._publish(fetch, chunk)
        except httpx.HTTPError as error:
            raise UpstreamError(f"reading {expected.url} failed midway: {error}") from None
        finally:
            await response.aclose()
