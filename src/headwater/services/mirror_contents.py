"""Turning what a mirror run read from upstream into the channel's next revision."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.orm import Session

from headwater.db import Database, after_rollback, fetch_tuples, utcnow
from headwater.errors import RunStoppedError
from headwater.formats.conda import KNOWN_SUBDIRS
from headwater.formats.conda.repodata import CondaRecord
from headwater.formats.pypi.records import PythonRecord, encode_record
from headwater.models import (
    ChannelRevision,
    MirrorSubdirState,
    MirrorType,
    PackageFile,
    PackageType,
    RevisionCause,
    RevisionIndex,
)
from headwater.services import provenance
from headwater.services.indexes import describe
from headwater.services.mirror_job import MirrorJob
from headwater.services.missing_files import MissingFile, run_warnings
from headwater.services.progress import RunProgress
from headwater.services.revisions import Candidate, Change, Plan, apply_change
from headwater.services.runs import add_log_entries, complete_run
from headwater.storage import BlobStore

if TYPE_CHECKING:
    from headwater.services.solvability import DependencyCheck


@dataclass
class SubdirContents:
    """What a run decided one subdir of the channel should hold from this mirror.

    `records` None means "upstream unchanged since the last published run: keep what is there".
    `left_out` are the files upstream listed but could not deliver, whose records the run left
    out (services/missing_files.py).
    """

    subdir: str
    records: list[CondaRecord] | list[PythonRecord] | None
    missing: bool = False
    url: str | None = None  # the repodata URL read
    files_url: str | None = None  # where the subdir's files are
    etag: str | None = None
    last_modified: str | None = None
    left_out: list[MissingFile] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.records is not None

    def source_url(self, filename: str) -> str:
        assert self.files_url is not None
        return self.files_url + filename


@dataclass
class _Tally:
    added: int = 0
    replaced: int = 0
    removed: int = 0
    unchanged: int = 0
    clashes: dict[str, int] = field(default_factory=dict)


def publish_mirror_run(
    db: Database,
    store: BlobStore,
    job: MirrorJob,
    subdirs: Sequence[str],
    contents: Sequence[SubdirContents],
    progress: RunProgress,
    check: DependencyCheck | None = None,
) -> None:
    """Land the run's result as the channel's next revision, and complete the run with it.

    A run that lost its claim or was asked to stop raises RunStoppedError when it would land,
    and the channel stays as it was. Given a `check`, the revision is checked before it lands
    (services/solvability.py), and may be refused.
    """
    change = MirrorRunChange(job, subdirs, contents, progress, check)
    revision = apply_change(db, store, job.channel_id, change, cve_names=job.cve_names)
    if revision is not None:
        progress.log(f"published revision {revision.number}")


class MirrorRunChange(Change):
    """Replace what the mirror brought into the run's subdirs with what the run read."""

    cause = RevisionCause.run

    def __init__(
        self,
        job: MirrorJob,
        subdirs: Sequence[str],
        contents: Sequence[SubdirContents],
        progress: RunProgress,
        check: DependencyCheck | None = None,
    ) -> None:
        self.job = job
        self.check = check
        self.subdirs = list(subdirs)
        self.contents = contents
        self.progress = progress
        self.run_id = job.run_id
        self.actor = None
        self.tally = _Tally()

    def plan(self, session: Session, channel_id: int, head: int) -> Plan:
        job, plan = self.job, Plan()
        self.tally = tally = _Tally()
        _drop_unmirrored_subdirs(session, job, self.subdirs, plan, tally)
        unchanged = [c.subdir for c in self.contents if not c.changed]
        tally.unchanged += _count_files(session, job, unchanged)
        changed = [content for content in self.contents if content.changed]
        existing = _mirror_files(session, job.mirror_id, [c.subdir for c in changed])
        fresh = {
            content.subdir: _plan_subdir(
                job, content, existing.get(content.subdir, {}), plan, tally
            )
            for content in changed
        }
        taken = _files_of_other_sources(session, job, fresh)
        for content in changed:
            _add_fresh(job, content.subdir, fresh[content.subdir], taken, plan, tally)
        if job.mirror_type == MirrorType.conda:
            plan.render |= set(self.subdirs) - _published_subdirs(session, channel_id, head)
        self.progress.log(
            f"planned against revision {head}: {len(plan.additions)} files to add, "
            f"{len(plan.removals)} to remove"
        )
        return plan

    def rendered(self, index: RevisionIndex) -> None:
        self.progress.log(f"rendered {describe(index)}")

    def rebuilding(self) -> None:
        self.progress.log(
            "another change to the channel landed first; building this run's revision on it"
        )

    def landing(self) -> AbstractContextManager[object]:
        """The heartbeat writes what it drained before the landing drains the rest."""
        return self.progress.flushing

    def verify(self, db: Database, store: BlobStore, candidate: Candidate) -> None:
        if self.check is None:
            return
        self.progress.step("checking dependencies")
        try:
            self.check.verify(db, store, candidate, self.job.run_id)
        finally:
            for line in self.check.summary:
                self.progress.log(line, "info" if line.startswith("took") else "warning")

    def land(self, session: Session, revision: ChannelRevision | None) -> None:
        job, progress, tally = self.job, self.progress, self.tally
        _save_subdir_states(session, job, self.subdirs, self.contents)
        progress.log(
            f"file changes: {tally.added} added, {tally.removed} removed, {tally.replaced} replaced"
        )
        _report(progress, tally)
        # The log so far is written with the completion, so a reader who sees the run
        # completed sees its whole log; if the transaction rolls back, the lines go back to
        # the run's progress.
        snapshot = progress.drain()
        after_rollback(session, lambda: progress.restore(snapshot))
        add_log_entries(session, job.run_id, snapshot.log_lines)
        provenance.record(session, snapshot.deliveries)
        if not complete_run(
            session,
            job.run_id,
            job.worker_id,
            counters=snapshot.counters,
            excluded_reasons=snapshot.excluded_reasons,
            warnings=run_warnings(self.contents),
        ):
            raise RunStoppedError("the run was stopped or lost its claim before publishing")


