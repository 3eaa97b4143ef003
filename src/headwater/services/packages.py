"""The files of a channel: finding one to serve, and listing packages for people."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from rattler import Version
from sqlalchemy import SQLColumnExpression, distinct, func, select
from sqlalchemy.orm import Session

from headwater.db import Database
from headwater.errors import PackageFileNotFoundError
from headwater.filters.python_specs import parse_version
from headwater.formats.pypi.records import PythonRecord, decode_record
from headwater.models import (
    Channel,
    ChannelRevision,
    Mirror,
    MirrorSubdirState,
    PackageFile,
    PackageType,
    RevisionCause,
    RevisionIndex,
)
from headwater.services import provenance
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import ChannelRef
from headwater.services.downloads import ExpectedFile
from headwater.services.revisions import Change, Plan, apply_change
from headwater.sorting import Sort
from headwater.storage import BlobStore
from headwater.upstreams.pypi import MAX_METADATA_BYTES


@dataclass(frozen=True)
class ServableFile:
    """A file a client asked for: its bytes are the blob `sha256`, or come from `source_url`.

    A mirrored file may be served from the blob store only once its mirror's upstream has
    delivered those bytes (`delivered`, services/provenance); an upload brought its own.
    """

    filename: str
    sha256: str
    size: int | None
    source_url: str | None  # where upstream has it (mirrored files), else None (uploads)
    proxy: str | None
    upstream: str | None = None  # the mirror's source_root, whose deliveries count
    delivered: bool = True
    limit: int | None = None  # the most its bytes may be when its size is not known

    def expected(self) -> ExpectedFile:
        assert self.source_url is not None
        return ExpectedFile(self.filename, self.source_url, self.sha256, self.size, self.limit)


@dataclass(frozen=True)
class PackageSummary:
    name: str
    package_types: list[str]
    latest_version: str
    file_count: int
    subdirs: list[str]
    newest: dt.datetime | None


def head_indexes(
    session: Session, channel_id: int, subdir: str, with_parent: bool
) -> tuple[int | None, list[RevisionIndex]]:
    """The channel's head as it is now, and its index of `subdir` (then its parent's, if
    asked), in one query."""
    numbers = [Channel.head, Channel.head - 1] if with_parent else [Channel.head]
    rows = session.execute(
        select(Channel.head, RevisionIndex)
        .outerjoin(
            RevisionIndex,
            (RevisionIndex.channel_id == Channel.id)
            & (RevisionIndex.subdir == subdir)
            & RevisionIndex.number.in_(numbers),
        )
        .where(Channel.id == channel_id)
        .order_by(RevisionIndex.number.desc())
    ).all()
    if not rows:
        return None, []
    return rows[0][0], [row[1] for row in rows if row[1] is not None]


def published_subdirs(session: Session, channel_id: int, number: int) -> list[str]:
    return sorted(
        session.scalars(
            select(RevisionIndex.subdir).where(
                RevisionIndex.channel_id == channel_id, RevisionIndex.number == number
            )
        )
    )


def find_file(
    session: Session, channel_id: int, subdir: str, filename: str, revision: int | None = None
) -> ServableFile | None:
    """A file of the channel's head, or of revision `revision`."""
    row = session.execute(
        select(
            PackageFile.sha256,
            PackageFile.size,
            PackageFile.package_type,
            PackageFile.record,
            PackageFile.mirror_id,
            PackageFile.uploaded_by,
            MirrorSubdirState.files_url,
            Mirror.proxy,
            Mirror.source_root,
        )
        .outerjoin(Mirror, Mirror.id == PackageFile.mirror_id)
        .outerjoin(
            MirrorSubdirState,
            (MirrorSubdirState.mirror_id == PackageFile.mirror_id)
            & (MirrorSubdirState.subdir == PackageFile.subdir),
        )
        .where(
            PackageFile.channel_id == channel_id,
            PackageFile.in_revision(revision),
            PackageFile.subdir == subdir,
            PackageFile.filename == filename,
        )
    ).first()
    if row is None:
        return None
    if row.mirror_id is None and row.uploaded_by is None:  # its mirror was deleted
        delivered = provenance.delivered_by_some_upstream(session, row.sha256)
        return ServableFile(filename, row.sha256, row.size, None, None, None, delivered)
    if row.package_type == PackageType.python:
        source = decode_record(row.record).url or None
    else:
        source = row.files_url + filename if row.files_url else None
    upstream = row.source_root  # None for an upload, which brought its own bytes
    delivered = upstream is None or provenance.is_proven(session, row.sha256, upstream)
    return ServableFile(filename, row.sha256, row.size, source, row.proxy, upstream, delivered)


