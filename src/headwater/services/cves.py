"""The CVE database: importing advisories, the CVEs they add up to, and reading them back.

Each advisory is stored as it came (by its own id); a CVE is rebuilt from all of its advisories
whenever one of them changes. Where NVD and another source (GitHub, PYSEC) both score a CVE,
both are kept and NVD's is the one files are scored by; a CVE whose PYSEC advisory has no
score takes one from its NVD or GitHub advisory, and a CVE no advisory scored is "Unscored".
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import SQLColumnExpression, func, select, update
from sqlalchemy.orm import Session

from headwater.cves.advisories import Advisory as ParsedAdvisory
from headwater.cves.advisories import Score, summary_from_details
from headwater.cves.scoring import (
    BANDS,
    UNRESOLVED,
    MatchStatus,
    file_score,
    has_unscored,
    severity,
)
from headwater.errors import (
    InvalidInputError,
    NotFoundError,
)
from headwater.filters.python_specs import (
    parse_version,
)
from headwater.formats.conda import conda_version
from headwater.models import Advisory, Channel, Cve, CveMatch, PackageFile, PackageType
from headwater.sorting import Sort

_CHUNK = 500


@dataclass
class ImportReport:
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    problems: list[str] = field(default_factory=list)
    changed_cves: set[str] = field(default_factory=set)
    moved: dict[str, str] = field(default_factory=dict)  # old CVE key → new, for curations


def _score_json(score: Score | None) -> dict[str, Any] | None:
    if score is None:
        return None
    return {"version": score.version, "vector": score.vector, "score": score.score}


def advisory_content(advisory: ParsedAdvisory) -> dict[str, Any]:
    return {
        "aliases": list(advisory.aliases),
        "summary": advisory.summary,
        "description": advisory.description,
        "published": advisory.published.isoformat() if advisory.published else None,
        "modified": advisory.modified.isoformat() if advisory.modified else None,
        "cvss3": _score_json(advisory.cvss3),
        "cvss2": _score_json(advisory.cvss2),
        "references": list(advisory.references),
        "affected": [package.to_json() for package in advisory.affected],
    }


def import_advisories(session: Session, advisories: Iterable[ParsedAdvisory]) -> ImportReport:
    """Store advisories (a re-import of the same ones changes nothing) and rebuild the CVEs
    whose advisories changed. The caller re-matches files when `changed_cves` is not empty."""
    report = ImportReport()
    latest: dict[str, ParsedAdvisory] = {}
    for advisory in advisories:
        report.read += 1
        latest[advisory.id] = advisory
    stored = {
        row.id: row
        for ids in chunks(list(latest))
        for row in session.scalars(select(Advisory).where(Advisory.id.in_(ids)))
    }
    for advisory in latest.values():
        content = advisory_content(advisory)
        digest = hashlib.sha256(
            orjson.dumps(
                [advisory.cve_id, advisory.withdrawn, content], option=orjson.OPT_SORT_KEYS
            )
        ).hexdigest()
        row = stored.get(advisory.id)
        if row is not None and row.digest == digest:
            report.unchanged += 1
            continue
        if row is None:
            report.added += 1
            row = Advisory(id=advisory.id)
            session.add(row)
        else:
            report.updated += 1
            report.changed_cves.add(row.cve_id)  # it may have moved to another CVE
            if row.cve_id != advisory.cve_id:  # say, a GHSA that was given a CVE id since
                report.moved[row.cve_id] = advisory.cve_id
        row.source = advisory.source
        row.cve_id = advisory.cve_id
        row.modified = advisory.modified
        row.withdrawn = advisory.withdrawn
        row.content = content
        row.digest = digest
        report.withdrawn += advisory.withdrawn
        report.changed_cves.add(advisory.cve_id)
    session.flush()
    rebuild_cves(session, report.changed_cves, report.moved)
    return report


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def rebuild_cves(
    session: Session, cve_ids: Iterable[str], moved: dict[str, str] | None = None
) -> None:
    """Rebuild each CVE from its advisories; a CVE left without any is deleted, after the
    curated matches of one whose advisory moved to another key follow it there."""
    ids = sorted(set(cve_ids))
    emptied: list[Cve] = []
    for chunk in chunks(ids):
        rows = list(session.scalars(select(Advisory).where(Advisory.cve_id.in_(chunk))))
        by_cve: dict[str, list[Advisory]] = {cve_id: [] for cve_id in chunk}
        for row in rows:
            by_cve[row.cve_id].append(row)
        existing = {cve.id: cve for cve in session.scalars(select(Cve).where(Cve.id.in_(chunk)))}
        for cve_id, advisories in by_cve.items():
            cve = existing.get(cve_id)
            if not advisories:
                if cve is not None:
                    emptied.append(cve)
                continue
            if cve is None:
                cve = Cve(id=cve_id)
                session.add(cve)
            _merge(cve, advisories)
    session.flush()
    for cve in emptied:
        target = (moved or {}).get(cve.id)
        if target is not None and session.get(Cve, target) is not None:
            _move_matches(session, cve.id, target)
        session.delete(cve)  # its remaining matches go with it
    session.flush()


def _move_matches(session: Session, old: str, new: str) -> None:
    """Re-point matches (with their curation) from one CVE key to another, except where the
    file already has a match for the new key."""
    taken = select(CveMatch.file_id).where(CveMatch.cve_id == new).scalar_subquery()
    session.execute(
        update(CveMatch)
        .where(CveMatch.cve_id == old, CveMatch.file_id.not_in(taken))
        .values(cve_id=new)
        .execution_options(synchronize_session=False)
    )


def _ordered(advisories: list[Advisory]) -> list[Advisory]:
    """NVD first, then GitHub's advisories, then the rest, each by id: the order a field is
    taken in when several advisories have it."""
    rank = {"NVD": 0, "GHSA": 1}
    return sorted(advisories, key=lambda a: (rank.get(a.id.split("-", 1)[0], 2), a.id))


def _merge(cve: Cve, advisories: list[Advisory]) -> None:
    ordered = _ordered(advisories)
    live = [a for a in ordered if not a.withdrawn]
    cve.withdrawn = not live
    use = live or ordered
    contents = [(a, a.content) for a in use]
    cve.summary = next((c["summary"] for _, c in contents if c.get("summary")), None)
    descriptions = [c["description"] for _, c in contents if c.get("description")]
    if cve.summary is None:  # no advisory has one (PYSEC's often don't): its details do
        cve.summary = next(filter(None, map(summary_from_details, descriptions)), None)
    cve.description = descriptions[0] if descriptions else cve.summary
    dates = [c["published"] for _, c in contents if c.get("published")]
    cve.published = _parse_moment(min(dates)) if dates else None
    modified = [c["modified"] for _, c in contents if c.get("modified")]
    cve.modified = _parse_moment(max(modified)) if modified else None
    scores3 = [(a.id, c["cvss3"]) for a, c in contents if c.get("cvss3")]
    scores2 = [(a.id, c["cvss2"]) for a, c in contents if c.get("cvss2")]
    chosen3 = next(((src, s) for src, s in scores3 if s.get("score") is not None), None)
    chosen2 = next(((src, s) for src, s in scores2 if s.get("score") is not None), None)
    cve.cvss3_score = chosen3[1]["score"] if chosen3 else None
    cve.cvss3_vector = chosen3[1]["vector"] if chosen3 else None
    cve.cvss3_source = _source_name(chosen3[0]) if chosen3 else None
    cve.cvss2_score = chosen2[1]["score"] if chosen2 else None
    cve.cvss2_vector = chosen2[1]["vector"] if chosen2 else None
    cve.score = cve.cvss3_score if cve.cvss3_score is not None else cve.cvss2_score
    cve.other_scores = [
        {"source": _source_name(src), **score}
        for src, score in scores3 + scores2
        if (src, score) not in (chosen3, chosen2)
    ]
    aliases = {alias for _, c in contents for alias in c.get("aliases", [])}
    aliases |= {a.id for a in use if a.source == "osv"}
    cve.aliases = sorted(aliases - {cve.id})
    cve.references = list(dict.fromkeys(r for _, c in contents for r in c.get("references", [])))
    affected = {
        orjson.dumps(p, option=orjson.OPT_SORT_KEYS): p
        for a, c in contents
        if not a.withdrawn
        for p in c.get("affected", [])
    }
    cve.affected = list(affected.values())


def _source_name(advisory_id: str) -> str:
    return "nvd" if advisory_id.startswith("NVD-") else advisory_id


def _parse_moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# Reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CveSummary:
    cve: Cve
    files: int  # matched files (in the channels asked about)
    statuses: dict[str, int]

    @property
    def severity(self) -> str:
        return severity(self.cve.score)


def get_cve(session: Session, cve_id: str) -> Cve:
    cve = session.get(Cve, cve_id)
    if cve is None:
        raise NotFoundError(f"no CVE {cve_id!r} in the CVE database")
    return cve


CVE_SORTS = ("score", "id", "published")


def list_cves(
    session: Session,
    *,
    channel_ids: Sequence[int] | None,
    status: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
    matched_only: bool = False,
    sort: Sort = Sort("score", descending=True),
) -> tuple[list[CveSummary], int]:
    """CVEs with how many files they match in `channel_ids` (None: every channel), sorted by
    one of `CVE_SORTS` (best scored first, unscored last, unless told). With a `status` or
    `matched_only`, only CVEs with such matches there."""
    if status is not None and status not in MatchStatus.__members__:
        raise InvalidInputError(
            f"status {status!r} is not one of {', '.join(MatchStatus.__members__)}"
        )
    matches = select(CveMatch.cve_id, CveMatch.status, func.count().label("n")).join(
        PackageFile, PackageFile.id == CveMatch.file_id
    )
    matches = matches.where(PackageFile.in_head())
    if channel_ids is not None:
        matches = matches.where(PackageFile.channel_id.in_(channel_ids))
    if status is not None:
        matches = matches.where(CveMatch.status == status)
    counted = matches.group_by(CveMatch.cve_id, CveMatch.status).subquery()
    query = select(Cve).where(Cve.withdrawn.is_(False))
    if status is not None or matched_only or channel_ids is not None:
        query = query.where(Cve.id.in_(select(counted.c.cve_id)))
    if min_score is not None:
        query = query.where(Cve.score >= min_score)
    if max_score is not None:
        query = query.where(Cve.score <= max_score)
    if search:
        pattern = f"%{search}%"
        query = query.where(Cve.id.ilike(pattern) | Cve.summary.ilike(pattern))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    columns: dict[str, SQLColumnExpression[Any]] = {
        "score": func.coalesce(Cve.score, -1.0),  # unscored: after every score, either way
        "id": Cve.id,
        "published": Cve.published,
    }
    cves = list(
        session.scalars(query.order_by(*sort.order_by(columns)).offset(offset).limit(limit))
    )
    counts: dict[str, dict[str, int]] = {cve.id: {} for cve in cves}
    if cves:
        rows = session.execute(
            select(counted.c.cve_id, counted.c.status, counted.c.n).where(
                counted.c.cve_id.in_(list(counts))
            )
        )
        for cve_id, match_status, n in rows:
            counts[cve_id][match_status] = n
    summaries = [CveSummary(cve, sum(counts[cve.id].values()), counts[cve.id]) for cve in cves]
    return summaries, total


def channel_cve_count(session: Session, channel_id: int) -> int:
    """Distinct CVEs that match files in the channel (not matches)."""
    return (
        session.scalar(
            select(func.count(func.distinct(CveMatch.cve_id)))
            .join(PackageFile, PackageFile.id == CveMatch.file_id)
            .join(Cve, Cve.id == CveMatch.cve_id)
            .where(
                PackageFile.channel_id == channel_id,
                PackageFile.in_head(),
                Cve.withdrawn.is_(False),
            )
        )
        or 0
    )


def channel_unresolved_count(session: Session, channel_id: int) -> int:
    """Distinct CVEs with a match still `reported` or `active` in the channel: what is left to
    triage or fix. Curating every match of a CVE there takes it off this count (not off the
    channel's CVE count, which counts CVEs whatever their matches' statuses)."""
    return (
        session.scalar(
            select(func.count(func.distinct(CveMatch.cve_id)))
            .join(PackageFile, PackageFile.id == CveMatch.file_id)
            .join(Cve, Cve.id == CveMatch.cve_id)
            .where(
                PackageFile.channel_id == channel_id,
                PackageFile.in_head(),
                Cve.withdrawn.is_(False),
                CveMatch.status.in_([str(status) for status in UNRESOLVED]),
            )
        )
        or 0
    )


def channel_severity_counts(session: Session, channel_id: int) -> dict[str, int]:
    """The channel's distinct CVEs by severity band."""
    scores = session.execute(
        select(Cve.id, Cve.score)
        .join(CveMatch, CveMatch.cve_id == Cve.id)
        .join(PackageFile, PackageFile.id == CveMatch.file_id)
        .where(
            PackageFile.channel_id == channel_id,
            PackageFile.in_head(),
            Cve.withdrawn.is_(False),
        )
        .distinct()
    )
    counts = dict.fromkeys(BANDS, 0)
    for _, score in scores:
        counts[severity(score)] += 1
    return counts


