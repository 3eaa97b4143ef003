"""Reading a conda channel upstream: which subdirs it has, and each subdir's repodata."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import zstandard

from headwater.allowlist import url_allowed
from headwater.errors import UpstreamError, UpstreamFormatError
from headwater.formats.conda import KNOWN_SUBDIRS
from headwater.upstreams.bodies import too_large
from headwater.upstreams.http import (
    REQUEST_FAILURES,
    HttpPolicy,
    Validators,
    conditional_headers,
    describe_failure,
    get_capped,
    raise_for_transient,
    retrying,
    validator,
)

# Repodata beyond this is refused rather than exhausting memory: conda-forge's largest subdir
# is a quarter of it.
MAX_REPODATA_BYTES = 2 << 30


@dataclass
class RepodataDownload:
    subdir: str
    url: str
    body: bytes | bytearray | None  # None when the upstream said 304 Not Modified
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
        itself, or CEP-15's `base_url` resolved against it, which must stay inside the allowlist."""
        base = urljoin(self.subdir_url(subdir), base_url) if base_url else self.subdir_url(subdir)
        base = base if base.endswith("/") else base + "/"
        if not url_allowed(base, self.policy.allowlist):
            raise UpstreamError(
                f"{subdir}/repodata.json puts its files at {base}, outside "
                "HEADWATER_UPSTREAM_ALLOWLIST; add that location to the allowlist to mirror it"
            )
        return base

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
        except REQUEST_FAILURES as error:
            raise describe_failure(error, url, self.policy.attempts) from None
        return response.status_code == 200

    async def fetch_repodata(
        self, subdir: str, validators: Validators | None = None
    ) -> RepodataDownload | None:
        """The subdir's repodata, `.zst` first; None when the upstream has no such subdir."""
        for name in ("repodata.json.zst", "repodata.json"):
            url = f"{self.subdir_url(subdir)}{name}"
            headers = conditional_headers(validators, url)
            status, response_headers, body = await get_capped(
                self.client, self.policy, url, headers, limit=MAX_REPODATA_BYTES
            )
            if status == 404:
                continue
            if status == 304 and validators is not None:
                return RepodataDownload(
                    subdir, url, None, validators.etag, validators.last_modified
                )
            if name.endswith(".zst"):
                body = await asyncio.to_thread(_decompress, body, url)
            return RepodataDownload(
                subdir=subdir,
                url=url,
                body=body,
                etag=validator(response_headers, "ETag"),
                last_modified=validator(response_headers, "Last-Modified"),
            )
        return None


def _decompress(body: bytes | bytearray, url: str) -> bytearray:
    """Decompress in pieces, so a small file that expands without bound cannot exhaust memory
    (and without copying what came out: repodata may be a couple of gigabytes)."""
    output = bytearray()
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)) as reader:
            while chunk := reader.read(1 << 24):
                output += chunk
                if len(output) > MAX_REPODATA_BYTES:
                    raise too_large(url, MAX_REPODATA_BYTES)
    except zstandard.ZstdError as error:
        raise UpstreamFormatError(f"{url} is not valid zstd: {error}") from None
    return output
