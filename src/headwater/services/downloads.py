"""Downloading package files into the blob store, verified against the index while streaming."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import httpx

from headwater.db import Database
from headwater.errors import ChecksumMismatchError, UpstreamError, UpstreamFileMissingError
from headwater.models import OnMissingFile
from headwater.services import blobs, provenance
from headwater.services.blobs import Stored
from headwater.services.missing_files import MissingFile
from headwater.services.progress import RunProgress
from headwater.storage import BlobStore, StagedBlob, content_key
from headwater.upstreams.bodies import raw_chunks
from headwater.upstreams.http import (
    REQUEST_FAILURES,
    HttpPolicy,
    describe_failure,
    raise_for_transient,
    retrying,
    status_error,
)

SMALL_FILE = 1 << 20  # files the index says are this small are gathered in memory
WRITE_BATCH = 1 << 20  # bytes handed to the writing thread at a time


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


def check_length(size: int, expected: ExpectedFile) -> None:
    """Fail as soon as a download grows past the size the index promised, or past its limit."""
    if expected.size is not None and size > expected.size:
        raise ChecksumMismatchError(
            f"checksum mismatch for {expected.filename} from {expected.url}: the index says "
            f"{expected.size} bytes, the download is already longer"
        )
    if expected.limit is not None and size > expected.limit:
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
    except REQUEST_FAILURES as error:
        raise describe_failure(error, expected.url, policy.attempts) from None
    raise AssertionError("unreachable")


async def _download_once(
    client: httpx.AsyncClient,
    policy: HttpPolicy,
    store: BlobStore,
    expected: ExpectedFile,
    on_bytes: Callable[[int], None] | None,
) -> int:
    async with client.stream("GET", expected.url) as response:
        raise_for_transient(response)
        if response.status_code != 200:
            raise status_error(response)
        body = raw_chunks(response, policy.timeout)
        if expected.size is not None and expected.size <= SMALL_FILE:
            return await _store_small(store, expected, body, on_bytes)
        return await _store_streamed(store, expected, body, on_bytes)


async def _store_small(
    store: BlobStore,
    expected: ExpectedFile,
    body: AsyncIterator[bytes],
    on_bytes: Callable[[int], None] | None,
) -> int:
    """A file the index says is small: gathered in memory, then hashed, checked and stored in
    one trip to a thread."""
    content = bytearray()
    async for chunk in body:
        content += chunk
        check_length(len(content), expected)
        if on_bytes is not None:
            on_bytes(len(chunk))
    await asyncio.to_thread(_put_verified, store, expected, bytes(content))
    return len(content)


def _put_verified(store: BlobStore, expected: ExpectedFile, content: bytes) -> None:
    digest = hashlib.sha256(content).hexdigest()
    if len(content) != expected.size or digest != expected.sha256:
        raise ChecksumMismatchError(
            f"checksum mismatch for {expected.filename} from {expected.url}: the index says "
            f"sha256 {expected.sha256} and {expected.size} bytes, the download has sha256 "
            f"{digest} and {len(content)} bytes"
        )
    store.put(content_key(expected.sha256), content)


async def _store_streamed(
    store: BlobStore,
    expected: ExpectedFile,
    body: AsyncIterator[bytes],
    on_bytes: Callable[[int], None] | None,
) -> int:
    """A large file (or one of unknown size): staged on disk as it arrives, never whole in
    memory. Writing and hashing run in a thread, a batch at a time, while the next batch is
    read from the network; the commit (a rename, or an upload to S3) runs in a thread too."""
    staged = await asyncio.to_thread(store.stage)
    writing: asyncio.Future[None] | None = None
    try:
        batch: list[bytes] = []
        batched = received = 0
        async for chunk in body:
            received += len(chunk)
            check_length(received, expected)
            if on_bytes is not None:
                on_bytes(len(chunk))
            batch.append(chunk)
            batched += len(chunk)
            if batched >= WRITE_BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(_write, staged, batch))
                batch, batched = [], 0
        if writing is not None:
            await writing
        await asyncio.to_thread(_finish, store, staged, batch, expected)
        return staged.size
    finally:
        if writing is not None:  # never discard the file under a write
            await asyncio.gather(writing, return_exceptions=True)
        if not staged.committed:
            await asyncio.to_thread(staged.discard)


def _write(staged: StagedBlob, chunks: list[bytes]) -> None:
    for chunk in chunks:
        staged.write(chunk)


def _finish(
    store: BlobStore, staged: StagedBlob, rest: list[bytes], expected: ExpectedFile
) -> None:
    _write(staged, rest)
    verify(staged, expected)
    store.commit(staged, content_key(expected.sha256))


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

    async def fetch_all(
        self, files: Iterable[ExpectedFile], on_missing: OnMissingFile = OnMissingFile.fail
    ) -> list[MissingFile]:
        """Every file whose bytes the upstream has not delivered (or the store lost),
        `policy.concurrency` at a time; the first failure stops the rest and is raised. A
        file the upstream answers 404 or 410 for is, with `on_missing` skip, answered among
        the missing instead, with a warning in the run's log."""
        wanted = await asyncio.to_thread(self._missing, list(files))
        expected_bytes = sum(expected.size or 0 for expected in wanted)
        self.progress.step("downloading", total=len(wanted), bytes_total=expected_bytes)
        queue = iter(wanted)
        missing: list[MissingFile] = []

        async def download_worker() -> None:
            for expected in queue:
                try:
                    await self._download(expected)
                except UpstreamFileMissingError as error:
                    missing.append(self._missing_file(expected, error, on_missing))
                else:
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
        self.progress.log(f"downloaded {len(wanted) - len(missing)} files")
        return missing

    def _missing_file(
        self, expected: ExpectedFile, error: UpstreamFileMissingError, on_missing: OnMissingFile
    ) -> MissingFile:
        """The file upstream could not deliver, skipped with a warning; or, with on_missing
        fail, the error that fails the run."""
        if on_missing == OnMissingFile.fail:
            raise UpstreamFileMissingError(
                f"{error.message}, a file its index lists (on_missing_file is fail: the "
                "channel keeps its previous revision)",
                error.url,
                error.upstream_status,
            ) from None
        status = error.upstream_status
        missing = MissingFile(expected.filename, expected.url, expected.sha256, status)
        self.progress.log(missing.message, "warning")
        return missing

    def _missing(self, files: list[ExpectedFile]) -> list[ExpectedFile]:
        """The files to fetch, one per digest: those the upstream never delivered, or whose
        bytes are gone from the store. The bytes a run will use are touched (services/blobs),
        so no collection takes them before the run publishes. Runs in a thread."""
        unasked = {f.sha256 for f in files} - self._asked - self.proven
        if unasked:
            with self.db.reading() as session:
                self.proven |= provenance.proven(session, self.upstream, unasked)
            self._asked |= unasked
        unique = {expected.sha256: expected for expected in files}
        reusable = [
            Stored.content(digest, expected.size or 0)
            for digest, expected in unique.items()
            if digest in self.proven
        ]
        held = blobs.held(self.db, self.store, reusable) if reusable else set()
        return [expected for digest, expected in unique.items() if content_key(digest) not in held]

    async def _download(self, expected: ExpectedFile) -> None:
        size = await download_to_store(
            self.client,
            self.policy,
            self.store,
            expected,
            on_bytes=lambda n: self.progress.count("bytes_downloaded", n),
        )
        self.proven.add(expected.sha256)
        self.progress.delivered(expected.sha256, self.upstream, size)