@dataclass(frozen=True)
class FileCves:
    score: float | None
    count: int
    unscored: bool = False  # an unresolved match is of a CVE without a score


def file_cves(session: Session, file_ids: Sequence[int]) -> dict[int, FileCves]:
    """Each file's CVE score (the status rule of scoring.file_score) and number of CVEs."""
    found: dict[int, list[tuple[str, float | None]]] = {file_id: [] for file_id in file_ids}
    for chunk in chunks(list(file_ids)):
        rows = session.execute(
            select(CveMatch.file_id, CveMatch.status, Cve.score)
            .join(Cve, Cve.id == CveMatch.cve_id)
            .where(CveMatch.file_id.in_(chunk), Cve.withdrawn.is_(False))
        )
        for file_id, status, score in rows:
            found[file_id].append((status, score))
    return {
        file_id: FileCves(file_score(matches), len(matches), has_unscored(matches))
        for file_id, matches in found.items()
    }


@dataclass(frozen=True)
class MatchedFile:
    match: CveMatch
    file: PackageFile
    channel: str


MATCH_SORTS = ("channel", "file", "size", "published", "status")


def _matched_files_query(cve_id: str, channel_ids: Sequence[int] | None) -> Any:
    query = (
        select(CveMatch, PackageFile, Channel.name)
        .join(PackageFile, PackageFile.id == CveMatch.file_id)
        .join(Channel, Channel.id == PackageFile.channel_id)
        .where(CveMatch.cve_id == cve_id, PackageFile.in_head())
    )
    if channel_ids is not None:
        query = query.where(PackageFile.channel_id.in_(channel_ids))
    return query