def find_core_metadata(
    session: Session, channel_id: int, project: str, filename: str, revision: int | None = None
) -> ServableFile | None:
    """A PyPI file's core metadata (PEP 658 `<filename>.metadata`), when the channel serves one:
    from the upstream's .metadata next to the file, or read out of the file itself."""
    found = find_file(session, channel_id, project, filename, revision)
    record = python_record(session, channel_id, project, filename, revision) if found else None
    if found is None or record is None or not record.core_metadata:
        return None
    source = f"{record.url}.metadata" if record.url else None
    delivered = found.upstream is None or provenance.is_proven(
        session, record.core_metadata, found.upstream
    )
    return ServableFile(
        filename=f"{filename}.metadata",
        sha256=record.core_metadata,
        size=None,
        source_url=source,
        proxy=found.proxy,
        upstream=found.upstream,
        delivered=delivered,
        limit=MAX_METADATA_BYTES,
    )


PACKAGE_SORTS = ("name", "files", "updated")


def list_packages(
    session: Session,
    channel: ChannelRef,
    *,
    offset: int,
    limit: int,
    search: str | None = None,
    sort: Sort = Sort("name"),
) -> tuple[list[PackageSummary], int]:
    """Package names in the channel with how many files each has, sorted by one of
    `PACKAGE_SORTS` (alphabetically unless told)."""
    condition = (PackageFile.channel_id == channel.id) & PackageFile.in_head()
    if search:
        condition = condition & PackageFile.name.contains(search.lower(), autoescape=True)
    total = session.scalar(select(func.count(distinct(PackageFile.name))).where(condition)) or 0
    columns: dict[str, SQLColumnExpression[Any]] = {
        "name": PackageFile.name,
        "files": func.count(PackageFile.id),
        "updated": func.max(PackageFile.timestamp),  # upstream's publish time
    }
    names = list(
        session.scalars(
            select(PackageFile.name)
            .where(condition)
            .group_by(PackageFile.name)
            .order_by(*sort.order_by(columns))
            .offset(offset)
            .limit(limit)
        )
    )
    summaries = []
    for name in names:
        files = package_files(session, channel.id, name)
        summaries.append(
            PackageSummary(
                name=name,
                package_types=sorted({str(file.package_type) for file in files}),
                latest_version=files[0].version if files else "",
                file_count=len(files),
                subdirs=sorted({platform for file in files for platform in file.platforms}),
                newest=max((f.published_at for f in files if f.published_at), default=None),
            )
        )
    return summaries, total


def package_files(session: Session, channel_id: int, name: str) -> list[PackageFile]:
    """The files of one package, newest version first (by conda/PEP 440 order where it parses)."""
    files = list(
        session.scalars(
            select(PackageFile).where(
                PackageFile.channel_id == channel_id,
                PackageFile.in_head(),
                PackageFile.name == name,
            )
        )
    )
    files.sort(
        key=lambda file: (_version_key(file.version), file.build, file.filename), reverse=True
    )
    return files


def _version_key(version: str) -> object:
    try:
        return _Comparable(Version(version))
    except Exception:
        return _Comparable(None, version)


@dataclass(frozen=True)
class _Comparable:
    """Orders parsed versions by conda's rules, unparseable ones after them by text."""

    parsed: object
    text: str = ""

    def __lt__(self, other: _Comparable) -> bool:
        if self.parsed is not None and other.parsed is not None:
            return bool(self.parsed < other.parsed)  # type: ignore[operator]
        if (self.parsed is None) != (other.parsed is None):
            return self.parsed is None
        return self.text < other.text


def get_package_files(session: Session, channel: ChannelRef, name: str) -> list[PackageFile]:
    files = package_files(session, channel.id, name)
    if not files:
        raise PackageFileNotFoundError(f"channel {channel.name!r} has no package {name!r}")
    return files


@dataclass(frozen=True)
class VersionGroup:
    """The files of one version on a page of a package's Files list."""

    version: str
    files: list[PackageFile]
    count: int  # the version's files on every page: more than `files` when it spans pages


@dataclass(frozen=True)
class FilesPage:
    """One page of a package's files, grouped by version, newest first; a page ends between
    versions, unless one version alone has more files than a page holds."""

    groups: list[VersionGroup]
    total: int
    versions: int
    package_types: list[str]
    start: int  # the offset of the page's first file
    stop: int  # and one past its last
    starts: list[int]  # where each page starts

    @property
    def previous(self) -> int | None:
        before = [start for start in self.starts if start < self.start]
        return before[-1] if before else None

    @property
    def next(self) -> int | None:
        return self.stop if self.stop < self.total else None