def _report(progress: RunProgress, tally: _Tally) -> None:
    for subdir, count in sorted(tally.clashes.items()):
        progress.log(
            f"{subdir}: {count} files are already in the channel from another source and were "
            "left as they are",
            "warning",
        )
    if tally.replaced:
        progress.log(
            f"{tally.replaced} files changed upstream under the same name and were replaced",
            "warning",
        )
    progress.set_count("added", tally.added + tally.replaced)
    progress.set_count("removed", tally.removed)
    progress.set_count("unchanged", tally.unchanged)


def _published_subdirs(session: Session, channel_id: int, head: int) -> set[str]:
    return set(
        session.scalars(
            select(RevisionIndex.subdir).where(
                RevisionIndex.channel_id == channel_id, RevisionIndex.number == head
            )
        )
    )


def _mirror_head(mirror_id: int) -> ColumnElement[bool]:
    return and_(PackageFile.mirror_id == mirror_id, PackageFile.in_head())


def _drop_unmirrored_subdirs(
    session: Session, job: MirrorJob, subdirs: Sequence[str], plan: Plan, tally: _Tally
) -> None:
    """Files the mirror brought into subdirs it no longer mirrors leave the channel."""
    if job.mirror_type == MirrorType.conda:
        # the few other conda subdirs, each found in the index, not every file scanned
        elsewhere = PackageFile.subdir.in_(sorted(set(KNOWN_SUBDIRS) - set(subdirs)))
    else:
        elsewhere = PackageFile.subdir.not_in(list(subdirs))
    leaving = session.execute(
        select(
            PackageFile.id, PackageFile.package_type, PackageFile.subdir, PackageFile.name
        ).where(_mirror_head(job.mirror_id), elsewhere)
    )
    for file_id, package_type, subdir, name in leaving:
        plan.remove(file_id, package_type, subdir, name)
        tally.removed += 1


def _count_files(session: Session, job: MirrorJob, subdirs: list[str]) -> int:
    if not subdirs:
        return 0
    return (
        session.scalar(
            select(func.count(PackageFile.id)).where(
                _mirror_head(job.mirror_id), PackageFile.subdir.in_(subdirs)
            )
        )
        or 0
    )


Present = dict[str, tuple[int, str, str]]  # filename → (file id, sha256, name)


def _mirror_files(session: Session, mirror_id: int, subdirs: list[str]) -> dict[str, Present]:
    """subdir → the files this mirror brought into `subdirs`."""
    files: dict[str, Present] = {}
    if not subdirs:
        return files
    # beneath the ORM: a conda-forge-sized mirror is half a million rows
    rows = fetch_tuples(
        session,
        select(
            PackageFile.subdir,
            PackageFile.filename,
            PackageFile.id,
            PackageFile.sha256,
            PackageFile.name,
        ).where(_mirror_head(mirror_id), PackageFile.subdir.in_(subdirs)),
    )
    for subdir in subdirs:
        files[subdir] = {}
    for subdir, filename, file_id, sha256, name in rows:
        files[subdir][filename] = (file_id, sha256, name)
    return files


