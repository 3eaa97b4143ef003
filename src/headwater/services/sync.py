"""Running a conda mirror: read upstream, filter, download (active), then publish in one go."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from functools import partial
from pathlib import Path

from sqlalchemy import select

from headwater.db import Database
from headwater.dependencies.conda import Pool, take_dependencies
from headwater.dependencies.report import DependencyReport
from headwater.errors import UpstreamError
from headwater.filters.rules import MirrorRules
from headwater.formats.conda.repodata import CondaRecord, parse_repodata
from headwater.models import MirrorMode, MirrorSubdirState
from headwater.services.downloads import Downloader, ExpectedFile
from headwater.services.mirror_contents import SubdirContents, publish_mirror_run
from headwater.services.mirror_job import MirrorJob
from headwater.services.missing_files import leave_out_missing
from headwater.services.progress import RunProgress
from headwater.services.solvability import (
    CondaCheck,
    CondaElsewhere,
    RunRecords,
    blame_of,
    previous_report,
)
from headwater.storage import BlobStore
from headwater.upstreams.conda import CondaUpstream
from headwater.upstreams.http import HttpPolicy, Validators, upstream_client


async def sync_conda_mirror(
    job: MirrorJob,
    db: Database,
    store: BlobStore,
    policy: HttpPolicy,
    progress: RunProgress,
) -> None:
    """One run of a conda mirror, from reading upstream to the published channel."""
    async with upstream_client(policy, proxy=job.proxy) as client:
        upstream = CondaUpstream(client, job.source_root, policy)
        subdirs = await _choose_subdirs(job, upstream, progress)
        with db.reading() as session:
            states = {
                state.subdir: state
                for state in session.scalars(
                    select(MirrorSubdirState).where(MirrorSubdirState.mirror_id == job.mirror_id)
                )
            }
        reader = _SubdirReader(job, upstream, progress)
        contents = [await reader.read(subdir, states.get(subdir)) for subdir in subdirs]
        if contents and all(content.missing for content in contents):
            raise UpstreamError(
                f"upstream {job.source_root} has none of the subdirs {', '.join(subdirs)}; "
                "check source_root"
            )
        if any(content.changed for content in contents):
            # What depends on what crosses subdirs (noarch): read unchanged ones again.
            for position, content in enumerate(contents):
                if not content.changed:
                    contents[position] = await reader.read(content.subdir, None)
        report = DependencyReport()
        if job.takes_dependencies and any(content.changed for content in contents):
            await asyncio.to_thread(
                _take_dependencies, job, reader.pool, contents, report, progress
            )
        reader.count_exclusions(progress)
        if job.mode == MirrorMode.active:
            downloader = Downloader(client, policy, store, db, progress, job.source_root)
            missing = await downloader.fetch_all(_kept_files(contents), job.on_missing_file)
            leave_out_missing(contents, missing, progress, report.notes)
    with tempfile.TemporaryDirectory(prefix="headwater-run-") as workdir:
        elsewhere = None
        if job.checks.also_available:
            elsewhere = CondaElsewhere(
                job.checks.also_available,
                policy,
                job.proxy,
                Path(workdir),
                report.notes,
            )
        held = None
        if all(content.changed for content in contents):
            held = RunRecords(
                job.mirror_id,
                {c.subdir: c.records for c in contents if c.records},  # type: ignore[misc]
            )
        check = CondaCheck(job.checks, report, reader.pool, elsewhere, Path(workdir), held)
        if not any(content.changed for content in contents):
            check.carried = await asyncio.to_thread(previous_report, db, job.mirror_id, job.run_id)
            reader.pool.previous_blame = blame_of(check.carried)
            report.notes.add(
                "upstream unchanged since the last run: the filters named for what is missing "
                "are those the last run found"
            )
        progress.step("publishing")
        await asyncio.to_thread(
            publish_mirror_run, db, store, job, subdirs, contents, progress, check
        )
    progress.log(f"published {', '.join(subdirs)}")


def _take_dependencies(
    job: MirrorJob,
    pool: Pool,
    contents: list[SubdirContents],
    report: DependencyReport,
    progress: RunProgress,
) -> None:
    """Add to the kept records what they depend on, as the refusing rules allow."""
    progress.step("taking dependencies")
    assert pool.refusals is not None
    taken = take_dependencies(pool, pool.refusals, newest=job.newest_dependencies, report=report)
    by_subdir = {content.subdir: content for content in contents}
    for entry in taken:
        records = by_subdir[entry.subdir].records
        assert records is not None
        records.append(entry.record)  # type: ignore[arg-type]
    if taken:
        described = ", ".join(
            f"{count} in {subdir}" for subdir, count in sorted(report.taken.items())
        )
        progress.log(f"took {len(taken)} files as dependencies of kept files ({described})")


async def _choose_subdirs(
    job: MirrorJob, upstream: CondaUpstream, progress: RunProgress
) -> list[str]:
    named = job.named_subdirs()
    if named is not None:
        if not named:
            progress.log(
                "the channel's and the mirror's subdirs filters share no subdir", "warning"
            )
        return named
    progress.step("listing upstream subdirs")
    subdirs = await upstream.list_subdirs()
    if not subdirs:
        raise UpstreamError(f"upstream {job.source_root} serves no conda subdir; check source_root")
    progress.log(f"upstream serves {', '.join(subdirs)}")
    return subdirs


class _SubdirReader:
    """Reads subdirs for a run; every record read goes into `pool` with its judgement, which
    the closure and the dependency check read."""

    def __init__(self, job: MirrorJob, upstream: CondaUpstream, progress: RunProgress) -> None:
        self.job = job
        self.rules = job.rules()
        self.upstream = upstream
        self.progress = progress
        self.pool = Pool(refusals=self.rules.refusals().judge)
        self.skipped = 0

    async def read(self, subdir: str, state: MirrorSubdirState | None) -> SubdirContents:
        job, progress = self.job, self.progress
        progress.step(f"reading {subdir} repodata")
        validators = None
        if state is not None and state.filters_digest == job.filters_digest:
            validators = Validators(state.url, state.etag, state.last_modified)
        download = await self.upstream.fetch_repodata(subdir, validators)
        if download is None:
            progress.log(f"upstream has no {subdir} subdir; its files leave the channel", "warning")
            return SubdirContents(subdir=subdir, records=[], missing=True)
        if download.not_modified:
            progress.log(f"{subdir}: upstream unchanged since the last run")
            return SubdirContents(subdir=subdir, records=None)
        assert download.body is not None
        parsed = await asyncio.to_thread(parse_repodata, download.body, subdir)
        del download.body
        for problem in parsed.skipped[:20]:
            progress.log(f"{subdir}: skipped {problem}", "warning")
        if len(parsed.skipped) > 20:
            progress.log(
                f"{subdir}: skipped {len(parsed.skipped) - 20} more unusable records", "warning"
            )
        progress.count("seen", len(parsed.records) + len(parsed.skipped))
        self.skipped += len(parsed.skipped)
        kept, excluded = await asyncio.to_thread(
            partial(
                judge_all,
                self.rules,
                parsed.records,
                subdir,
                self.pool,
                pool_kept=self.job.takes_dependencies,
            )
        )
        described = ", ".join(f"{count} by {reason}" for reason, count in sorted(excluded.items()))
        progress.log(
            f"{subdir}: {len(parsed.records)} records upstream, {len(kept)} pass the filters"
            + (f" ({sum(excluded.values())} excluded: {described})" if excluded else "")
        )
        return SubdirContents(
            subdir=subdir,
            records=kept,
            url=download.url,
            files_url=self.upstream.files_url(subdir, parsed.base_url),
            etag=download.etag,
            last_modified=download.last_modified,
        )

    def count_exclusions(self, progress: RunProgress) -> None:
        """The run's excluded counters, once dependencies were taken."""
        if self.skipped:
            progress.exclude("invalid", self.skipped)
        for reason, count in self.pool.excluded().items():
            progress.exclude(reason, count)


def judge_all(
    rules: MirrorRules,
    records: list[CondaRecord],
    subdir: str,
    pool: Pool | None = None,
    *,
    pool_kept: bool = True,
) -> tuple[list[CondaRecord], Counter[str]]:
    """The records the rules take, and how many each reason left out. Given a `pool`, each
    record left out goes there (what the check blames), and each kept one too with
    `pool_kept` (what the closure starts from)."""
    kept = []
    excluded: Counter[str] = Counter()
    judge = rules.judge
    add = pool.add if pool is not None else None
    if pool is not None:
        pool.read.add(subdir)
    for record in records:
        exclusion = judge(record, subdir)
        if exclusion is None:
            kept.append(record)
            if add is not None and pool_kept:
                add(subdir, record, None)
        else:
            excluded[exclusion.reason] += 1
            if add is not None:
                add(subdir, record, exclusion)
    return kept, excluded


def _kept_files(contents: list[SubdirContents]) -> list[ExpectedFile]:
    """Every file the run keeps, as its index describes it."""
    return [
        ExpectedFile(
            record.filename, content.source_url(record.filename), record.sha256, record.size
        )
        for content in contents
        for record in content.records or ()
    ]
