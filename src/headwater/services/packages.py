"""The files of a channel: finding one to serve, and listing packages for people."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rattler import Version
from sqlalchemy import delete, distinct, func, select
from sqlalchemy.orm import Session

from headwater.errors import PackageFileNotFoundError
from headwater.models import ChannelIndex, Mirror, MirrorSubdirState, PackageFile
from headwater.services.channels import get_channel
from headwater.services.downloads import ExpectedFile
from headwater.services.publish import lock_channel, publish_subdirs
from headwater.storage import BlobStore


@dataclass(frozen=True)
class ServableFile:
    """A file a client asked for: its bytes are the blob `sha256`, or come from `source_url`."""

    filename: str
    sha256: str
    size: int
    files_url: str | None  # set for files of passive mirrors, which may not be fetched yet
    proxy: str | None

    @property
    def source_url(self) -> str | None:
        return self.files_url + self.filename if self.files_url else None

    def expected(self) -> ExpectedFile:
        assert self.source_url is not None
        return ExpectedFile(self.filename, self.source_url, self.sha256, self.size)


@dataclass(frozen=True)
class PackageSummary:
    name: str
    latest_version: str
    file_count: int
    subdirs: list[str]
    newest: dt.datetime | None


def find_index(session: Session, channel_id: int, subdir: str) -> ChannelIndex | None:
    return session.get(ChannelIndex, (channel_id, subdir))


def published_subdirs(session: Session, channel_id: int) -> list[str]:
    return sorted(
        session.scalars(select(ChannelIndex.subdir).where(ChannelIndex.channel_id == channel_id))
    )


def find_file(session: Session, channel_id: int, subdir: str, filename: str) -> ServableFile | None:
    row = session.execute(
        select(PackageFile.sha256, PackageFile.size, MirrorSubdirState.files_url, Mirror.proxy)
        .outerjoin(Mirror, Mirror.id == PackageFile.mirror_id)
        .outerjoin(
            MirrorSubdirState,
            (MirrorSubdirState.mirror_id == PackageFile.mirror_id)
            & (MirrorSubdirState.subdir == PackageFile.subdir),
        )
        .where(
            PackageFile.channel_id == channel_id,
            PackageFile.subdir == subdir,
            PackageFile.filename == filename,
        )
    ).first()
    if row is None:
        return None
    return ServableFile(filename, row.sha256, row.size, row.files_url, row.proxy)


def list_packages(
    session: Session, channel_name: str, *, offset: int, limit: int, search: str | None = None
) -> tuple[list[PackageSummary], int]:
    """Package names in the channel with how many files each has, alphabetically."""
    channel = get_channel(session, channel_name)
    condition = PackageFile.channel_id == channel.id
    if search:
        condition = condition & PackageFile.name.contains(search.lower(), autoescape=True)
    total = session.scalar(select(func.count(distinct(PackageFile.name))).where(condition)) or 0
    names = list(
        session.scalars(
            select(PackageFile.name)
            .where(condition)
            .group_by(PackageFile.name)
            .order_by(PackageFile.name)
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
                latest_version=files[0].version if files else "",
                file_count=len(files),
                subdirs=sorted({file.subdir for file in files}),
                newest=max((f.published_at for f in files if f.published_at), default=None),
            )
        )
    return summaries, total


def package_files(session: Session, channel_id: int, name: str) -> list[PackageFile]:
    """The files of one package, newest version first (by conda/PEP 440 order where it parses)."""
    files = list(
        session.scalars(
            select(PackageFile).where(
                PackageFile.channel_id == channel_id, PackageFile.name == name
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


def get_package_files(session: Session, channel_name: str, name: str) -> list[PackageFile]:
    channel = get_channel(session, channel_name)
    files = package_files(session, channel.id, name)
    if not files:
        raise PackageFileNotFoundError(f"channel {channel_name!r} has no package {name!r}")
    return files


def delete_file(
    session: Session, store: BlobStore, channel_name: str, subdir: str, filename: str
) -> None:
    """Remove one file from a channel and republish its subdir.

    A file a mirror brought comes back at that mirror's next run unless its filters exclude it.
    """
    channel = get_channel(session, channel_name)
    lock_channel(session, channel.id)
    removed = session.execute(
        delete(PackageFile).where(
            PackageFile.channel_id == channel.id,
            PackageFile.subdir == subdir,
            PackageFile.filename == filename,
        )
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise PackageFileNotFoundError(f"channel {channel_name!r} has no file {subdir}/{filename}")
    publish_subdirs(session, store, channel.id, [subdir])
