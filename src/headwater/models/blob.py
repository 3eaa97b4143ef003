"""Which upstream source delivered which blob: the proof a mirror needs before it may use bytes
already in the blob store (docs/architecture.md, "Blobs")."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import Base, created_at


class BlobSource(Base):
    """The bytes with `sha256` were fetched from `url` and matched the digest the index gave.

    A file of a mirror whose upstream URL is `url` may be served from, or skip downloading,
    that blob; a file with the same digest from any other URL may not, until its own URL has
    delivered the bytes too. Keyed by the URL's digest, as URLs are of any length.
    """

    __tablename__ = "blob_sources"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    url_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    delivered_at: Mapped[created_at]
