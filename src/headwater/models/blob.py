"""The blobs in the store, and which upstream delivered which: the proof a mirror needs before
it may use bytes already in the blob store (docs/architecture.md, "Blobs")."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import Base, UTCDateTime, created_at, utcnow


class BlobSource(Base):
    """The upstream `upstream` (a mirror's source_root) delivered the bytes with `sha256`,
    and they matched the digest its index gave.

    A file of a mirror of that upstream may be served from, or skip downloading, that blob; a
    file with the same digest from any other upstream may not, until its own upstream has
    delivered the bytes too. Keyed by the upstream's digest, as URLs are of any length.
    """

    __tablename__ = "blob_sources"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    upstream_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    upstream: Mapped[str] = mapped_column(Text)
    delivered_at: Mapped[created_at]


class Blob(Base):
    """A blob in the store: its size, and what may reference it.

    A package content (`kind` package) is referenced while a `package_files` row names its
    `sha256` as the file's or its metadata's (`metadata_sha256`): a file of a retained revision,
    or staged by a change. An index artifact (`kind` index, `sha256` the digest its key names)
    is referenced while a `revision_indexes` row of its channel names that digest. A blob
    being written has no row and no key yet: it is in a process's staging folder. A collection
    deletes a blob that nothing references once `touched_at` (its write, or a run's decision
    to reuse it) is older than the grace period (services/blobs.py).
    """

    __tablename__ = "blobs"
    __table_args__ = (
        Index("ix_blobs_sha256", "sha256"),
        Index("ix_blobs_channel_id", "channel_id"),
        Index("ix_blobs_touched_at", "touched_at"),
    )

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "package" or "index"
    sha256: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    size: Mapped[int] = mapped_column(BigInteger)
    stored_at: Mapped[created_at]
    touched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
