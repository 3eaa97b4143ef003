"""Turning what a mirror run read from upstream into the channel's files, in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from headwater.db import utcnow
from headwater.errors import RunStoppedError
from headwater.formats.conda.repodata import CondaRecord
from headwater.models import ChannelIndex, MirrorSubdirState, PackageFile, PackageType
from headwater.services.progress import RunProgress
from headwater.services.publish import Publication, lock_channel, publish_subdirs
from headwater.services.runs import add_log, complete_run
from headwater.storage import BlobStore

if TYPE_CHECKING:
    from headwater.services.sync import MirrorJob

_BATCH = 1000


@dataclass
class SubdirContents:
    """What a run decided one subdir of the channel should hold from this mirror.

    `records` None means "upstream unchanged since the last published run: keep what is there".
    """

    subdir: str
    records: list[CondaRecord] | None
    missing: bool = False
    base_url: str | None = None
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    file_url: Callable[[str], str] | None = None

    def source_url(self, filename: str) -> str:
        assert self.file_url is not None
        return self.file_url(filename)


@dataclass
class _Changes:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)
    unchanged: int = 0
    touched: set[str] = field(default_factory=set)


def publish_mirror_run(
    session: Session,
    store: BlobStore,
    job: MirrorJob,
    subdirs: Sequence[str],
    contents: Sequence[SubdirContents],
    progress: RunProgress,
) -> Publication:
    """Apply the run's result to the channel, re-render what changed, and complete the run.

    Everything happens in the caller's transaction under the channel lock, so clients see the
    channel as it was or as the run left it. A run that lost its claim or was asked to stop
    raises RunStoppedError here, and the caller's rollback undoes all of it.
    """
    lock_channel(session, job.channel_id)
    changes = _Changes()
    existing = _mirror_files(session, job.mirror_id)
    taken_by_others = _files_of_other_sources(session, job, [c.subdir for c in contents if c.records])
    for content in contents:
        present = existing.pop(content.subdir, {})
        if content.records is None:
            changes.unchanged += len(present)
            continue
        _diff_subdir(job, content, present, taken_by_others.get(content.subdir, set()), changes, progress)
    for subdir, present in existing.items():  # subdirs no longer mirrored
        if subdir not in subdirs:
            changes.deletes.extend(file_id for file_id, _ in present.values())
            changes.touched.add(subdir)
    _apply(session, changes)
    _save_subdir_states(session, job, subdirs, contents)
    unpublished = set(subdirs) - _published_subdirs(session, job.channel_id)
    publication = publish_subdirs(session, store, job.channel_id, changes.touched | unpublished)
    if changes.updates:
        progress.log(f"{len(changes.updates)} files changed upstream and were replaced", "warning")
    progress.set_count("added", len(changes.inserts) + len(changes.updates))
    progress.set_count("removed", len(changes.deletes))
    progress.set_count("unchanged", changes.unchanged)
    snapshot = progress.drain()
    if not complete_run(
        session,
        job.run_id,
        job.worker_id,
        counters=snapshot.counters,
        excluded_reasons=snapshot.excluded_reasons,
    ):
        raise RunStoppedError("the run was stopped or lost its claim before publishing")
    for level, message in snapshot.log_lines:
        add_log(session, job.run_id, message, level=level)
    return publication


def _published_subdirs(session: Session, channel_id: int) -> set[str]:
    return set(session.scalars(select(ChannelIndex.subdir).where(ChannelIndex.channel_id == channel_id)))


def _mirror_files(session: Session, mirror_id: int) -> dict[str, dict[str, tuple[int, str]]]:
    """subdir → filename → (file id, sha256) of the files this mirror brought."""
    files: dict[str, dict[str, tuple[int, str]]] = {}
    rows = session.execute(
        select(PackageFile.subdir, PackageFile.filename, PackageFile.id, PackageFile.sha256).where(
            PackageFile.mirror_id == mirror_id
        )
    )
    for subdir, filename, file_id, sha256 in rows:
        files.setdefault(subdir, {})[filename] = (file_id, sha256)
    return files


def _files_of_other_sources(
    session: Session, job: MirrorJob, subdirs: Iterable[str]
) -> dict[str, set[str]]:
    """Files other mirrors or uploads already put in these subdirs: the first source keeps them."""
    taken: dict[str, set[str]] = {}
    rows = session.execute(
        select(PackageFile.subdir, PackageFile.filename).where(
            PackageFile.channel_id == job.channel_id,
            PackageFile.subdir.in_(list(subdirs)),
            (PackageFile.mirror_id != job.mirror_id) | PackageFile.mirror_id.is_(None),
        )
    )
    for subdir, filename in rows:
        taken.setdefault(subdir, set()).add(filename)
    return taken


def _diff_subdir(
    job: MirrorJob,
    content: SubdirContents,
    present: dict[str, tuple[int, str]],
    taken: set[str],
    changes: _Changes,
    progress: RunProgress,
) -> None:
    assert content.records is not None
    wanted = {record.filename: record for record in content.records}
    before = (len(changes.inserts), len(changes.updates), len(changes.deletes))
    for filename, (file_id, _) in present.items():
        if filename not in wanted:
            changes.deletes.append(file_id)
    clashes = 0
    for filename, record in wanted.items():
        current = present.get(filename)
        if current is None:
            if filename in taken:
                clashes += 1
                continue
            changes.inserts.append(_file_row(job, content, record))
        elif current[1] != record.sha256:
            changes.updates.append({"id": current[0], **_file_row(job, content, record)})
        else:
            changes.unchanged += 1
    if clashes:
        progress.log(
            f"{content.subdir}: {clashes} files are already in the channel from another source "
            "and were left as they are",
            "warning",
        )
    if (len(changes.inserts), len(changes.updates), len(changes.deletes)) != before:
        changes.touched.add(content.subdir)


def _published_at(record: CondaRecord) -> dt.datetime | None:
    if record.timestamp is None:
        return None
    return dt.datetime.fromtimestamp(record.timestamp / 1000, dt.UTC)


def _file_row(job: MirrorJob, content: SubdirContents, record: CondaRecord) -> dict[str, Any]:
    return {
        "channel_id": job.channel_id,
        "mirror_id": job.mirror_id,
        "package_type": PackageType.conda,
        "subdir": content.subdir,
        "filename": record.filename,
        "name": record.name,
        "version": record.version,
        "build": record.build,
        "sha256": record.sha256,
        "md5": record.md5,
        "size": record.size,
        "published_at": _published_at(record),
        "license": record.license,
        "license_family": record.license_family,
        "record": record.raw,
        "source_url": content.source_url(record.filename),
        "uploaded_by": None,
        "created_at": utcnow(),
    }


def _apply(session: Session, changes: _Changes) -> None:
    table = PackageFile.__table__
    for start in range(0, len(changes.deletes), _BATCH):
        batch = changes.deletes[start : start + _BATCH]
        session.execute(delete(table).where(table.c.id.in_(batch)))
    for row in changes.updates:
        values = {key: value for key, value in row.items() if key not in ("id", "created_at")}
        session.execute(update(table).where(table.c.id == row["id"]).values(**values))
    for start in range(0, len(changes.inserts), _BATCH * 20):
        session.execute(insert(table), changes.inserts[start : start + _BATCH * 20])


def _save_subdir_states(
    session: Session, job: MirrorJob, subdirs: Sequence[str], contents: Sequence[SubdirContents]
) -> None:
    session.execute(
        delete(MirrorSubdirState).where(
            MirrorSubdirState.mirror_id == job.mirror_id,
            MirrorSubdirState.subdir.not_in(list(subdirs)),
        )
    )
    now = utcnow()
    for content in contents:
        if content.missing:
            session.execute(
                delete(MirrorSubdirState).where(
                    MirrorSubdirState.mirror_id == job.mirror_id,
                    MirrorSubdirState.subdir == content.subdir,
                )
            )
        if content.records is None or content.url is None:
            continue
        state = session.get(MirrorSubdirState, (job.mirror_id, content.subdir))
        if state is None:
            state = MirrorSubdirState(mirror_id=job.mirror_id, subdir=content.subdir)
            session.add(state)
        state.url = content.url
        state.etag = content.etag
        state.last_modified = content.last_modified
        state.filters_digest = job.filters_digest
        state.fetched_at = now
    session.flush()
