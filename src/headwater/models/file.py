"""Package files in channels: the rows every index is rendered from."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import Base, created_at, intpk


class PackageType(StrEnum):
    conda = "conda"
    python = "python"


class PackageFile(Base):
    """One file in one channel. Its bytes are the blob with its sha256, once fetched.

    `record` is the index entry to publish as JSON. `source_url` is where the bytes can be
    fetched from when the blob store lacks them (passive mirrors); uploads have none.
    """

    __tablename__ = "package_files"
    __table_args__ = (
        UniqueConstraint("channel_id", "subdir", "filename"),
        Index("ix_package_files_channel_subdir_name", "channel_id", "subdir", "name"),
        Index("ix_package_files_mirror_subdir", "mirror_id", "subdir"),
    )

    id: Mapped[intpk]
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    mirror_id: Mapped[int | None] = mapped_column(ForeignKey("mirrors.id", ondelete="CASCADE"))
    package_type: Mapped[PackageType] = mapped_column(String(10))
    subdir: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    build: Mapped[str] = mapped_column(String(200), default="")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    md5: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[dt.datetime | None]
    license: Mapped[str | None]
    license_family: Mapped[str | None] = mapped_column(String(50))
    record: Mapped[bytes] = mapped_column(LargeBinary)
    source_url: Mapped[str | None]
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