def _files_of_other_sources(
    session: Session, job: MirrorJob, fresh: dict[str, list[CondaRecord | PythonRecord]]
) -> dict[str, set[str]]:
    """Of the files the run would add, those other mirrors or uploads already put in the
    channel: the first source keeps them. Looked up by name when they are few (a run that
    changes a few files of a large channel), else read in one pass over the subdirs."""
    taken: dict[str, set[str]] = {}
    names = {subdir: [record.filename for record in records] for subdir, records in fresh.items()}
    others = (PackageFile.mirror_id != job.mirror_id) | PackageFile.mirror_id.is_(None)
    in_head = and_(PackageFile.channel_id == job.channel_id, PackageFile.in_head(), others)
    rows: Iterable[Any]
    if sum(len(listed) for listed in names.values()) > _LOOKUPS:
        subdirs = [subdir for subdir, listed in names.items() if listed]
        rows = session.execute(
            select(PackageFile.subdir, PackageFile.filename).where(
                in_head, PackageFile.subdir.in_(subdirs)
            )
        )
    else:
        rows = itertools.chain.from_iterable(
            session.execute(
                select(PackageFile.subdir, PackageFile.filename).where(
                    in_head,
                    PackageFile.subdir == subdir,
                    PackageFile.filename.in_(listed[start : start + 500]),
                )
            )
            for subdir, listed in names.items()
            for start in range(0, len(listed), 500)
        )
    for subdir, filename in rows:
        taken.setdefault(subdir, set()).add(filename)
    return taken


_LOOKUPS = 5000  # files to add past which the clash check reads the subdirs whole


def _plan_subdir(
    job: MirrorJob, content: SubdirContents, present: Present, plan: Plan, tally: _Tally
) -> list[CondaRecord | PythonRecord]:
    """Plan what the subdir's records replace and remove of what the mirror brought; answer
    the records new to the mirror, which another source may have put in the channel first."""
    assert content.records is not None
    kind = PackageType.conda if job.mirror_type == MirrorType.conda else PackageType.python
    fresh = []
    replaced = 0
    known = present.get  # half a million lookups for a conda-forge-sized subdir
    for record in content.records:
        current = known(record.filename)
        if current is None:
            fresh.append(record)
        elif current[1] != record.sha256:
            plan.remove(current[0], kind, content.subdir, current[2])
            plan.add(_row(job, content.subdir, record))
            replaced += 1
    kept = len(content.records) - len(fresh)  # of the files present, those upstream still has
    if kept < len(present):  # upstream dropped some
        wanted = {record.filename for record in content.records}
        for filename, (file_id, _, name) in present.items():
            if filename not in wanted:
                plan.remove(file_id, kind, content.subdir, name)
                tally.removed += 1
    tally.replaced += replaced
    tally.unchanged += kept - replaced
    return fresh


def _add_fresh(
    job: MirrorJob,
    subdir: str,
    fresh: list[CondaRecord | PythonRecord],
    taken: dict[str, set[str]],
    plan: Plan,
    tally: _Tally,
) -> None:
    clashing = taken.get(subdir, set())
    clashes = 0
    for record in fresh:
        if record.filename in clashing:
            clashes += 1
        else:
            plan.add(_row(job, subdir, record))
            tally.added += 1
    if clashes:
        tally.clashes[subdir] = clashes


def _row(job: MirrorJob, subdir: str, record: CondaRecord | PythonRecord) -> tuple[Any, ...]:
    if isinstance(record, PythonRecord):
        return python_row(job.channel_id, job.mirror_id, record)
    return (
        job.channel_id,
        job.mirror_id,
        PackageType.conda.value,
        subdir,
        record.filename,
        record.name,
        record.version,
        record.build,
        record.sha256,
        record.size,
        record.timestamp,
        record.raw,
        None,
        None,
    )


def python_row(
    channel_id: int, mirror_id: int | None, record: PythonRecord, uploaded_by: str | None = None
) -> tuple[Any, ...]:
    """A PyPI file's row: its `subdir` is its project, its `record` the PythonRecord."""
    return (
        channel_id,
        mirror_id,
        PackageType.python.value,
        record.project,
        record.filename,
        record.project,
        record.version,
        "",
        record.sha256,
        record.size,
        record.timestamp,
        encode_record(record),
        uploaded_by,
        record.core_metadata or None,
    )


def _save_subdir_states(
    session: Session, job: MirrorJob, subdirs: Sequence[str], contents: Sequence[SubdirContents]
) -> None:
    stale = [content.subdir for content in contents if content.missing]
    session.execute(
        delete(MirrorSubdirState).where(
            MirrorSubdirState.mirror_id == job.mirror_id,
            MirrorSubdirState.subdir.not_in(list(subdirs)) | MirrorSubdirState.subdir.in_(stale),
        )
    )
    now = utcnow()
    for content in contents:
        if not content.changed or content.missing:
            continue
        assert content.url is not None and content.files_url is not None
        state = session.get(MirrorSubdirState, (job.mirror_id, content.subdir))
        if state is None:
            state = MirrorSubdirState(mirror_id=job.mirror_id, subdir=content.subdir)
            session.add(state)
        state.url = content.url
        state.files_url = content.files_url
        # Without validators, a subdir the run left files out of is read again next run, and
        # those files asked for again.
        state.etag = None if content.left_out else content.etag
        state.last_modified = None if content.left_out else content.last_modified
        state.filters_digest = job.filters_digest
        state.fetched_at = now
    session.flush()