def page_cve_files(
    session: Session,
    cve_id: str,
    channel_ids: Sequence[int] | None,
    *,
    offset: int,
    limit: int,
    sort: Sort = Sort("channel"),
) -> tuple[list[MatchedFile], int]:
    """A page of the files the CVE matches in `channel_ids`, sorted by one of `MATCH_SORTS`."""
    query = _matched_files_query(cve_id, channel_ids)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    columns: dict[str, SQLColumnExpression[Any]] = {
        "channel": Channel.name,
        "file": PackageFile.filename,
        "size": PackageFile.size,
        "published": PackageFile.timestamp,
        "status": CveMatch.status,
        "id": CveMatch.id,
    }
    rows = session.execute(query.order_by(*sort.order_by(columns)).offset(offset).limit(limit))
    return [MatchedFile(match, file, channel) for match, file, channel in rows], total


@dataclass(frozen=True)
class AffectedPackage:
    """One package of one channel that a CVE matches: its versions there, and its matches."""

    channel: str
    package: str
    package_type: str
    versions: list[str]  # in version order
    files: int
    statuses: dict[str, int]

    @property
    def versions_text(self) -> str:
        """Few versions listed; many as the first and the last."""
        if len(self.versions) <= 6:
            return ", ".join(self.versions)
        return f"{self.versions[0]} … {self.versions[-1]} ({len(self.versions)} versions)"


