"""Reading a PyPI project page into records, with the licenses their core metadata gives."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import msgspec

from headwater.formats.pypi.filenames import parse_dist_filename
from headwater.formats.pypi.metadata import CoreMetadata
from headwater.formats.pypi.records import PythonRecord
from headwater.formats.pypi.simple import FileLink, upload_time_ms
from headwater.inputs import (
    MAX_FILENAME_LENGTH,
    MAX_VERSION_LENGTH,
    count_problem,
    field_problem,
    has_control_characters,
)
from headwater.storage import BlobStore, content_key
from headwater.upstreams.pypi import PyPIUpstream

T = TypeVar("T")


async def gather_bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def build_records(
    project: str, links: list[FileLink]
) -> tuple[list[PythonRecord], list[tuple[str, str]]]:
    """The distributions of a project page as records, and the links skipped with why."""
    records = []
    skipped = []
    for link in links:
        dist = parse_dist_filename(link.filename)
        if dist is None or dist.project != project:
            skipped.append((link.filename, "not a distribution of this project"))
            continue
        if not link.sha256:
            skipped.append((link.filename, "the index gives no sha256 to verify it against"))
            continue
        problem = _link_problem(link, dist.version)
        if problem is not None:
            skipped.append((link.filename, problem))
            continue
        records.append(
            PythonRecord(
                filename=link.filename,
                project=project,
                version=dist.version,
                kind=dist.kind,
                platforms=dist.platforms,
                sha256=link.sha256.lower(),
                size=link.size,
                url=link.url,
                timestamp=upload_time_ms(link.upload_time),
                requires_python=_text_or_none(link.requires_python),
                yanked=_text_or_none(link.yanked, empty=""),
                core_metadata=link.core_metadata,
            )
        )
    return records, skipped


def _link_problem(link: FileLink, version: str) -> str | None:
    """Why an upstream link cannot be kept, although it parsed: a value no column can hold."""
    size = count_problem(link.size, "size") if link.size is not None else None
    return (
        field_problem(link.filename, "filename", MAX_FILENAME_LENGTH)
        or field_problem(version, "version", MAX_VERSION_LENGTH)
        or size
    )


def _text_or_none(value: str | None, empty: str | None = None) -> str | None:
    """Free text from an index (a requires-python, a yank reason), dropped if it holds control
    characters that pages and clients could not carry."""
    if value is None:
        return None
    return value if not has_control_characters(value) else empty


async def upstream_license(
    upstream: PyPIUpstream,
    store: BlobStore | None,
    record: PythonRecord,
    *,
    delivered: Callable[[str, int], None] | None = None,
) -> PythonRecord:
    """The record with the license from the upstream's .metadata file, if it offers one (the
    file is kept in the blob store when one is given, to serve it, and `delivered` told)."""
    if record.core_metadata is None:
        return record
    link = FileLink(
        record.filename, record.url, record.sha256, None, None, record.core_metadata, None, None
    )
    content, metadata = await upstream.fetch_metadata(link)
    digest = hashlib.sha256(content).hexdigest()
    if store is not None and await asyncio.to_thread(store.stat, content_key(digest)) is None:
        await asyncio.to_thread(store.put, content_key(digest), content)
    if delivered is not None:
        delivered(digest, len(content))
    return with_metadata(record, metadata, core_metadata=digest)


def with_metadata(
    record: PythonRecord, metadata: CoreMetadata, core_metadata: str | None
) -> PythonRecord:
    return msgspec.structs.replace(
        record,
        metadata_known=True,
        license=metadata.license,
        license_expression=metadata.license_expression,
        classifiers=metadata.license_classifiers,
        requires_dist=metadata.requires_dist,
        dependencies_known=True,
        core_metadata=core_metadata if core_metadata is not None else record.core_metadata,
        requires_python=record.requires_python or metadata.requires_python,
    )
