"""Running a PyPI mirror: read each project's page, take core metadata where the filters need
it, judge, download (active), then publish in one go."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import httpx
from sqlalchemy import select

from headwater.db import Database
from headwater.errors import HeadwaterError, UpstreamError
from headwater.filters import LICENSE_KEYS, FilterSet
from headwater.filters.python_rules import PythonMirrorRules
from headwater.formats.pypi.metadata import parse_core_metadata, read_metadata_bytes
from headwater.formats.pypi.records import PythonRecord
from headwater.formats.pypi.simple import FileLink
from headwater.models import MirrorMode, MirrorSubdirState
from headwater.services.downloads import Downloader, ExpectedFile
from headwater.services.mirror_contents import SubdirContents, publish_mirror_run
from headwater.services.mirror_job import MirrorJob
from headwater.services.progress import RunProgress
from headwater.services.pypi_pages import (
    build_records,
    gather_bounded,
    upstream_license,
    with_metadata,
)
from headwater.storage import BlobStore, content_key
from headwater.upstreams.http import HttpPolicy, Validators, upstream_client
from headwater.upstreams.pypi import MAX_METADATA_BYTES, PyPIUpstream

T = TypeVar("T")


def mirrored_projects(job: MirrorJob) -> list[str]:
    """The mirror's projects, narrowed by the channel's when the channel names some."""
    projects = list(job.mirror_filters.projects or ())
    if job.channel_filters.projects is not None:
        allowed = set(job.channel_filters.projects)
        projects = [project for project in projects if project in allowed]
    return projects


def _wants_licenses(*sets: FilterSet) -> bool:
    return any(getattr(filters, key) for filters in sets for key in LICENSE_KEYS)


@dataclass
class _ProjectRead:
    content: SubdirContents
    excluded: Counter[str] = field(default_factory=Counter)


async def sync_python_mirror(
    job: MirrorJob,
    db: Database,
    store: BlobStore,
    policy: HttpPolicy,
    progress: RunProgress,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """One run of a PyPI mirror, from reading the project pages to the published channel."""
    projects = mirrored_projects(job)
    if not projects:
        progress.log(
            "the channel's projects filter leaves none of the mirror's projects", "warning"
        )
    with db.reading() as session:
        states = {
            state.subdir: state
            for state in session.scalars(
                select(MirrorSubdirState).where(MirrorSubdirState.mirror_id == job.mirror_id)
            )
        }
    rules = job.python_rules()
    active = job.mode == MirrorMode.active
    async with upstream_client(policy, proxy=job.proxy, transport=transport) as client:
        downloader = Downloader(client, policy, store, db, progress, job.source_root)
        upstream = PyPIUpstream(client, job.source_root, policy)
        reader = _ProjectReader(job, rules, upstream, downloader, progress, active)
        progress.step("reading project pages", total=len(projects))
        reads = await gather_bounded(
            policy.concurrency, [partial(reader.read, p, states.get(p)) for p in projects]
        )
        contents = [read.content for read in reads]
        if contents and all(content.missing for content in contents):
            raise UpstreamError(
                f"upstream {job.source_root} has none of the projects {', '.join(projects)}; "
                "check source_root and the project names"
            )
        for read in reads:
            for reason, count in read.excluded.items():
                progress.exclude(reason, count)
        if active:
            await downloader.fetch_all(_files_of(contents))
            for content in contents:
                content.records = await asyncio.to_thread(
                    _complete_from_files,
                    store,
                    partial(progress.delivered, upstream=job.source_root),
                    content.records,  # type: ignore[arg-type]
                )
    progress.step("publishing")
    await asyncio.to_thread(publish_mirror_run, db, store, job, projects, contents, progress)
    progress.log(f"published {len(projects)} projects")


class _ProjectReader:
    def __init__(
        self,
        job: MirrorJob,
        rules: PythonMirrorRules,
        upstream: PyPIUpstream,
        downloader: Downloader,
        progress: RunProgress,
        active: bool,
    ) -> None:
        self.job = job
        self.rules = rules
        self.upstream = upstream
        self.downloader = downloader
        self.store = downloader.store
        self.progress = progress
        self.active = active
        self.licenses = _wants_licenses(job.mirror_filters, job.channel_filters)

    async def read(self, project: str, state: MirrorSubdirState | None) -> _ProjectRead:
        validators = None
        if state is not None and state.filters_digest == self.job.filters_digest:
            validators = Validators(state.url, state.etag, state.last_modified)
        page = await self.upstream.fetch_project(project, validators)
        self.progress.advance()
        if page is None:
            self.progress.log(
                f"upstream has no project {project}; its files leave the channel", "warning"
            )
            return _ProjectRead(SubdirContents(subdir=project, records=[], missing=True))
        if page.links is None:
            self.progress.log(f"{project}: upstream unchanged since the last run")
            return _ProjectRead(SubdirContents(subdir=project, records=None))
        read = _ProjectRead(
            SubdirContents(
                subdir=project,
                records=[],
                url=page.url,
                files_url="",
                etag=page.etag,
                last_modified=page.last_modified,
            )
        )
        records = self._records(project, page.links, read)
        if self.licenses:
            records = await self._with_licenses(records)
        kept = []
        for record, exclusion in self.rules.judge_all(records):
            if exclusion is None:
                kept.append(record)
            else:
                read.excluded[exclusion.reason] += 1
        read.content.records = kept
        self.progress.count("seen", len(page.links))
        self.progress.log(
            f"{project}: {len(page.links)} files upstream, {len(kept)} pass the filters"
        )
        return read

    def _records(
        self, project: str, links: list[FileLink], read: _ProjectRead
    ) -> list[PythonRecord]:
        records, skipped = build_records(project, links)
        for filename, why in skipped:
            self.progress.log(f"{project}: skipped {filename} ({why})", "warning")
        if skipped:
            read.excluded["invalid"] += len(skipped)
        return records

    async def _with_licenses(self, records: list[PythonRecord]) -> list[PythonRecord]:
        """The records with their licenses: from the upstream's .metadata files where it offers
        them, from the files themselves for an active mirror where it does not."""
        return await gather_bounded(
            self.upstream.policy.concurrency, [partial(self._license_of, r) for r in records]
        )

    def _delivered(self, sha256: str) -> None:
        self.progress.delivered(sha256, self.job.source_root)

    async def _license_of(self, record: PythonRecord) -> PythonRecord:
        if record.core_metadata is not None:
            return await upstream_license(
                self.upstream, self.store, record, delivered=self._delivered
            )
        if not self.active:
            return record  # a passive mirror without metadata: the license is unknown (none)
        await self.downloader.fetch(
            ExpectedFile(record.filename, record.url, record.sha256, record.size)
        )
        path = self.store.local_path(content_key(record.sha256))
        assert path is not None
        try:
            metadata = parse_core_metadata(
                await asyncio.to_thread(read_metadata_bytes, path, record.filename)
            )
        except HeadwaterError as error:
            self.progress.log(
                f"{record.filename}: {error.message}; its license is unknown", "warning"
            )
            return record
        return with_metadata(record, metadata, core_metadata=None)


def _files_of(contents: list[SubdirContents]) -> list[ExpectedFile]:
    """The kept files, and the .metadata files the upstream offers with a hash."""
    files = []
    for content in contents:
        for record in content.records or ():
            assert isinstance(record, PythonRecord)
            files.append(ExpectedFile(record.filename, record.url, record.sha256, record.size))
            if record.core_metadata:
                files.append(
                    ExpectedFile(
                        f"{record.filename}.metadata",
                        f"{record.url}.metadata",
                        record.core_metadata,
                        None,
                        limit=MAX_METADATA_BYTES,
                    )
                )
    return files


def _complete_from_files(
    store: BlobStore, delivered: Callable[[str], None], records: list[PythonRecord] | None
) -> list[PythonRecord] | None:
    """After an active run's downloads, what the files themselves tell: each record's license
    from its core metadata (the upstream's .metadata file, else the file's own), and PEP 658
    metadata for wheels whose upstream offered none, which Headwater now serves itself."""
    if records is None:
        return None
    return [_completed(store, delivered, record) for record in records]


def _completed(
    store: BlobStore, delivered: Callable[[str], None], record: PythonRecord
) -> PythonRecord:
    if record.metadata_known and (record.core_metadata is not None or record.kind != "wheel"):
        return record
    content = None
    if record.core_metadata:
        path = store.local_path(content_key(record.core_metadata))
        content = path.read_bytes() if path is not None and path.is_file() else None
    if content is None:
        path = store.local_path(content_key(record.sha256))
        try:
            content = read_metadata_bytes(path, record.filename) if path else None
        except HeadwaterError:
            return record
    if content is None:
        return record
    digest = record.core_metadata
    if digest is None and record.kind == "wheel":
        digest = hashlib.sha256(content).hexdigest()
        if not store.has_content(digest):
            store.put(content_key(digest), content)
        # Read out of a wheel the upstream delivered: served as that wheel's .metadata.
        delivered(digest)
    try:
        metadata = parse_core_metadata(content)
    except HeadwaterError:
        return record
    return with_metadata(record, metadata, core_metadata=digest)