MAX_AFFECTED_ROWS = 1000


def affected_packages(
    session: Session, cve_id: str, channel_ids: Sequence[int] | None
) -> list[AffectedPackage]:
    """What a CVE matches, by channel and package: the summary above its list of files."""
    base = (
        select(Channel.name, PackageFile.package_type, PackageFile.name)
        .join(PackageFile, PackageFile.channel_id == Channel.id)
        .join(CveMatch, CveMatch.file_id == PackageFile.id)
        .where(CveMatch.cve_id == cve_id, PackageFile.in_head())
    )
    if channel_ids is not None:
        base = base.where(PackageFile.channel_id.in_(channel_ids))
    keys = list(
        session.execute(
            base.group_by(Channel.name, PackageFile.package_type, PackageFile.name)
            .order_by(Channel.name, PackageFile.name, PackageFile.package_type)
            .limit(MAX_AFFECTED_ROWS)
        )
    )
    statuses: dict[tuple[str, str, str], dict[str, int]] = {
        (channel, str(kind), name): {} for channel, kind, name in keys
    }
    versions: dict[tuple[str, str, str], set[str]] = {key: set() for key in statuses}
    counted = session.execute(
        base.add_columns(CveMatch.status, func.count()).group_by(
            Channel.name, PackageFile.package_type, PackageFile.name, CveMatch.status
        )
    )
    for channel, kind, name, status, n in counted:
        if (channel, kind, name) in statuses:
            statuses[(channel, kind, name)][status] = n
    for channel, kind, name, version in session.execute(
        base.add_columns(PackageFile.version).distinct()
    ):
        if (channel, kind, name) in versions:
            versions[(channel, kind, name)].add(version)
    return [
        AffectedPackage(
            channel=key[0],
            package=key[2],
            package_type=str(key[1]),
            versions=_in_version_order(key[1], versions[key]),
            files=sum(statuses[key].values()),
            statuses=statuses[key],
        )
        for key in statuses
    ]


