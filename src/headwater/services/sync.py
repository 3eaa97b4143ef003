"""Running a conda mirror: read upstream, filter, download (active), then publish in one go."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import select

from headwater.db import Database
from headwater.errors import UpstreamError
from headwater.filters.rules import MirrorRules
from headwater.formats.conda.repodata import CondaRecord, parse_repodata
from headwater.models import MirrorMode, MirrorSubdirState
from headwater.services.downloads import Downloader, ExpectedFile
from headwater.services.mirror_contents import SubdirContents, publish_mirror_run
from headwater.services.mirror_job import MirrorJob
from headwater.services.progress import RunProgress
from headwater.storage import BlobStore
from headwater.upstreams.conda import CondaUpstream
from headwater.upstreams.http import HttpPolicy, Validators, upstream_client


async def sync_conda_mirror(
    job: MirrorJob,
    db: Database,
    store: BlobStore,
    policy: HttpPolicy,
    progress: RunProgress,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """One run of a conda mirror, from reading upstream to the published channel."""
    async with upstream_client(policy, proxy=job.proxy, transport=transport) as client:
        upstream = CondaUpstream(client, job.source_root, policy)
        subdirs = await _choose_subdirs(job, upstream, progress)
        with db.reading() as session:
            states = {
                state.subdir: state
                for state in session.scalars(
                    select(MirrorSubdirState).where(MirrorSubdirState.mirror_id == job.mirror_id)
                )
            }
        rules = job.rules()
        contents = []
        for subdir in subdirs:
            state = states.get(subdir)
            contents.append(await _read_subdir(job, rules, upstream, subdir, state, progress))
        if contents and all(content.missing for content in contents):
            raise UpstreamError(
                f"upstream {job.source_root} has none of the subdirs {', '.join(subdirs)}; "
                "check source_root"
            )
        if job.mode == MirrorMode.active:
            downloader = Downloader(client, policy, store, db, progress, job.source_root)
            await downloader.fetch_all(_kept_files(contents))
    progress.step("publishing")
    await asyncio.to_thread(publish_mirror_run, db, store, job, subdirs, contents, progress)
    progress.log(f"published {', '.join(subdirs)}")


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


async def _read_subdir(
    job: MirrorJob,
    rules: MirrorRules,
    upstream: CondaUpstream,
    subdir: str,
    state: MirrorSubdirState | None,
    progress: RunProgress,
) -> SubdirContents:
    progress.step(f"reading {subdir} repodata")
    validators = None
    if state is not None and state.filters_digest == job.filters_digest:
        validators = Validators(state.url, state.etag, state.last_modified)
    download = await upstream.fetch_repodata(subdir, validators)
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
    if parsed.skipped:
        progress.exclude("invalid", len(parsed.skipped))
    kept, excluded = judge_all(rules, parsed.records, subdir)
    for reason, count in excluded.items():
        progress.exclude(reason, count)
    described = ", ".join(f"{count} by {reason}" for reason, count in sorted(excluded.items()))
    progress.log(
        f"{subdir}: {len(parsed.records)} records upstream, {len(kept)} pass the filters"
        + (f" ({sum(excluded.values())} excluded: {described})" if excluded else "")
    )
    return SubdirContents(
        subdir=subdir,
        records=kept,
        url=download.url,
        files_url=upstream.files_url(subdir, parsed.base_url),
        etag=download.etag,
        last_modified=download.last_modified,
    )


def judge_all(
    rules: MirrorRules, records: list[CondaRecord], subdir: str
) -> tuple[list[CondaRecord], Counter[str]]:
    """The records the rules take, and how many each reason left out."""
    kept = []
    excluded: Counter[str] = Counter()
    judge = rules.judge
    for record in records:
        exclusion = judge(record, subdir)
        if exclusion is None:
            kept.append(record)
        else:
            excluded[exclusion.reason] += 1
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
