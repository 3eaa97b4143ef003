"""Reading a PyPI-style simple index: project pages (PEP 691 JSON, else PEP 503 HTML) and core
metadata files (PEP 658/714). Works against PyPI, devpi- and Artifactory-style indexes, and a
plain directory of static pages served by any web server."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import httpx

from headwater.errors import UpstreamError, UpstreamFormatError
from headwater.formats.pypi.metadata import CoreMetadata, parse_core_metadata
from headwater.formats.pypi.simple import (
    JSON_MEDIA,
    FileLink,
    parse_project_html,
    parse_project_json,
)
from headwater.upstreams.http import (
    HttpPolicy,
    Validators,
    conditional_headers,
    get_capped,
    validator,
)

ACCEPT = f"{JSON_MEDIA}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
MAX_PAGE_BYTES = 64 << 20
MAX_METADATA_BYTES = 16 << 20


@dataclass
class ProjectPage:
    project: str
    url: str
    links: list[FileLink] | None  # None when the upstream said 304 Not Modified
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.links is None


class PyPIUpstream:
    def __init__(self, client: httpx.AsyncClient, source_root: str, policy: HttpPolicy) -> None:
        self.client = client
        self.source_root = source_root
        self.policy = policy

    def project_url(self, project: str) -> str:
        return f"{self.source_root}{project}/"

    async def fetch_project(
        self, project: str, validators: Validators | None = None
    ) -> ProjectPage | None:
        """The project's page, or None when the index has no such project."""
        url = self.project_url(project)
        headers = {"Accept": ACCEPT, **conditional_headers(validators, url)}
        status, response_headers, body = await get_capped(
            self.client, self.policy, url, headers, limit=MAX_PAGE_BYTES
        )
        if status == 404:
            return None
        etag = validator(response_headers, "ETag")
        modified = validator(response_headers, "Last-Modified")
        if status == 304 and validators is not None:
            return ProjectPage(project, url, None, validators.etag, validators.last_modified)
        media = response_headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media == JSON_MEDIA or media.endswith("+json"):
            links = parse_project_json(body, url)
        else:
            links = parse_project_html(body.decode("utf-8", "replace"), url)
        return ProjectPage(project, url, links, etag, modified)

    async def fetch_metadata(self, link: FileLink) -> tuple[bytes, CoreMetadata]:
        """A file's PEP 658 core metadata, checked against the hash the page gave for it."""
        url = f"{link.url}.metadata"
        status, _, body = await get_capped(
            self.client, self.policy, url, None, limit=MAX_METADATA_BYTES
        )
        if status != 200:
            raise UpstreamError(f"upstream answered {status} for {url}")
        if link.core_metadata and hashlib.sha256(body).hexdigest() != link.core_metadata:
            raise UpstreamFormatError(
                f"checksum mismatch for {link.filename}.metadata from {url}: the page says sha256 "
                f"{link.core_metadata}"
            )
        content = bytes(body)
        return content, parse_core_metadata(content)

    async def has_project(self, project: str) -> bool | None:
        """Whether the index has the project: True, False, or None when it could not tell
        (an error, a refused address, an answer that is neither 200 nor 404)."""
        try:
            async with self.client.stream(
                "GET", self.project_url(project), headers={"Accept": ACCEPT}
            ) as response:
                status = response.status_code
        except (httpx.HTTPError, UpstreamError):
            return None
        if status == 404:
            return False
        return True if status == 200 else None
