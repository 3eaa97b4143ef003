"""Running a PyPI mirror: read each project's page, take core metadata where the filters need
it, judge, take what the kept files depend on (`include_dependencies`), download (active),
then check the revision and publish it in one go.

Taking dependencies reads the kept files' core metadata (one file per project and version:
the upstream's PEP 658 `.metadata` file, else, for an active mirror, the file itself), then
the pages of the projects they require from the same upstream, judges those files, takes
what the closure (dependencies/python.py) chooses, and goes on until nothing new is needed,
at most MAX_DEPENDENCY_PROJECTS projects beyond those named. Those projects are published
with the named ones, so the next run recomputes them. With dependencies taken, project pages
are always read whole (no conditional request): what to take depends on every page.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import msgspec
from sqlalchemy import select

from headwater.db import Database
from headwater.dependencies.python import (
    MAX_DEPENDENCY_PROJECTS,
    Entry,
    Environment,
    Pool,
    environments,
    take_dependencies,
)
from headwater.dependencies.report import DependencyReport
from headwater.errors import HeadwaterError, UpstreamError, UpstreamFileMissingError
from headwater.filters import LICENSE_KEYS, FilterSet
from headwater.filters.python_rules import PythonMirrorRules
from headwater.filters.rules import Exclusion
from headwater.formats.pypi.metadata import parse_core_metadata, read_metadata_bytes
from headwater.formats.pypi.records import PythonRecord
from headwater.formats.pypi.simple import FileLink
from headwater.models import MirrorMode, MirrorSubdirState, OnMissingFile
from headwater.services.downloads import Downloader, ExpectedFile
from headwater.services.mirror_contents import SubdirContents, publish_mirror_run
from headwater.services.mirror_job import MirrorJob
from headwater.services.missing_files import MissingFile, leave_out_missing
from headwater.services.progress import RunProgress
from headwater.services.pypi_pages import (
    build_records,
    gather_bounded,
    upstream_license,
    with_metadata,
)
from headwater.services.python_solvability import PythonCheck, PythonElsewhere
from headwater.services.solvability import blame_of, previous_report
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
    excluded: Counter[str] = field(default_factory=Counter)  # files skipped as invalid


async def sync_python_mirror(
    job: MirrorJob,
    db: Database,
    store: BlobStore,
    policy: HttpPolicy,
    progress: RunProgress,
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
    takes = job.takes_dependencies
    envs = environments(job.named_subdirs())
    report = DependencyReport()
    async with upstream_client(policy, proxy=job.proxy) as client:
        downloader = Downloader(client, policy, store, db, progress, job.source_root)
        upstream = PyPIUpstream(client, job.source_root, policy)
        reader = _ProjectReader(job, rules, upstream, downloader, progress, active)
        progress.step("reading project pages", total=len(projects))
        reads = await gather_bounded(
            policy.concurrency,
            [partial(reader.read, p, None if takes else states.get(p)) for p in projects],
        )
        if reads and all(read.content.missing for read in reads):
            raise UpstreamError(
                f"upstream {job.source_root} has none of the projects {', '.join(projects)}; "
                "check source_root and the project names"
            )
        if takes:
            reads += await _DependencyTaker(reader, envs, report).take()
        contents = [reader.contents_of(read) for read in reads]
        reader.count_exclusions(reads)
        if active:
            missing = await downloader.fetch_all(_files_of(contents), job.on_missing_file)
            leave_out_missing(contents, missing, progress, report.notes)
            for content in contents:
                content.records = await asyncio.to_thread(
                    _complete_from_files,
                    store,
                    partial(_deliver, progress, job.source_root),
                    content.records,  # type: ignore[arg-type]
                )
    elsewhere = None
    if job.checks.also_available:
        elsewhere = PythonElsewhere(job.checks.also_available, policy, job.proxy, report.notes)
    check = PythonCheck(job.checks, report, reader.pool, envs, elsewhere)
    if reader.pool.unchanged:
        carried = await asyncio.to_thread(previous_report, db, job.mirror_id, job.run_id)
        reader.pool.previous_blame = blame_of(carried)
        if not any(content.changed for content in contents):
            check.carried = carried
        report.notes.add(
            f"{len(reader.pool.unchanged)} projects unchanged upstream since the last run: the "
            "filters named for what they lack are those the last run found"
        )
    subdirs = [content.subdir for content in contents]
    progress.step("publishing")
    await asyncio.to_thread(publish_mirror_run, db, store, job, subdirs, contents, progress, check)
    taken = len(subdirs) - len(projects)
    progress.log(
        f"published {len(projects)} projects"
        + (f" and {taken} projects of their dependencies" if taken else "")
    )


class _ProjectReader:
    def __init__(
        self,
        job: MirrorJob,
        rules: PythonMirrorRules,
        upstream: PyPIUpstream,
        downloader: Downloader | None,
        progress: RunProgress,
        active: bool,
    ) -> None:
        """Without a `downloader` (a preview), nothing is downloaded nor stored."""
        self.job = job
        self.rules = rules
        self.upstream = upstream
        self.downloader = downloader
        self.store = downloader.store if downloader is not None else None
        self.progress = progress
        self.active = active
        self.licenses = _wants_licenses(job.mirror_filters, job.channel_filters)
        self.pool = Pool(refusals=rules.refusals().judge)  # every file read, judged

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
            self.pool.add_project(project, [])
            return _ProjectRead(SubdirContents(subdir=project, records=[], missing=True))
        if page.links is None:
            self.pool.read.add(project)
            self.pool.unchanged.add(project)
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
            records = await self._with_licenses(records, read.content.left_out)
        # Every kept version's requirements are read: the revision check needs them, and the
        # closure follows them.
        judged = await self._with_requirements(self.rules.judge_all(records))
        self.pool.add_project(project, judged)
        kept = sum(1 for _, exclusion in judged if exclusion is None)
        self.progress.count("seen", len(page.links))
        self.progress.log(f"{project}: {len(page.links)} files upstream, {kept} pass the filters")
        return read

    def contents_of(self, read: _ProjectRead) -> SubdirContents:
        """The project's contents, with the files taken as dependencies."""
        content = read.content
        if content.records is not None and not content.missing:
            content.records = self.pool.kept_records(content.subdir)
        return content

    def count_exclusions(self, reads: list[_ProjectRead]) -> None:
        """The run's excluded counters, once dependencies were taken."""
        for read in reads:
            for reason, count in read.excluded.items():
                self.progress.exclude(reason, count)
        for reason, count in self.pool.excluded().items():
            self.progress.exclude(reason, count)

    async def _with_requirements(
        self, judged: list[tuple[PythonRecord, Exclusion | None]]
    ) -> list[tuple[PythonRecord, Exclusion | None]]:
        """The kept files with their requirements read (one file per version)."""
        kept = [record for record, exclusion in judged if exclusion is None]
        completed = {record.filename: record for record in await self.with_requirements(kept)}
        return [(completed.get(record.filename, record), exclusion) for record, exclusion in judged]

    async def with_requirements(self, records: list[PythonRecord]) -> list[PythonRecord]:
        """The records with the requirements of their core metadata: read for one file of
        each version (a wheel offering PEP 658 metadata first), the others of that version
        taken to share them until their own metadata is read (active mirrors, after the
        download). Records the upstream gives no way to read stay unknown."""
        versions: dict[tuple[str, str], list[PythonRecord]] = {}
        for record in records:
            if not record.dependencies_known:
                versions.setdefault((record.project, record.version), []).append(record)
        chosen = [
            best for files in versions.values() if (best := self._readable(files)) is not None
        ]
        read = await gather_bounded(
            self.upstream.policy.concurrency, [partial(self._requirements_of, r) for r in chosen]
        )
        known = {(r.project, r.version): r for r in read if r.dependencies_known}
        result = []
        for record in records:
            source = known.get((record.project, record.version))
            if source is None or record.dependencies_known:
                result.append(record)
            elif source.filename == record.filename:
                result.append(source)
            else:
                result.append(
                    msgspec.structs.replace(
                        record, requires_dist=source.requires_dist, dependencies_known=True
                    )
                )
        return result

    def _readable(self, files: list[PythonRecord]) -> PythonRecord | None:
        ranked = sorted(files, key=lambda r: (r.core_metadata is None, r.kind != "wheel"))
        best = ranked[0]
        if best.core_metadata is None and not self.active:
            return None
        return best

    async def _requirements_of(self, record: PythonRecord) -> PythonRecord:
        try:
            return await self._license_of(record)
        except HeadwaterError as error:
            self.progress.log(
                f"{record.filename}: {error.message}; its requirements are unknown", "warning"
            )
            return record

    async def read_dependency(self, project: str) -> _ProjectRead:
        """A project required by kept files: its page read whole, its files judged (the
        closure takes from them what the refusing rules allow)."""
        return await self.read(project, None)

    def _records(
        self, project: str, links: list[FileLink], read: _ProjectRead
    ) -> list[PythonRecord]:
        records, skipped = build_records(project, links)
        for filename, why in skipped:
            self.progress.log(f"{project}: skipped {filename} ({why})", "warning")
        if skipped:
            read.excluded["invalid"] += len(skipped)
        return records

    async def _with_licenses(
        self, records: list[PythonRecord], left_out: list[MissingFile]
    ) -> list[PythonRecord]:
        """The records with their licenses: from the upstream's .metadata files where it offers
        them, from the files themselves for an active mirror where it does not. A file
        upstream cannot deliver goes into `left_out` (on_missing_file skip): its license is
        unknown, and the project is read again next run."""
        return await gather_bounded(
            self.upstream.policy.concurrency,
            [partial(self._license_of, r, left_out) for r in records],
        )

    def _delivered(self, sha256: str, size: int) -> None:
        self.progress.delivered(sha256, self.job.source_root, size)

    async def _license_of(
        self, record: PythonRecord, left_out: list[MissingFile] | None = None
    ) -> PythonRecord:
        if record.core_metadata is not None:
            return await upstream_license(
                self.upstream, self.store, record, delivered=self._delivered
            )
        if not self.active:
            return record  # a passive mirror without metadata: the license is unknown (none)
        assert self.downloader is not None and self.store is not None
        try:
            await self.downloader.fetch(
                ExpectedFile(record.filename, record.url, record.sha256, record.size)
            )
        except UpstreamFileMissingError as error:
            if left_out is None or self.job.on_missing_file == OnMissingFile.fail:
                raise
            missing = MissingFile(record.filename, record.url, record.sha256, error.upstream_status)
            self.progress.log(f"{missing.message}; its license is unknown", "warning")
            left_out.append(missing)
            return record
        try:
            metadata = parse_core_metadata(
                await asyncio.to_thread(_stored_metadata, self.store, record)
            )
        except HeadwaterError as error:
            self.progress.log(
                f"{record.filename}: {error.message}; its license is unknown", "warning"
            )
            return record
        return with_metadata(record, metadata, core_metadata=None)


