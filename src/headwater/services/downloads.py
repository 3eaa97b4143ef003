"""Downloading package files into the blob store, verified against the index while streaming."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from headwater.db import Database
from headwater.errors import ChecksumMismatchError, UpstreamError
from headwater.services import provenance
from headwater.services.progress import RunProgress
from headwater.storage import BlobStore, StagedBlob, content_key
from headwater.upstreams.bodies import raw_chunks
from headwater.upstreams.http import (
    HttpPolicy,
    TransientStatusError,
    describe_failure,
    raise_for_transient,
    retrying,
    status_error,
)


@dataclass(frozen=True)
class ExpectedFile:
    """A file as an index describes it: what the downloaded bytes must match."""

    filename: str
    url: str
    sha256: str
    size: int | None  # None when the index does not say (PEP 503 HTML pages)
    limit: int | None = None  # the most it may be when its size is not known


def verify(staged: StagedBlob, expected: ExpectedFile) -> None:
    """Raise ChecksumMismatchError unless the staged bytes are exactly the expected file."""
    size_differs = expected.size is not None and staged.size != expected.size
    if size_differs or staged.sha256 != expected.sha256:
        promised = f" and {expected.size} bytes" if expected.size is not None else ""
        raise ChecksumMismatchError(
            f"checksum mismatch for {expected.filename} from {expected.url}: the index says "
            f"sha256 {expected.sha256}{promised}, the download has sha256 "
            f"{staged.sha256} and {staged.size} bytes"
        )


def check_length(staged: StagedBlob, expected: ExpectedFile) -> None:
    """Fail as soon as a download grows past the size the index promised, or past its limit."""
    if expected.size is not None and staged.size > expected.size:
        raise ChecksumMismatchError(
            f"checksum mismatch for {expected.filename} from {expected.url}: the index says "
            f"{expected.size} bytes, the download is already longer"
        )
    if expected.limit is not None and staged.size > expected.limit:
        raise UpstreamError(
            f"{expected.filename} from {expected.url} is larger than {expected.limit >> 20} MiB; "
            "refusing it"
        )


async def download_to_store(
    client: httpx.AsyncClient,
    policy: HttpPolicy,
    store: BlobStore,
    expected: ExpectedFile,
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Fetch `expected` into the store under its sha256; returns the bytes downloaded.

    Transient failures are retried from the start; a checksum mismatch is not retried, as a
    corrupt upstream file stays corrupt.
    """
    try:
        async for attempt in retrying(policy):
            with attempt:
                return await _download_once(client, policy, store, expected, on_bytes)
    except (httpx.TransportError, TransientStatusError) as error:
        raise describe_failure(error, expected.url, policy.attempts) from None
    raise AssertionError("unreachable")


async def _download_once(
    client: httpx.AsyncClient,
    policy: HttpPolicy,
    store: BlobStore,
    expected: ExpectedFile,
    on_bytes: Callable[[int], None] | None,
) -> int:
    with store.stage() as staged:
        async with client.stream("GET", expected.url) as response:
            raise_for_transient(response)
            if response.status_code != 200:
                raise status_error(response)
            async for chunk in raw_chunks(response, policy.timeout):
                staged.write(chunk)
                check_length(staged, expected)
                if on_bytes is not None:
                    on_bytes(len(chunk))
        verify(staged, expected)
        store.commit(staged, content_key(expected.sha256))
        return staged.size


class Downloader:
    """Brings one run's files into the blob store, each verified against its index. A file is
    fetched unless the run's upstream has delivered those bytes before (services/provenance):
    bytes stored for another channel are never taken on a digest's word."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: HttpPolicy,
        store: BlobStore,
        db: Database,
        progress: RunProgress,
        upstream: str,
    ) -> None:
        self.client = client
        self.policy = policy
        self.store = store
        self.db = db
        self.progress = progress
        self.upstream = upstream
        self.proven: set[str] = set()  # digests the upstream delivered
        self._asked: set[str] = set()  # digests looked up in the database

    async def fetch(self, expected: ExpectedFile) -> None:
        """The file in the store, fetched unless the upstream delivered its bytes before (a
        run reading a file's metadata before it downloads the rest: counted the same)."""
        if await asyncio.to_thread(self._missing, [expected]):
            await self._download(expected)
            self.progress.count("downloaded")

    async def fetch_all(self, files: Iterable[ExpectedFile]) -> None:
        """Every file whose bytes the upstream has not delivered (or the store lost),
        `policy.concurrency` at a time; the first failure stops the rest and is raised."""
        wanted = await asyncio.to_thread(self._missing, list(files))
        expected_bytes = sum(expected.size or 0 for expected in wanted)
        self.progress.step("downloading", total=len(wanted), bytes_total=expected_bytes)
        queue = iter(wanted)

        async def download_worker() -> None:
            for expected in queue:
                await self._download(expected)
                self.progress.count("downloaded")
                self.progress.advance()

        count = min(self.policy.concurrency, len(wanted))
        workers = [asyncio.create_task(download_worker()) for _ in range(count)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        self.progress.log(f"downloaded {len(wanted)} files")

    def _missing(self, files: list[ExpectedFile]) -> list[ExpectedFile]:
        """The files to fetch, one per digest: those the upstream never delivered, or whose
        bytes are gone from the store. Runs in a thread: it reads the database and stats."""
        unasked = {f.sha256 for f in files} - self._asked - self.proven
        if unasked:
            with self.db.reading() as session:
                self.proven |= provenance.proven(session, self.upstream, unasked)
            self._asked |= unasked
        wanted: dict[str, ExpectedFile] = {}
        for expected in files:
            digest = expected.sha256
            if digest in wanted:
                continue
            if digest not in self.proven or not self.store.has_content(digest):
                wanted[digest] = expected
        return list(wanted.values())

    async def _download(self, expected: ExpectedFile) -> None:
        await download_to_store(
            self.client,
            self.policy,
            self.store,
            expected,
            on_bytes=lambda n: self.progress.count("bytes_downloaded", n),
        )
        self.proven.add(expected.sha256)
        self.progress.delivered(expected.sha256, self.upstream)
