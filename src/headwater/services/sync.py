"""Running a conda mirror: read upstream, filter, download (active), then publish in one go."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.cves.names import CondaNames
from headwater.db import Database
from headwater.errors import UpstreamError
from headwater.filters import FilterSet, named_subdirs
from headwater.filters.python_rules import PythonMirrorRules
from headwater.filters.rules import MirrorRules
from headwater.formats.conda.repodata import CondaRecord, parse_repodata
from headwater.models import Channel, Mirror, MirrorMode, MirrorSubdirState, MirrorType
from headwater.services.cve_matching import CveOracle, database_revision, load_matcher
from headwater.services.downloads import Downloader, ExpectedFile
from headwater.services.mirror_contents import SubdirContents, publish_mirror_run
from headwater.services.progress import RunProgress
from headwater.storage import BlobStore
from headwater.upstreams.conda import CondaUpstream
from headwater.upstreams.http import HttpPolicy, Validators, upstream_client

# Bump when the meaning of a published record changes, so that every mirror re-reads upstream.
_PROCESSING_VERSION = 1


@dataclass(frozen=True)
class MirrorJob:
    """What a run needs to know of its mirror and channel, read once when it starts."""

    run_id: int
    worker_id: str
    mirror_id: int
    mirror_name: str
    mirror_type: MirrorType
    channel_id: int
    channel_name: str
    source_root: str
    mode: MirrorMode
    proxy: str | None
    mirror_filters: FilterSet
    channel_filters: FilterSet
    # Set for active mirrors with CVE rules: what those rules read, and the database's state.
    cve: CveOracle | None = None
    cve_revision: str | None = None
    # How conda names map to PyPI names, to match the channel's files when the run publishes.
    cve_names: CondaNames | None = None

    @property
    def filters_digest(self) -> str:
        """Changes whenever what the mirror would take from an unchanged upstream changes."""
        document = {
            "version": _PROCESSING_VERSION,
            "mode": self.mode,
            "source_root": self.source_root,
            "mirror": self.mirror_filters.to_json(),
            "channel": self.channel_filters.to_json(),
            "cve": self.cve_revision,
        }
        return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def rules(self) -> MirrorRules:
        """The mirror's and the channel's rules. CVE rules apply to active mirrors only."""
        cve = self.cve.for_conda if self.cve is not None else None
        return MirrorRules(self.mirror_filters, self.channel_filters, cve=cve)

    def python_rules(self) -> PythonMirrorRules:
        cve = self.cve.for_python if self.cve is not None else None
        return PythonMirrorRules(self.mirror_filters, self.channel_filters, cve=cve)

    def named_subdirs(self) -> list[str] | None:
        """The subdirs both filter sets allow when either names some; None when neither does."""
        return named_subdirs(self.mirror_filters, self.channel_filters)


def load_job(
    session: Session,
    run_id: int,
    worker_id: str,
    mirror_id: int,
    cve_names: CondaNames | None = None,
) -> MirrorJob:
    mirror = session.get(Mirror, mirror_id)
    if mirror is None:
        raise UpstreamError(f"mirror {mirror_id} no longer exists")
    channel = session.get(Channel, mirror.channel_id)
    assert channel is not None
    cve = revision = None
    wants_cve = mirror.filters.has_cve_rules or channel.filters.has_cve_rules
    if mirror.mirror_mode == MirrorMode.active and wants_cve:
        cve = CveOracle(session, load_matcher(session, cve_names or CondaNames()), channel.id)
        revision = database_revision(session)
    return MirrorJob(
        run_id=run_id,
        worker_id=worker_id,
        mirror_id=mirror.id,
        mirror_name=mirror.mirror_name,
        mirror_type=mirror.mirror_type,
        channel_id=channel.id,
        channel_name=channel.name,
        source_root=mirror.source_root,
        mode=mirror.mirror_mode,
        proxy=mirror.proxy,
        mirror_filters=mirror.filters,
        channel_filters=channel.filters,
        cve=cve,
        cve_revision=revision,
        cve_names=cve_names,
    )


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
    with db.writing() as session:
        publish_mirror_run(session, store, job, subdirs, contents, progress)
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