@dataclass
class PreviewedProjects:
    """What a preview of a PyPI mirror that takes dependencies read."""

    pool: Pool  # every file judged, those taken as dependencies marked
    invalid: Counter[str]  # project → links skipped as unusable
    missing: list[str]  # projects upstream lacks


async def preview_dependencies(
    job: MirrorJob,
    policy: HttpPolicy,
) -> PreviewedProjects:
    """What a run of `job` would read and take as dependencies, read as a passive run reads
    (pages and PEP 658 metadata, no file downloaded nor stored)."""
    progress = RunProgress()  # a preview keeps no log
    async with upstream_client(policy, proxy=job.proxy) as client:
        upstream = PyPIUpstream(client, job.source_root, policy)
        reader = _ProjectReader(job, job.python_rules(), upstream, None, progress, False)
        reads = await gather_bounded(
            policy.concurrency, [partial(reader.read, p, None) for p in mirrored_projects(job)]
        )
        envs = environments(job.named_subdirs())
        reads += await _DependencyTaker(reader, envs, DependencyReport()).take()
    invalid: Counter[str] = Counter()
    for read in reads:
        invalid[read.content.subdir] += read.excluded["invalid"]
    missing = sorted(read.content.subdir for read in reads if read.content.missing)
    return PreviewedProjects(reader.pool, invalid, missing)


