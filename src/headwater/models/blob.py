"""Which upstream delivered which blob: the proof a mirror needs before it may use bytes
already in the blob store (docs/architecture.md, "Blobs")."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import Base, created_at


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
