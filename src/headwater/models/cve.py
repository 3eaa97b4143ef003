"""The CVE database: advisories as imported, the CVEs they add up to, and matches to files."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import NEVER_REUSE_IDS, Base, UTCDateTime, created_at, intpk, updated_at


class Advisory(Base):
    """One advisory document as a source published it (an OSV file, an NVD record). Re-import
    replaces it by its id; the CVE it names is recomputed from all of its advisories."""

    __tablename__ = "cve_advisories"
    __table_args__ = (Index("ix_cve_advisories_cve_id", "cve_id"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(10))  # osv or nvd
    cve_id: Mapped[str] = mapped_column(String(100))
    modified: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # the parsed fields, see services/cves
    digest: Mapped[str] = mapped_column(String(64))  # of `content`, to tell a change
    imported_at: Mapped[updated_at]


class Cve(Base):
    """A vulnerability: its CVE id, or an advisory's id where no CVE exists."""

    __tablename__ = "cves"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    summary: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    published: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    modified: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    cvss3_score: Mapped[float | None] = mapped_column(Float)
    cvss3_vector: Mapped[str | None] = mapped_column(String(200))
    cvss3_source: Mapped[str | None] = mapped_column(String(100))  # nvd or the advisory's id
    cvss2_score: Mapped[float | None] = mapped_column(Float)
    cvss2_vector: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[float | None] = mapped_column(Float)  # the one files are scored by
    other_scores: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    references: Mapped[list[str]] = mapped_column(JSON, default=list)
    affected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[updated_at]


class CveMatch(Base):
    """A CVE tied to a file, with its curation. A match that still holds survives re-import
    and re-matching with its status; one that no longer holds is removed."""

    __tablename__ = "cve_matches"
    __table_args__ = (
        UniqueConstraint("file_id", "cve_id"),
        Index("ix_cve_matches_cve_id", "cve_id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[intpk]
    cve_id: Mapped[str] = mapped_column(ForeignKey("cves.id", ondelete="CASCADE"))
    file_id: Mapped[int] = mapped_column(ForeignKey("package_files.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="reported")
    note: Mapped[str | None] = mapped_column(Text)
    curated_by: Mapped[str | None] = mapped_column(String(64))
    curated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[created_at]

    @property
    def curated(self) -> bool:
        """Whether someone has decided about it: any status but `reported`."""
        return self.status != "reported"