class _DependencyTaker:
    """Takes, round after round, what the kept files require: the closure over the projects
    read so far, then the core metadata of the files it took and the pages of the projects it
    needs, until it needs nothing new."""

    def __init__(
        self, reader: _ProjectReader, envs: list[Environment], report: DependencyReport
    ) -> None:
        self.reader = reader
        self.envs = envs
        self.report = report
        self.refusals = reader.pool.refusals or reader.rules.refusals().judge
        self.newest = reader.job.newest_dependencies
        self.progress = reader.progress

    async def take(self) -> list[_ProjectRead]:
        """The reads of the projects added as dependencies."""
        reader, pool = self.reader, self.reader.pool
        self.progress.step("taking dependencies")
        added: list[_ProjectRead] = []
        capped = False
        while True:
            taken, missing = await asyncio.to_thread(
                take_dependencies,
                pool,
                self.refusals,
                self.envs,
                newest=self.newest,
                report=self.report,
            )
            unknown = [entry for entry in taken if not entry.record.dependencies_known]
            if unknown:
                await self._complete(unknown)
            wanted = sorted(missing - pool.read)
            room = MAX_DEPENDENCY_PROJECTS - len(added)
            if len(wanted) > room:
                if not capped:
                    capped = True
                    self.progress.log(
                        f"dependencies would add more than {MAX_DEPENDENCY_PROJECTS} projects; "
                        f"{', '.join(wanted[room:][:20])} and others are not taken",
                        "warning",
                    )
                    self.report.notes.add(
                        f"the closure stopped at {MAX_DEPENDENCY_PROJECTS} dependency projects"
                    )
                wanted = wanted[:room]
            if wanted:
                self.progress.log(f"reading {len(wanted)} projects kept files depend on")
                added += await gather_bounded(
                    reader.upstream.policy.concurrency,
                    [partial(reader.read_dependency, project) for project in wanted],
                )
            if not unknown and not wanted:
                break
        self._describe()
        return added

    async def _complete(self, entries: list[Entry]) -> None:
        """Read the requirements of the files taken, so the next round follows them."""
        records = await self.reader.with_requirements([entry.record for entry in entries])
        for entry, record in zip(entries, records, strict=True):
            entry.record = record

    def _describe(self) -> None:
        taken = sum(self.report.taken.values())
        if not taken:
            return
        projects = sorted(self.report.taken)
        shown = ", ".join(projects[:20]) + (" and more" if len(projects) > 20 else "")
        self.progress.log(
            f"took {taken} files of {len(projects)} projects as dependencies of kept files "
            f"({shown})"
        )


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
    store: BlobStore, delivered: Callable[[str, int], None], records: list[PythonRecord] | None
) -> list[PythonRecord] | None:
    """After an active run's downloads, what the files themselves tell: each record's license
    from its core metadata (the upstream's .metadata file, else the file's own), and PEP 658
    metadata for wheels whose upstream offered none, which Headwater now serves itself."""
    if records is None:
        return None
    return [_completed(store, delivered, record) for record in records]


