"""The JSON shape of CVEs and their matches, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from headwater.cves.scoring import MatchStatus, severity
from headwater.inputs import (
    MAX_ID,
    MAX_PACKAGE_NAME_LENGTH,
    MAX_PROJECT_LENGTH,
    has_control_characters,
)
from headwater.models import Cve, CveMatch, PackageFile
from headwater.services.cve_curation import (
    MAX_BULK_MATCHES,
    MAX_NOTE_LENGTH,
    MAX_VERSIONS_LENGTH,
    BulkCuration,
    CurationScope,
)
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


def _not_a_boolean(value: object) -> object:
    """JSON's true is not match 1 (pydantic would read it so); the form's "12" is match 12."""
    if isinstance(value, bool):
        raise ValueError("a match id is a number, not true or false")
    return value


MatchId = Annotated[int, BeforeValidator(_not_a_boolean), Field(ge=1, le=MAX_ID)]


class BulkCurationIn(BaseModel):
    """One status and note for many matches of a CVE: the `match_ids` named, or every match in
    a scope: a `channel` (else every channel the caller may curate), narrowed to a `package`
    (and its `versions`: a conda version spec or PEP 440 specifier, e.g. ">=60,<70") and to a
    `subdir`. The REST API and the CVE pages share it."""

    model_config = ConfigDict(extra="forbid")

    status: MatchStatus
    note: str | None = Field(None, max_length=MAX_NOTE_LENGTH)
    match_ids: list[MatchId] | None = Field(None, min_length=1, max_length=MAX_BULK_MATCHES)
    channel: str | None = Field(None, min_length=1, max_length=100)
    package: str | None = Field(None, min_length=1, max_length=MAX_PACKAGE_NAME_LENGTH)
    versions: str | None = Field(None, min_length=1, max_length=MAX_VERSIONS_LENGTH)
    subdir: str | None = Field(None, min_length=1, max_length=MAX_PROJECT_LENGTH)

    @field_validator("channel", "package", "versions", "subdir")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and has_control_characters(value):
            raise ValueError("contains a control character")
        return value

    @model_validator(mode="after")
    def _one_scope(self) -> BulkCurationIn:
        narrowed = [
            key for key in ("channel", "package", "versions", "subdir") if getattr(self, key)
        ]
        if self.match_ids is not None and narrowed:
            raise ValueError(
                f"name match_ids or a scope ({', '.join(narrowed)}), not both: "
                "the matches named are curated as they are"
            )
        if self.match_ids is None and not narrowed:
            raise ValueError(
                "say which matches: match_ids, or a scope of channel, package (with versions) "
                "and subdir"
            )
        if self.versions is not None and self.package is None:
            raise ValueError("versions are a package's: name the package too")
        return self

    def scope(self, cve_ids: tuple[str, ...]) -> CurationScope:
        return CurationScope(
            cve_ids=cve_ids,
            match_ids=tuple(self.match_ids) if self.match_ids is not None else None,
            package=self.package,
            versions=self.versions,
            subdir=self.subdir,
        )


class BulkCurationOut(BaseModel):
    cve_ids: list[str]
    status: str
    curated: int  # the matches of the scope, in the heads of the channels the caller manages
    carried: int  # other matches of the same bytes that took the curation (docs/cves.md)
    channels: list[str]

    @classmethod
    def of(cls, cve_ids: tuple[str, ...], status: str, done: BulkCuration) -> BulkCurationOut:
        return cls(
            cve_ids=list(cve_ids),
            status=status,
            curated=done.curated,
            carried=done.carried,
            channels=done.channels,
        )
