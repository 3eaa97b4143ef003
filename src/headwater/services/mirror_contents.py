"""Turning what a mirror run read from upstream into the channel's files, in one transaction."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from headwater.db import after_rollback, utcnow
from headwater.errors import RunStoppedError
from headwater.formats.conda.repodata import CondaRecord
from headwater.formats.pypi.records import PythonRecord, encode_record
from headwater.models import (
    ChannelIndex,
    MirrorSubdirState,
    MirrorType,
    PackageFile,
    PackageType,
)
from headwater.models.file import BULK_COLUMNS
from headwater.services import provenance
from headwater.services.cve_matching import load_matcher, rematch
from headwater.services.mirror_job import MirrorJob
from headwater.services.progress import RunProgress
from headwater.services.publish import bump_simple_revision, lock_channel, publish_subdirs
from headwater.services.runs import add_log_entries, complete_run
from headwater.storage import BlobStore

_BATCH = 10_000
T = TypeVar("T")


@dataclass
class SubdirContents:
    """What a run decided one subdir of the channel should hold from this mirror.

    `records` None means "upstream unchanged since the last published run: keep what is there".
    """

    subdir: str
    records: list[CondaRecord] | list[PythonRecord] | None
    missing: bool = False
    url: str | None = None  # the repodata URL read
    files_url: str | None = None  # where the subdir's files are
    etag: str | None = None
    last_modified: str | None = None

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
    touched: set[str] = field(default_factory=set)


def publish_mirror_run(
    session: Session,
    store: BlobStore,
    job: MirrorJob,
    subdirs: Sequence[str],
    contents: Sequence[SubdirContents],
    progress: RunProgress,
) -> None:
    """Apply the run's result to the channel, re-render what changed, and complete the run.

    Everything happens in the caller's transaction under the channel lock, so clients see the
    channel as it was or as the run left it. A run that lost its claim or was asked to stop
    raises RunStoppedError here, and the caller's rollback undoes all of it.
    """
    lock_channel(session, job.channel_id)
    tally = _Tally()
    _drop_unmirrored_subdirs(session, job, subdirs, tally)
    tally.unchanged += _count_files(session, job, [c.subdir for c in contents if not c.changed])
    changed = [content for content in contents if content.changed]
    existing = _mirror_files(session, job.mirror_id, [c.subdir for c in changed])
    taken = _files_of_other_sources(session, job, [c.subdir for c in changed])
    for content in changed:
        _apply_subdir(
            session,
            job,
            content,
            existing.pop(content.subdir, {}),
            taken.get(content.subdir, set()),
            tally,
        )
        content.records = []  # the rows are written; let the memory go before rendering
    _save_subdir_states(session, job, subdirs, contents)
    progress.log(
        f"wrote the file changes: {tally.added} added, {tally.removed} removed, "
        f"{tally.replaced} replaced"
    )
    if job.mirror_type == MirrorType.conda:
        unpublished = set(subdirs) - _published_subdirs(session, job.channel_id)
        publication = publish_subdirs(session, store, job.channel_id, tally.touched | unpublished)
        for index in publication.indexes:
            progress.log(f"rendered the {index.subdir} index: {index.record_count} records")
    elif tally.touched:
        bump_simple_revision(session, job.channel_id)
    if job.cve_names is not None:
        # In the publish's transaction: a run shows completed with its files matched.
        matcher = load_matcher(session, job.cve_names)
        progress.log(
            f"CVE matching: {rematch(session, matcher, channel_id=job.channel_id).describe()}"
        )
    _report(progress, tally)
    # The log so far is written with the completion, so a reader who sees the run completed sees
    # its whole log; if the transaction rolls back, the lines go back to the run's progress.
    snapshot = progress.drain()
    after_rollback(session, lambda: progress.restore(snapshot))
    add_log_entries(session, job.run_id, snapshot.log_lines)
    provenance.record(session, snapshot.deliveries)
    counters, excluded_reasons = snapshot.counters, snapshot.excluded_reasons
    if not complete_run(
        session,
        job.run_id,
        job.worker_id,
        counters=counters,
        excluded_reasons=excluded_reasons,
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


def _published_subdirs(session: Session, channel_id: int) -> set[str]:
    return set(
        session.scalars(select(ChannelIndex.subdir).where(ChannelIndex.channel_id == channel_id))
    )


def _drop_unmirrored_subdirs(
    session: Session, job: MirrorJob, subdirs: Sequence[str], tally: _Tally
) -> None:
    """Files the mirror brought into subdirs it no longer mirrors leave the channel."""
    leaving = PackageFile.mirror_id == job.mirror_id, PackageFile.subdir.not_in(list(subdirs))
    counts = session.execute(
        select(PackageFile.subdir, func.count(PackageFile.id))
        .where(*leaving)
        .group_by(PackageFile.subdir)
    ).all()
    if counts:
        session.execute(delete(PackageFile).where(*leaving))
        for subdir, count in counts:
            tally.removed += count
            tally.touched.add(subdir)


def _count_files(session: Session, job: MirrorJob, subdirs: list[str]) -> int:
    if not subdirs:
        return 0
    return (
        session.scalar(
            select(func.count(PackageFile.id)).where(
                PackageFile.mirror_id == job.mirror_id, PackageFile.subdir.in_(subdirs)
            )
        )
        or 0
    )


def _mirror_files(
    session: Session, mirror_id: int, subdirs: list[str]
) -> dict[str, dict[str, tuple[int, str]]]:
    """subdir → filename → (file id, sha256) of the files this mirror brought into `subdirs`."""
    files: dict[str, dict[str, tuple[int, str]]] = {}
    if not subdirs:
        return files
    rows = session.execute(
        select(PackageFile.subdir, PackageFile.filename, PackageFile.id, PackageFile.sha256).where(
            PackageFile.mirror_id == mirror_id, PackageFile.subdir.in_(subdirs)
        )
    )
    for subdir, filename, file_id, sha256 in rows:
        files.setdefault(subdir, {})[filename] = (file_id, sha256)
    return files


def _files_of_other_sources(
    session: Session, job: MirrorJob, subdirs: list[str]
) -> dict[str, set[str]]:
    """Files other mirrors or uploads already put in these subdirs: the first source keeps them."""
    taken: dict[str, set[str]] = {}
    if not subdirs:
        return taken
    rows = session.execute(
        select(PackageFile.subdir, PackageFile.filename).where(
            PackageFile.channel_id == job.channel_id,
            PackageFile.subdir.in_(subdirs),
            (PackageFile.mirror_id != job.mirror_id) | PackageFile.mirror_id.is_(None),
        )
    )
    for subdir, filename in rows:
        taken.setdefault(subdir, set()).add(filename)
    return taken


def _apply_subdir(
    session: Session,
    job: MirrorJob,
    content: SubdirContents,
    present: dict[str, tuple[int, str]],
    taken: set[str],
    tally: _Tally,
) -> None:
    assert content.records is not None
    wanted = {record.filename for record in content.records}
    gone = [file_id for filename, (file_id, _) in present.items() if filename not in wanted]
    replaced: list[tuple[int, CondaRecord | PythonRecord]] = []
    fresh: list[CondaRecord | PythonRecord] = []
    clashes = 0
    for record in content.records:
        current = present.get(record.filename)
        if current is None:
            if record.filename in taken:
                clashes += 1
            else:
                fresh.append(record)
        elif current[1] != record.sha256:
            replaced.append((current[0], record))
        else:
            tally.unchanged += 1
    for batch in _chunks(gone, 1000):
        session.execute(delete(PackageFile).where(PackageFile.id.in_(batch)))
    for file_id, record in replaced:
        values = dict(zip(BULK_COLUMNS, _row(job, content.subdir, record), strict=True))
        session.execute(update(PackageFile).where(PackageFile.id == file_id).values(**values))
    bulk_insert_files(session, (_row(job, content.subdir, record) for record in fresh))
    if clashes:
        tally.clashes[content.subdir] = clashes
    tally.added += len(fresh)
    tally.replaced += len(replaced)
    tally.removed += len(gone)
    if gone or replaced or fresh:
        tally.touched.add(content.subdir)


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
    )


def python_row(channel_id: int, mirror_id: int | None, record: PythonRecord) -> tuple[Any, ...]:
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
    )


def bulk_insert_files(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert package file rows (in BULK_COLUMNS order) at the driver's full speed.

    A conda-forge subdir is half a million rows: PostgreSQL takes them through COPY, SQLite
    through executemany, both beneath the ORM, inside the session's transaction.
    """
    connection = session.connection()
    columns = ", ".join(BULK_COLUMNS)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY package_files ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    statement = (
        f"INSERT INTO package_files ({columns}) VALUES ({', '.join('?' * len(BULK_COLUMNS))})"
    )
    for batch in _chunks(rows, _BATCH):
        connection.exec_driver_sql(statement, batch)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


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
        state.etag = content.etag
        state.last_modified = content.last_modified
        state.filters_digest = job.filters_digest
        state.fetched_at = now
    session.flush()