def _deliver(progress: RunProgress, upstream: str, sha256: str, size: int) -> None:
    progress.delivered(sha256, upstream, size)


def _stored_metadata(store: BlobStore, record: PythonRecord) -> bytes:
    """The core metadata inside the stored distribution (a remote store reads only the ranges
    the archive's directory and the member need)."""
    with store.open(content_key(record.sha256)) as stream:
        return read_metadata_bytes(stream, record.filename)


def _completed(
    store: BlobStore, delivered: Callable[[str, int], None], record: PythonRecord
) -> PythonRecord:
    if record.metadata_known and (record.core_metadata is not None or record.kind != "wheel"):
        return record
    content = None
    if record.core_metadata:
        try:
            content = store.read(content_key(record.core_metadata))
        except FileNotFoundError:
            content = None
    if content is None:
        try:
            content = _stored_metadata(store, record)
        except (HeadwaterError, FileNotFoundError):
            return record
    digest = record.core_metadata
    if digest is None and record.kind == "wheel":
        digest = hashlib.sha256(content).hexdigest()
        if store.stat(content_key(digest)) is None:
            store.put(content_key(digest), content)
        # Read out of a wheel the upstream delivered: served as that wheel's .metadata.
        delivered(digest, len(content))
    try:
        metadata = parse_core_metadata(content)
    except HeadwaterError:
        return record
    return with_metadata(record, metadata, core_metadata=digest)
