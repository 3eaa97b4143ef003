"""Reading a conda channel upstream: which subdirs it has, and each subdir's repodata."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import zstandard

from headwater.errors import UpstreamError, UpstreamFormatError
from headwater.formats.conda import KNOWN_SUBDIRS
from headwater.upstreams.http import (
    HttpPolicy,
    TransientStatusError,
    describe_failure,
    raise_for_transient,
    retrying,
    status_error,
)

# Repodata beyond this is refused rather than exhausting memory: conda-forge's largest subdir
# is a quarter of it.
MAX_REPODATA_BYTES = 2 << 30


@dataclass(frozen=True)
class Validators:
    """HTTP validators of the repodata a run last published, for a conditional request."""

    url: str
    etag: str | None
    last_modified: str | None


@dataclass
class RepodataDownload:
    subdir: str
    url: str
    body: bytes | None  # None when the upstream said 304 Not Modified
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.body is None


class CondaUpstream:
    def __init__(self, client: httpx.AsyncClient, source_root: str, policy: HttpPolicy) -> None:
        self.client = client
        self.source_root = source_root
        self.policy = policy

    def subdir_url(self, subdir: str) -> str:
        return f"{self.source_root}{subdir}/"

    def files_url(self, subdir: str, base_url: str | None = None) -> str:
        """The URL that a filename listed in `subdir`'s repodata is appended to: the subdir
        itself, or CEP-15's `base_url` resolved against it."""
        base = urljoin(self.subdir_url(subdir), base_url) if base_url else self.subdir_url(subdir)
        return base if base.endswith("/") else base + "/"

    async def get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET with retries on transient failures; the last failure becomes an UpstreamError."""
        try:
            async for attempt in retrying(self.policy):
                with attempt:
                    response = await self.client.get(url, headers=headers)
                    raise_for_transient(response)
                    return response
        except (httpx.TransportError, TransientStatusError) as error:
            raise describe_failure(error, url, self.policy.attempts) from None
        raise AssertionError("unreachable")

    async def list_subdirs(self) -> list[str]:
        """The known subdirs this upstream serves, probed with HEAD on each repodata.json."""
        found = await asyncio.gather(
            *(self._has_subdir(subdir) for subdir in sorted(KNOWN_SUBDIRS))
        )
        return [
            subdir for subdir, present in zip(sorted(KNOWN_SUBDIRS), found, strict=True) if present
        ]

    async def _has_subdir(self, subdir: str) -> bool:
        url = f"{self.subdir_url(subdir)}repodata.json"
        try:
            async for attempt in retrying(self.policy):
                with attempt:
                    response = await self.client.head(url)
                    if response.status_code in (405, 501):
                        async with self.client.stream("GET", url) as streamed:
                            response = streamed
                    raise_for_transient(response)
        except (httpx.TransportError, TransientStatusError) as error:
            raise describe_failure(error, url, self.policy.attempts) from None
        return response.status_code == 200

    async def fetch_repodata(
        self, subdir: str, validators: Validators | None = None
    ) -> RepodataDownload | None:
        """The subdir's repodata, `.zst` first; None when the upstream has no such subdir."""
        for name in ("repodata.json.zst", "repodata.json"):
            url = f"{self.subdir_url(subdir)}{name}"
            headers = {}
            if validators is not None and validators.url == url:
                if validators.etag:
                    headers["If-None-Match"] = validators.etag
                if validators.last_modified:
                    headers["If-Modified-Since"] = validators.last_modified
            response = await self.get(url, headers)
            if response.status_code == 404:
                continue
            if response.status_code == 304:
                return RepodataDownload(
                    subdir,
                    url,
                    None,
                    validators.etag if validators else None,
                    validators.last_modified if validators else None,
                )
            if response.status_code != 200:
                raise status_error(response)
            body = response.content
            if name.endswith(".zst"):
                body = _decompress(body, url)
            return RepodataDownload(
                subdir=subdir,
                url=url,
                body=body,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )
        return None


def _decompress(body: bytes, url: str) -> bytes:
    try:
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        result = decompressor.decompress(body)
    except zstandard.ZstdError as error:
        raise UpstreamFormatError(f"{url} is not valid zstd: {error}") from None
    if len(result) > MAX_REPODATA_BYTES:
        raise UpstreamError(f"{url} expands beyond {MAX_REPODATA_BYTES >> 20} MiB; refusing it")
    return result
