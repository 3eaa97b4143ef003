"""Simple repository pages: reading an upstream's (PEP 691 JSON or PEP 503 HTML) and rendering
Headwater's own, with hashes, requires-python, yanked, core metadata and upload time."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin

import msgspec
import orjson

from headwater.errors import UpstreamFormatError
from headwater.inputs import sha256_hex

JSON_MEDIA = "application/vnd.pypi.simple.v1+json"
HTML_MEDIA = "application/vnd.pypi.simple.v1+html"
API_VERSION = "1.1"


@dataclass(frozen=True)
class FileLink:
    """One file as an upstream project page lists it."""

    filename: str
    url: str  # absolute, without the hash fragment
    sha256: str | None
    requires_python: str | None
    yanked: str | None  # None: not yanked; "" yanked without a reason
    core_metadata: str | None  # None: not offered; "" offered without a hash; else its sha256
    upload_time: str | None  # ISO 8601, as PEP 700 gives it
    size: int | None


# --- reading upstream pages ----------------------------------------------------------------


class _JsonFile(msgspec.Struct):
    filename: str
    url: str
    hashes: dict[str, str] = {}
    requires_python: str | None = msgspec.field(default=None, name="requires-python")
    yanked: bool | str = False
    core_metadata: bool | dict[str, str] | None = msgspec.field(default=None, name="core-metadata")
    dist_info_metadata: bool | dict[str, str] | None = msgspec.field(
        default=None, name="dist-info-metadata"
    )
    upload_time: str | None = msgspec.field(default=None, name="upload-time")
    size: int | None = None


class _JsonPage(msgspec.Struct):
    files: list[_JsonFile]


def _metadata_hash(value: bool | dict[str, str] | None) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return ""
    return sha256_hex(value.get("sha256")) or ""


def parse_project_json(body: bytes | bytearray, page_url: str) -> list[FileLink]:
    try:
        page = msgspec.json.decode(body, type=_JsonPage)
    except msgspec.DecodeError as error:
        raise UpstreamFormatError(
            f"{page_url} is not a valid PEP 691 project page: {error}"
        ) from None
    links = []
    for file in page.files:
        url, fragment = urldefrag(urljoin(page_url, file.url))
        yanked = file.yanked if isinstance(file.yanked, str) else ("" if file.yanked else None)
        metadata = file.core_metadata if file.core_metadata is not None else file.dist_info_metadata
        links.append(
            FileLink(
                filename=file.filename,
                url=url,
                sha256=sha256_hex(file.hashes.get("sha256")) or _fragment_sha256(fragment),
                requires_python=file.requires_python or None,
                yanked=yanked,
                core_metadata=_metadata_hash(metadata),
                upload_time=file.upload_time,
                size=file.size,
            )
        )
    return links


def _fragment_sha256(fragment: str) -> str | None:
    name, _, value = fragment.partition("=")
    return sha256_hex(value) if name == "sha256" else None


def _html_metadata(value: str | None) -> str | None:
    if value is None:
        return None
    name, _, digest = value.partition("=")
    return (sha256_hex(digest) or "") if name == "sha256" else ""


class _LinkParser(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = page_url
        self.links: list[FileLink] = []
        self._anchor: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "base" and attributes.get("href"):
            self.base = urljoin(self.base, attributes["href"] or "")
        elif tag == "a" and attributes.get("href"):
            self._anchor = attributes
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != "a" or self._anchor is None:
            return
        attributes, self._anchor = self._anchor, None
        url, fragment = urldefrag(urljoin(self.base, attributes["href"] or ""))
        filename = "".join(self._text).strip() or url.rstrip("/").rsplit("/", 1)[-1]
        metadata = attributes.get("data-core-metadata", attributes.get("data-dist-info-metadata"))
        self.links.append(
            FileLink(
                filename=filename,
                url=url,
                sha256=_fragment_sha256(fragment),
                requires_python=attributes.get("data-requires-python") or None,
                yanked=attributes.get("data-yanked") if "data-yanked" in attributes else None,
                core_metadata=_html_metadata(metadata),
                upload_time=None,
                size=None,
            )
        )


def parse_project_html(text: str, page_url: str) -> list[FileLink]:
    parser = _LinkParser(page_url)
    parser.feed(text)
    parser.close()
    return parser.links


def upload_time_ms(value: str | None) -> int | None:
    """PEP 700's ISO 8601 upload time, in milliseconds since the epoch."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


# --- rendering Headwater's pages -----------------------------------------------------------


@dataclass(frozen=True)
class ServedFile:
    """One file on a project page Headwater serves; `url` is relative to the page."""

    filename: str
    url: str
    sha256: str
    size: int | None
    requires_python: str | None
    yanked: str | None
    core_metadata: str | None  # sha256 of the .metadata file, when Headwater serves one
    upload_time: str | None


def render_project_html(project: str, files: Iterable[ServedFile]) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        '<html><head><meta name="pypi:repository-version" content="1.1">',
        f"<title>Links for {html.escape(project)}</title></head><body>",
        f"<h1>Links for {html.escape(project)}</h1>",
    ]
    for file in files:
        attributes = [f'href="{html.escape(file.url)}#sha256={file.sha256}"']
        if file.requires_python:
            attributes.append(f'data-requires-python="{html.escape(file.requires_python)}"')
        if file.yanked is not None:
            attributes.append(f'data-yanked="{html.escape(file.yanked)}"')
        if file.core_metadata:
            attributes.append(f'data-core-metadata="sha256={file.core_metadata}"')
            attributes.append(f'data-dist-info-metadata="sha256={file.core_metadata}"')
        lines.append(f"<a {' '.join(attributes)}>{html.escape(file.filename)}</a><br>")
    lines.append("</body></html>")
    return "\n".join(lines).encode()


def render_project_json(
    project: str, files: Sequence[ServedFile], versions: Sequence[str]
) -> bytes:
    entries: list[dict[str, Any]] = []
    for file in files:
        metadata: bool | dict[str, str] = (
            {"sha256": file.core_metadata} if file.core_metadata else False
        )
        entry: dict[str, Any] = {
            "filename": file.filename,
            "url": file.url,
            "hashes": {"sha256": file.sha256},
            "requires-python": file.requires_python,
            "yanked": file.yanked if file.yanked else (file.yanked == ""),
            "core-metadata": metadata,
            "dist-info-metadata": metadata,
        }
        if file.size is not None:
            entry["size"] = file.size
        if file.upload_time:
            entry["upload-time"] = file.upload_time
        entries.append(entry)
    document = {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": list(versions),
        "files": entries,
    }
    return orjson.dumps(document)


def render_index_html(projects: Iterable[str]) -> bytes:
    links = "\n".join(f'<a href="{html.escape(p)}/">{html.escape(p)}</a><br>' for p in projects)
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
        f"<title>Simple index</title></head><body>\n{links}\n</body></html>"
    ).encode()


def render_index_json(projects: Iterable[str]) -> bytes:
    return orjson.dumps(
        {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}
    )


def wants_json(accept: str | None) -> bool:
    """PEP 691 content negotiation: JSON when the client prefers it to HTML."""
    if not accept:
        return False
    best_json = best_html = -1.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.strip().lower()
        if media in (JSON_MEDIA, "application/vnd.pypi.simple.latest+json"):
            best_json = max(best_json, quality)
        elif media in (HTML_MEDIA, "application/vnd.pypi.simple.latest+html", "text/html", "*/*"):
            best_html = max(best_html, quality)
    return best_json > 0 and best_json >= best_html
