"""Previewing a conda mirror: what its filters would take and drop, and why, before any download.

The preview reads the upstream's repodata as a run would (no package file is fetched), judges
every record with the mirror's and the channel's rules, counts by reason and by subdir, and keeps
one page of the files asked for, so that even a conda-forge-sized subdir costs no more memory
than a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from headwater.dependencies.conda import Pool, take_dependencies
from headwater.dependencies.report import DependencyReport
from headwater.errors import (
    InvalidInputError,
    PreviewFailedError,
    TooManyRequestsError,
    UpstreamError,
)
from headwater.filters import FilterSet, named_subdirs, nothing_passes
from headwater.filters.licenses import license_families
from headwater.filters.python_rules import PythonMirrorRules, record_license_families
from headwater.filters.rules import Exclusion, MirrorRules
from headwater.formats.conda.repodata import CondaRecord, parse_repodata
from headwater.formats.pypi.records import PythonRecord
from headwater.models import MirrorMode, MirrorType
from headwater.services.cve_matching import CveOracle
from headwater.services.mirror_job import MirrorJob
from headwater.services.pypi_pages import build_records, gather_bounded, upstream_license
from headwater.services.pypi_sync import mirrored_projects, preview_dependencies
from headwater.upstreams.conda import CondaUpstream
from headwater.upstreams.http import HttpPolicy, upstream_client
from headwater.upstreams.pypi import PyPIUpstream

Show = Literal["all", "taken", "dropped"]
DEPENDENCY = "dependency"  # the reason of a file taken because a kept file depends on it
# However slowly an upstream answers, a preview (a person waits for it) ends by then.
PREVIEW_SECONDS = 300
PREVIEW_SLOTS = 2  # previews at once in one process (PreviewGate)
PREVIEW_RETRY_SECONDS = 5


@dataclass(frozen=True)
class PreviewQuery:
    """Which files to list: the counts always cover everything."""

    show: Show = "all"
    reason: str | None = None
    search: str | None = None
    offset: int = 0
    limit: int = 100

    def __post_init__(self) -> None:
        if self.show not in ("all", "taken", "dropped"):
            raise InvalidInputError(f"show {self.show!r} is not one of all, taken, dropped")


@dataclass(frozen=True)
class PreviewFile:
    subdir: str
    filename: str
    name: str
    version: str
    build: str
    license: str | None
    license_families: list[str]
    published_at: dt.datetime | None
    taken: bool
    reason: str | None
    detail: str | None
    size: int | None = None  # as the upstream's index says (an HTML simple page may not)


@dataclass
class SubdirPreview:
    subdir: str
    seen: int = 0
    taken: int = 0
    dropped: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    missing: bool = False
    dependencies: int = 0  # of those taken, the files taken as dependencies of others


@dataclass
class Preview:
    subdirs: list[SubdirPreview]
    files: list[PreviewFile]
    matching_files: int
    warnings: list[str]

    @property
    def by_reason(self) -> Counter[str]:
        return sum((subdir.by_reason for subdir in self.subdirs), Counter())


@dataclass(frozen=True)
class PreviewRequest:
    mirror_type: str  # conda or python_simple
    source_root: str
    proxy: str | None
    mirror_filters: FilterSet
    channel_filters: FilterSet
    mirror_mode: str = "passive"
    cve: CveOracle | None = None  # active mirrors with CVE rules

    @property
    def takes_dependencies(self) -> bool:
        return self.mirror_filters.takes_dependencies or self.channel_filters.takes_dependencies

    @property
    def newest_dependencies(self) -> bool:
        choice = self.mirror_filters.dependencies or self.channel_filters.dependencies
        return choice == "newest"


class PreviewGate:
    """A preview reads, parses and judges a whole upstream index (3.6 s for the conda-forge-sized
    linux-64, its 468,657 records held in memory), and a channel's readers may ask for one: at most
    `slots` run at once in a process, and one per caller (a user, or an address when signed
    out). Previews run on the event loop, so the counting needs no lock."""

    def __init__(self, slots: int = PREVIEW_SLOTS) -> None:
        self.slots = slots
        self._callers: set[str] = set()

    @contextlib.contextmanager
    def admitted(self, caller: str) -> Iterator[None]:
        if caller in self._callers:
            raise TooManyRequestsError(
                "your previous preview is still running: ask again once it has answered",
                retry_after=PREVIEW_RETRY_SECONDS,
            )
        if len(self._callers) >= self.slots:
            raise TooManyRequestsError(
                f"{self.slots} previews are running on this server: ask again in a moment",
                retry_after=PREVIEW_RETRY_SECONDS,
            )
        self._callers.add(caller)
        try:
            yield
        finally:
            self._callers.discard(caller)


async def preview_mirror(
    request: PreviewRequest,
    policy: HttpPolicy,
    query: PreviewQuery,
    *,
    gate: PreviewGate,
    caller: str,
) -> Preview:
    """What the mirror would take and drop, and why, from the upstream's metadata alone, once
    `gate` admits `caller`. An upstream that cannot be read makes the preview fail with
    PreviewFailedError saying why."""
    with gate.admitted(caller):
        return await _preview(request, policy, query)


async def _preview(request: PreviewRequest, policy: HttpPolicy, query: PreviewQuery) -> Preview:
    try:
        async with asyncio.timeout(PREVIEW_SECONDS):
            if request.mirror_type == "python_simple":
                return await preview_python_mirror(request, policy, query)
            return await preview_conda_mirror(request, policy, query)
    except UpstreamError as error:
        raise PreviewFailedError(f"cannot preview: {error.message}") from None
    except TimeoutError:
        raise PreviewFailedError(
            f"cannot preview: the upstream did not answer in {PREVIEW_SECONDS} seconds"
        ) from None


async def preview_conda_mirror(
    request: PreviewRequest,
    policy: HttpPolicy,
    query: PreviewQuery,
) -> Preview:
    cve = request.cve.for_conda if request.cve is not None else None
    rules = MirrorRules(request.mirror_filters, request.channel_filters, cve=cve)
    warnings = nothing_passes(request.mirror_filters, request.channel_filters)
    # Taking dependencies needs every subdir read before any file is judged final.
    pool = Pool(refusals=rules.refusals().judge) if request.takes_dependencies else None
    async with upstream_client(policy, proxy=request.proxy) as client:
        upstream = CondaUpstream(client, request.source_root, policy)
        subdirs = await _subdirs(upstream, request)
        page = _Page(query)
        previews = []
        for subdir in subdirs:
            previews.append(await _preview_subdir(upstream, rules, subdir, page, pool))
    if pool is not None:
        await asyncio.to_thread(_with_dependencies, request, pool, previews, page)
    if previews and all(preview.missing for preview in previews):
        raise UpstreamError(
            f"upstream {request.source_root} has none of the subdirs {', '.join(subdirs)}; "
            "check source_root"
        )
    if previews and not any(preview.taken for preview in previews) and not warnings:
        warnings.append("no upstream file passes these filters")
    return Preview(
        subdirs=previews, files=page.files, matching_files=page.matching, warnings=warnings
    )


def _with_dependencies(
    request: PreviewRequest, pool: Pool, previews: list[SubdirPreview], page: _Page
) -> None:
    """Take the closure as a run would, then count and list every file read."""
    assert pool.refusals is not None
    take_dependencies(
        pool, pool.refusals, newest=request.newest_dependencies, report=DependencyReport()
    )
    for preview in previews:
        for entries in pool.by_subdir.get(preview.subdir, {}).values():
            for entry in entries:
                _count(preview, entry.exclusion, entry.dependency_of)
                page.offer(preview.subdir, entry.record, entry.exclusion, entry.dependency_of)


def _count(preview: SubdirPreview, exclusion: Exclusion | None, dependency_of: str | None) -> None:
    if exclusion is None:
        preview.taken += 1
        if dependency_of is not None:
            preview.dependencies += 1
    else:
        preview.dropped += 1
        preview.by_reason[exclusion.reason] += 1


async def _subdirs(upstream: CondaUpstream, request: PreviewRequest) -> list[str]:
    named = named_subdirs(request.mirror_filters, request.channel_filters)
    if named is not None:
        return named
    found = await upstream.list_subdirs()
    if not found:
        raise UpstreamError(
            f"upstream {request.source_root} serves no conda subdir; check source_root"
        )
    return found


async def _preview_subdir(
    upstream: CondaUpstream, rules: MirrorRules, subdir: str, page: _Page, pool: Pool | None
) -> SubdirPreview:
    """Judge one subdir: counted and listed at once, or (given a `pool`) kept there for the
    dependency closure, which counts and lists them after."""
    preview = SubdirPreview(subdir)
    download = await upstream.fetch_repodata(subdir)
    if download is None or download.body is None:
        preview.missing = True
        return preview
    parsed = await asyncio.to_thread(
        parse_repodata, download.body, subdir, keep_raw=pool is not None
    )
    del download.body
    preview.seen = len(parsed.records) + len(parsed.skipped)
    if parsed.skipped:
        preview.by_reason["invalid"] += len(parsed.skipped)
        preview.dropped += len(parsed.skipped)
    judge = rules.judge
    for record in parsed.records:
        exclusion = judge(record, subdir)
        if pool is not None:
            pool.add(subdir, record, exclusion)
            continue
        _count(preview, exclusion, None)
        page.offer(subdir, record, exclusion)
    return preview


async def preview_python_mirror(
    request: PreviewRequest,
    policy: HttpPolicy,
    query: PreviewQuery,
) -> Preview:
    """Per project instead of per subdir. The preview downloads no package file, so a license
    that only the file itself would tell (indexes without core metadata) is unknown here."""
    if request.takes_dependencies:
        return await _preview_python_closure(request, policy, query)
    cve = request.cve.for_python if request.cve is not None else None
    rules = PythonMirrorRules(request.mirror_filters, request.channel_filters, cve=cve)
    warnings = nothing_passes(request.mirror_filters, request.channel_filters)
    projects = list(request.mirror_filters.projects or ())
    if request.channel_filters.projects is not None:
        projects = [p for p in projects if p in set(request.channel_filters.projects)]
    wants_licenses = any(
        filters.include_licenses or filters.exclude_licenses
        for filters in (request.mirror_filters, request.channel_filters)
    )
    page = _Page(query)
    unread = [0]  # files whose license the index does not tell

    async with upstream_client(policy, proxy=request.proxy) as client:
        upstream = PyPIUpstream(client, request.source_root, policy)

        async def project_preview(project: str) -> tuple[SubdirPreview, list[tuple[Any, Any]]]:
            preview = SubdirPreview(project)
            fetched = await upstream.fetch_project(project)
            if fetched is None or fetched.links is None:
                preview.missing = True
                return preview, []
            records, skipped = build_records(project, fetched.links)
            if wants_licenses:
                records = await gather_bounded(
                    policy.concurrency,
                    [partial(upstream_license, upstream, None, r) for r in records],
                )
                unread[0] += sum(1 for record in records if not record.metadata_known)
            preview.seen = len(fetched.links)
            preview.dropped = len(skipped)
            if skipped:
                preview.by_reason["invalid"] += len(skipped)
            return preview, rules.judge_all(records)

        results = await gather_bounded(
            policy.concurrency, [partial(project_preview, p) for p in projects]
        )
    previews = []
    for preview, judged in results:
        for record, exclusion in judged:
            if exclusion is None:
                preview.taken += 1
            else:
                preview.dropped += 1
                preview.by_reason[exclusion.reason] += 1
            page.offer(preview.subdir, record, exclusion)
        previews.append(preview)
    if previews and all(preview.missing for preview in previews):
        raise UpstreamError(
            f"upstream {request.source_root} has none of the projects {', '.join(projects)}"
        )
    if previews and not any(preview.taken for preview in previews) and not warnings:
        warnings.append("no upstream file passes these filters")
    if unread[0] and request.mirror_mode == "active":
        warnings.append(
            f"the index offers no core metadata for {unread[0]} files: the preview counts their "
            "license as unknown (none), while an active run reads it from the files themselves"
        )
    return Preview(
        subdirs=previews, files=page.files, matching_files=page.matching, warnings=warnings
    )


async def _preview_python_closure(
    request: PreviewRequest,
    policy: HttpPolicy,
    query: PreviewQuery,
) -> Preview:
    """The named projects and those their kept files need, read and taken as a passive run
    would (services/pypi_sync.preview_dependencies): nothing is downloaded."""
    job = MirrorJob(
        run_id=0,
        worker_id="preview",
        mirror_id=0,
        mirror_name="preview",
        mirror_type=MirrorType.python_simple,
        channel_id=0,
        channel_name="preview",
        source_root=request.source_root,
        mode=MirrorMode.passive,
        proxy=request.proxy,
        mirror_filters=request.mirror_filters,
        channel_filters=request.channel_filters,
        cve=request.cve,
    )
    read = await preview_dependencies(job, policy)
    page = _Page(query)
    previews = []
    named = mirrored_projects(job)
    for project in [*named, *sorted(set(read.pool.read) - set(named))]:
        preview = SubdirPreview(project, missing=project in read.missing)
        preview.by_reason["invalid"] += read.invalid[project]
        preview.dropped += read.invalid[project]
        for entry in read.pool.projects.get(project, ()):
            _count(preview, entry.exclusion, entry.dependency_of)
            page.offer(project, entry.record, entry.exclusion, entry.dependency_of)
        preview.seen = preview.taken + preview.dropped
        previews.append(preview)
    for preview in previews:
        preview.by_reason = +preview.by_reason
    if previews and all(preview.missing for preview in previews[: len(named)]):
        raise UpstreamError(
            f"upstream {request.source_root} has none of the projects {', '.join(named)}"
        )
    warnings = nothing_passes(request.mirror_filters, request.channel_filters)
    if previews and not any(preview.taken for preview in previews) and not warnings:
        warnings.append("no upstream file passes these filters")
    return Preview(
        subdirs=previews, files=page.files, matching_files=page.matching, warnings=warnings
    )


class _Page:
    """Keeps the files of the requested page and counts every file the query matches."""

    def __init__(self, query: PreviewQuery) -> None:
        self.query = query
        self.search = query.search.lower() if query.search else None
        self.files: list[PreviewFile] = []
        self.matching = 0

    def offer(
        self,
        subdir: str,
        record: CondaRecord | PythonRecord,
        exclusion: Exclusion | None,
        dependency_of: str | None = None,
    ) -> None:
        query = self.query
        taken = exclusion is None
        reason = exclusion.reason if exclusion else DEPENDENCY if dependency_of else None
        if (query.show == "taken" and not taken) or (query.show == "dropped" and taken):
            return
        if query.reason is not None and reason != query.reason:
            return
        if self.search is not None and self.search not in record.filename.lower():
            return
        self.matching += 1
        if query.offset < self.matching <= query.offset + query.limit:
            self.files.append(_preview_file(subdir, record, exclusion, dependency_of))


def _preview_file(
    subdir: str,
    record: CondaRecord | PythonRecord,
    exclusion: Exclusion | None,
    dependency_of: str | None = None,
) -> PreviewFile:
    if isinstance(record, PythonRecord):
        license = record.license_expression or record.license
        families = record_license_families(record)
        build = ""
    else:
        license = record.license
        families = license_families(record.license, record.license_family)
        build = record.build
    return PreviewFile(
        subdir=subdir,
        filename=record.filename,
        name=record.name,
        version=record.version,
        build=build,
        license=license,
        license_families=sorted(families),
        published_at=(
            dt.datetime.fromtimestamp(record.timestamp / 1000, dt.UTC)
            if record.timestamp is not None
            else None
        ),
        size=record.size,
        taken=exclusion is None,
        reason=exclusion.reason if exclusion else DEPENDENCY if dependency_of else None,
        detail=(
            exclusion.detail
            if exclusion
            else f"dependency of {dependency_of}"
            if dependency_of
            else None
        ),
    )