def package_files_page(
    session: Session, channel: ChannelRef, name: str, *, offset: int, limit: int
) -> FilesPage:
    """The page of a package's files that holds file number `offset` (the last page, past the
    end), ordered as `package_files` orders them; only that page's files are loaded whole."""
    rows = list(
        session.execute(
            select(
                PackageFile.id,
                PackageFile.version,
                PackageFile.build,
                PackageFile.filename,
                PackageFile.subdir,
                PackageFile.package_type,
            ).where(
                PackageFile.channel_id == channel.id,
                PackageFile.in_head(),
                PackageFile.name == name,
            )
        )
    )
    if not rows:
        raise PackageFileNotFoundError(f"channel {channel.name!r} has no package {name!r}")
    parsed = {version: _version_key(version) for version in {row.version for row in rows}}
    rows.sort(
        key=lambda r: (parsed[r.version], r.version, r.build, r.filename, r.subdir),
        reverse=True,
    )
    versions = [row.version for row in rows]
    starts = version_pages(versions, limit)
    start = max(s for s in starts if s <= offset)
    stop = next((s for s in starts if s > start), len(rows))
    chosen = [row.id for row in rows[start:stop]]
    loaded = {
        f.id: f for f in session.scalars(select(PackageFile).where(PackageFile.id.in_(chosen)))
    }
    groups: list[VersionGroup] = []
    for file_id in chosen:
        file = loaded[file_id]
        if groups and groups[-1].version == file.version:
            groups[-1].files.append(file)
        else:
            groups.append(VersionGroup(file.version, [file], versions.count(file.version)))
    return FilesPage(
        groups=groups,
        total=len(rows),
        versions=len(set(versions)),
        package_types=sorted({str(row.package_type) for row in rows}),
        start=start,
        stop=stop,
        starts=starts,
    )


def version_pages(versions: Sequence[str], size: int) -> list[int]:
    """Where each page starts in a list of files grouped by version (`versions`, one a file):
    as many whole versions as fit in `size` files; a version of more than `size` files is cut
    into pages of `size`, the rest of it sharing a page with the versions after it."""
    starts = [0]
    filled = position = 0
    for _, group in groupby(versions):
        length = len(list(group))
        if filled and filled + length > size:
            starts.append(position)
            filled = 0
        while filled + length > size:  # a version larger than a page
            position += size
            length -= size
            starts.append(position)
        filled += length
        position += length
    return starts


def delete_file(
    db: Database,
    store: BlobStore,
    channel: ChannelRef,
    subdir: str,
    filename: str,
    *,
    actor: Actor,
) -> ChannelRevision | None:
    """Remove one file from the channel's head, as its next revision.

    A file a mirror brought comes back at that mirror's next run unless its filters exclude it.
    """
    return apply_change(db, store, channel.id, FileDeletion(channel, subdir, filename, actor))


class FileDeletion(Change):
    cause = RevisionCause.deletion

    def __init__(self, channel: ChannelRef, subdir: str, filename: str, actor: Actor) -> None:
        self.channel, self.subdir, self.filename = channel, subdir, filename
        self.actor_ = actor
        self.actor = actor.username

    def plan(self, session: Session, channel_id: int, head: int) -> Plan:
        found = session.execute(
            select(PackageFile.id, PackageFile.package_type, PackageFile.name).where(
                PackageFile.channel_id == channel_id,
                PackageFile.in_head(),
                PackageFile.subdir == self.subdir,
                PackageFile.filename == self.filename,
            )
        ).first()
        if found is None:
            raise PackageFileNotFoundError(
                f"channel {self.channel.name!r} has no file {self.subdir}/{self.filename}"
            )
        plan = Plan()
        plan.remove(found.id, found.package_type, self.subdir, found.name)
        return plan

    def land(self, session: Session, revision: ChannelRevision | None) -> None:
        record(
            session,
            self.actor_,
            "file.delete",
            self.channel.name,
            subdir=self.subdir,
            filename=self.filename,
            revision=revision.number if revision else None,
        )


@dataclass(frozen=True)
class PythonFile:
    filename: str
    sha256: str
    size: int | None
    record: PythonRecord


def python_projects(session: Session, channel_id: int, revision: int | None = None) -> list[str]:
    """The PyPI projects of a channel's head (or revision), by normalized name."""
    return sorted(
        session.scalars(
            select(PackageFile.subdir)
            .where(
                PackageFile.channel_id == channel_id,
                PackageFile.in_revision(revision),
                PackageFile.package_type == PackageType.python,
            )
            .distinct()
        )
    )


def python_project_files(
    session: Session, channel_id: int, project: str, revision: int | None = None
) -> list[PythonFile]:
    """A PyPI project's files in a channel's head (or revision), oldest version first, as
    simple pages list them."""
    rows = session.execute(
        select(
            PackageFile.filename, PackageFile.sha256, PackageFile.size, PackageFile.record
        ).where(
            PackageFile.channel_id == channel_id,
            PackageFile.in_revision(revision),
            PackageFile.subdir == project,
            PackageFile.package_type == PackageType.python,
        )
    )
    files = [PythonFile(row[0], row[1], row[2], decode_record(row[3])) for row in rows]
    files.sort(key=lambda f: (_python_version_key(f.record.version), f.filename))
    return files


def _python_version_key(version: str) -> tuple[int, Any]:
    parsed = parse_version(version)
    return (1, parsed) if parsed is not None else (0, version)


def python_record(
    session: Session, channel_id: int, project: str, filename: str, revision: int | None = None
) -> PythonRecord | None:
    content = session.scalar(
        select(PackageFile.record).where(
            PackageFile.channel_id == channel_id,
            PackageFile.in_revision(revision),
            PackageFile.subdir == project,
            PackageFile.filename == filename,
            PackageFile.package_type == PackageType.python,
        )
    )
    return decode_record(content) if content is not None else None
