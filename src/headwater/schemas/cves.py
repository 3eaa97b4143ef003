"""The JSON shape of CVEs and their matches, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from headwater.cves.scoring import severity
from headwater.models import Cve, CveMatch, PackageFile
from headwater.services.cves import CveSummary, ImportReport, MatchedFile


class CveOut(BaseModel):
    id: str
    summary: str | None
    score: float | None
    severity: str
    published: dt.datetime | None
    withdrawn: bool
    matched_files: int | None = None  # in the channels asked about
    statuses: dict[str, int] | None = None

    @classmethod
    def of(cls, summary: CveSummary) -> CveOut:
        return cls(**_basics(summary.cve), matched_files=summary.files, statuses=summary.statuses)


def _basics(cve: Cve) -> dict[str, Any]:
    return {
        "id": cve.id,
        "summary": cve.summary,
        "score": cve.score,
        "severity": severity(cve.score),
        "published": cve.published,
        "withdrawn": cve.withdrawn,
    }


class CveDetail(CveOut):
    description: str | None
    modified: dt.datetime | None
    cvss3_score: float | None
    cvss3_vector: str | None
    cvss3_source: str | None
    cvss2_score: float | None
    cvss2_vector: str | None
    other_scores: list[dict[str, Any]]
    aliases: list[str]
    references: list[str]
    affected: list[dict[str, Any]]

    @classmethod
    def of_cve(cls, cve: Cve) -> CveDetail:
        return cls(
            **_basics(cve),
            description=cve.description,
            modified=cve.modified,
            cvss3_score=cve.cvss3_score,
            cvss3_vector=cve.cvss3_vector,
            cvss3_source=cve.cvss3_source,
            cvss2_score=cve.cvss2_score,
            cvss2_vector=cve.cvss2_vector,
            other_scores=cve.other_scores,
            aliases=cve.aliases,
            references=cve.references,
            affected=cve.affected,
        )


class MatchOut(BaseModel):
    id: int
    cve_id: str
    status: str
    curated: bool
    note: str | None
    curated_by: str | None
    curated_at: dt.datetime | None
    channel: str
    file_id: int
    filename: str
    package_type: str
    name: str
    version: str
    subdir: str

    @classmethod
    def of(cls, match: CveMatch, file: PackageFile, channel: str) -> MatchOut:
        return cls(
            id=match.id,
            cve_id=match.cve_id,
            status=match.status,
            curated=match.curated,
            note=match.note,
            curated_by=match.curated_by,
            curated_at=match.curated_at,
            channel=channel,
            file_id=file.id,
            filename=file.filename,
            package_type=file.package_type,
            name=file.name,
            version=file.version,
            subdir=file.subdir,
        )

    @classmethod
    def of_matched(cls, matched: MatchedFile) -> MatchOut:
        return cls.of(matched.match, matched.file, matched.channel)


class ImportOut(BaseModel):
    files: int
    advisories: int
    added: int
    updated: int
    unchanged: int
    withdrawn: int
    cves_changed: int
    problems: list[str]
    matching: dict[str, Any] | None

    @classmethod
    def of(cls, files: int, report: ImportReport, matching: Any) -> ImportOut:
        return cls(
            files=files,
            advisories=report.read,
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            withdrawn=report.withdrawn,
            cves_changed=len(report.changed_cves),
            problems=report.problems[:100],
            matching=vars(matching) if matching is not None else None,
        )


class CurationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    note: str | None = None
