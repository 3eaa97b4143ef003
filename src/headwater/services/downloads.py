"""Downloading package files into the blob store, verified against the index while streaming."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from headwater.errors import ChecksumMismatchError
from headwater.storage import BlobStore, StagedBlob, content_key
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
    size: int


def verify(staged: StagedBlob, expected: ExpectedFile) -> None:
    """Raise ChecksumMismatchError unless the staged bytes are exactly the expected file."""
    if staged.size != expected.size or staged.sha256 != expected.sha256:
        raise ChecksumMismatchError(
            f"checksum mismatch for {expected.filename} from {expected.url}: the index says "
            f"sha256 {expected.sha256} and {expected.size} bytes, the download has sha256 "
            f"{staged.sha256} and {staged.size} bytes"
        )


def check_length(staged: StagedBlob, expected: ExpectedFile) -> None:
    """Fail as soon as a download grows past the size the index promised."""
    if staged.size > expected.size:
        raise ChecksumMismatchError(
            f"checksum mismatch for {expected.filename} from {expected.url}: the index says "
            f"{expected.size} bytes, the download is already longer"
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
                return await _download_once(client, store, expected, on_bytes)
    except (httpx.TransportError, TransientStatusError) as error:
        raise describe_failure(error, expected.url, policy.attempts) from None
    raise AssertionError("unreachable")


async def _download_once(
    client: httpx.AsyncClient,
    store: BlobStore,
    expected: ExpectedFile,
    on_bytes: Callable[[int], None] | None,
) -> int:
    with store.stage() as staged:
        async with client.stream("GET", expected.url) as response:
            raise_for_transient(response)
            if response.status_code != 200:
                raise status_error(response)
            async for chunk in response.aiter_bytes():
                staged.write(chunk)
                check_length(staged, expected)
                if on_bytes is not None:
                    on_bytes(len(chunk))
        verify(staged, expected)
        store.commit(staged, content_key(expected.sha256))
        return staged.size