def _in_version_order(kind: str, versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=lambda version: _version_order(kind, version))


def _version_order(kind: str, version: str) -> tuple[int, Any, str]:
    """Parsed versions in their kind's order, unparseable ones after them by text."""
    if kind == PackageType.python:
        parsed: Any = parse_version(version)
    else:
        parsed = conda_version(version)
    return (0, parsed, version) if parsed is not None else (1, 0, version)


def file_matches(session: Session, file_id: int) -> list[tuple[CveMatch, Cve]]:
    return page_file_matches(session, file_id, offset=0, limit=None)[0]


FILE_MATCH_SORTS = ("score", "cve", "status")


def page_file_matches(
    session: Session,
    file_id: int,
    *,
    offset: int,
    limit: int | None,
    sort: Sort = Sort("score", descending=True),
) -> tuple[list[tuple[CveMatch, Cve]], int]:
    """A page of a file's CVE matches, sorted by one of `FILE_MATCH_SORTS`."""
    query = (
        select(CveMatch, Cve)
        .join(Cve, Cve.id == CveMatch.cve_id)
        .where(CveMatch.file_id == file_id)
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    columns: dict[str, SQLColumnExpression[Any]] = {
        "score": func.coalesce(Cve.score, -1.0),
        "cve": Cve.id,
        "status": CveMatch.status,
    }
    rows = session.execute(query.order_by(*sort.order_by(columns)).offset(offset).limit(limit))
    return [(match, cve) for match, cve in rows], total
