"""Package files in channels: the rows every revision's index is rendered from."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    and_,
    func,
    or_,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import NEVER_REUSE_IDS, Base, UTCDateTime, intpk, utcnow
from headwater.inputs import (
    MAX_BUILD_LENGTH,
    MAX_FILENAME_LENGTH,
    MAX_PACKAGE_NAME_LENGTH,
    MAX_PROJECT_LENGTH,
    MAX_VERSION_LENGTH,
)


class PackageType(StrEnum):
    conda = "conda"
    python = "python"


IN_HEAD = text("removed_in IS NULL AND added_in IS NOT NULL")


class PackageFile(Base):
    """One file in one channel, over an interval of the channel's revisions. Its bytes are the
    blob with its sha256, once fetched. A conda file's `subdir` is its conda subdir; a PyPI
    file's is its project's normalized name.

    `record` is the index entry to publish, as JSON; what else a user may want to know of the
    file (md5, license, dependencies) is read from it. A file a passive mirror brought is
    fetched, the first time a client asks, from its mirror's `MirrorSubdirState.files_url`.

    A row never changes but for `removed_in`, set once: the file is in revision n when
    `added_in <= n` and `removed_in` is NULL or greater than n (services/revisions.py). A row
    whose `added_in` is NULL is staged by the change `change_key`, not yet in any revision.
    """

    __tablename__ = "package_files"
    __table_args__ = (
        Index(
            "uq_package_files_in_head",
            "channel_id",
            "subdir",
            "filename",
            unique=True,
            sqlite_where=IN_HEAD,
            postgresql_where=IN_HEAD,
        ),
        Index("ix_package_files_channel_subdir_name", "channel_id", "subdir", "name"),
        # What a mirror's run compares upstream with, read from the index alone.
        Index(
            "ix_package_files_mirror_head",
            "mirror_id",
            "subdir",
            "filename",
            "sha256",
            "name",
            "id",
            sqlite_where=IN_HEAD,
            postgresql_where=IN_HEAD,
        ),
        Index("ix_package_files_channel_added_in", "channel_id", "added_in"),
        Index("ix_package_files_channel_removed_in", "channel_id", "removed_in"),
        Index("ix_package_files_change_key", "change_key"),
        Index("ix_package_files_sha256", "sha256"),
        Index("ix_package_files_metadata_sha256", "metadata_sha256"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[intpk]
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    # NULL for an upload, and for a file whose mirror was deleted (older revisions keep it)
    mirror_id: Mapped[int | None] = mapped_column(ForeignKey("mirrors.id", ondelete="SET NULL"))
    package_type: Mapped[PackageType] = mapped_column(String(10))
    subdir: Mapped[str] = mapped_column(String(MAX_PROJECT_LENGTH))
    filename: Mapped[str] = mapped_column(String(MAX_FILENAME_LENGTH))
    name: Mapped[str] = mapped_column(String(MAX_PACKAGE_NAME_LENGTH))
    version: Mapped[str] = mapped_column(String(MAX_VERSION_LENGTH))
    build: Mapped[str] = mapped_column(String(MAX_BUILD_LENGTH), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    # A wheel's METADATA, served as its .metadata: a blob of its own (PyPI files only)
    metadata_sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)  # unknown for some PyPI indexes
    timestamp: Mapped[int | None] = mapped_column(BigInteger)  # upstream publish time, ms
    record: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    added_in: Mapped[int | None]
    removed_in: Mapped[int | None]
    change_key: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )

    @classmethod
    def in_head(cls) -> ColumnElement[bool]:
        """The files clients get at the channel's plain URL."""
        return and_(cls.added_in.is_not(None), cls.removed_in.is_(None))

    @classmethod
    def in_revision(cls, number: int | None) -> ColumnElement[bool]:
        """The files of revision `number` (None: the head)."""
        if number is None:
            return cls.in_head()
        return and_(cls.added_in <= number, or_(cls.removed_in.is_(None), cls.removed_in > number))

    @property
    def published_at(self) -> dt.datetime | None:
        if self.timestamp is None:
            return None
        return dt.datetime.fromtimestamp(self.timestamp / 1000, dt.UTC)

    def index_record(self) -> dict[str, Any]:
        """The stored record as JSON: a conda repodata record, or a PyPI file's PythonRecord."""
        return orjson.loads(self.record)

    @property
    def repo_path(self) -> str:
        """Where the channel serves the file, under /api/repo/<channel>/."""
        if self.package_type == PackageType.python:
            return f"simple/{self.subdir}/{self.filename}"
        return f"{self.subdir}/{self.filename}"

    @property
    def platforms(self) -> list[str]:
        """The conda subdirs the file is for: its subdir, or a wheel's platforms."""
        if self.package_type == PackageType.python:
            return sorted(self.index_record().get("platforms", ()))
        return [self.subdir]

    def license_text(self) -> str | None:
        record = self.index_record()
        return record.get("license_expression") or record.get("license")


# The columns a bulk load fills, in order; everything else takes its default.
BULK_COLUMNS = (
    "channel_id",
    "mirror_id",
    "package_type",
    "subdir",
    "filename",
    "name",
    "version",
    "build",
    "sha256",
    "size",
    "timestamp",
    "record",
    "uploaded_by",
    "metadata_sha256",
    "change_key",
)
