"""Matching CVEs to files, and what the CVE rules of a mirror run read.

PyPI files match by normalized project name and PEP 440 version against OSV `affected` ranges
(`introduced`, `fixed`, `last_affected`, explicit `versions`; GIT ranges were dropped on import).
Conda files match through their PyPI name (cves/names.py) with their version read as PEP 440;
a conda version PEP 440 cannot read matches nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from packaging.version import Version
from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from headwater.cves.advisories import AffectedPackage
from headwater.cves.names import CondaNames
from headwater.cves.ranges import in_range, parse
from headwater.cves.scoring import MatchStatus, file_score, has_unscored
from headwater.db import Database, insert_or_ignore, utcnow
from headwater.filters.rules import CveStanding
from headwater.models import Cve, CveMatch, PackageFile, PackageType, User

_CHUNK = 5000
_MATCHES = cast(Table, CveMatch.__table__)


@dataclass(frozen=True)
class _Affected:
    cve_id: str
    versions: frozenset[Version]
    ranges: tuple[tuple[tuple[str, str], ...], ...]

    def affects(self, version: Version) -> bool:
        return version in self.versions or any(in_range(r, version) for r in self.ranges)


class Matcher:
    """Every live CVE's affected PyPI packages, indexed by project, with answers cached."""

    def __init__(self, affected: Iterable[tuple[str, AffectedPackage]], names: CondaNames) -> None:
        self.names = names
        self.by_project: dict[str, list[_Affected]] = defaultdict(list)
        for cve_id, package in affected:
            if package.ecosystem != "PyPI":
                continue
            versions = frozenset(v for text in package.versions if (v := parse(text)) is not None)
            self.by_project[package.name].append(_Affected(cve_id, versions, package.ranges))
        self._cache: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def cves_for(self, package_type: str, name: str, version: str) -> tuple[str, ...]:
        key = (package_type, name, version)
        found = self._cache.get(key)
        if found is None:
            found = self._match(package_type, name, version)
            self._cache[key] = found
        return found

    def _match(self, package_type: str, name: str, version: str) -> tuple[str, ...]:
        project = name if package_type == PackageType.python else self.names.pypi_name(name)
        if project is None or project not in self.by_project:
            return ()
        parsed = parse(version)
        if parsed is None:
            return ()
        return tuple(sorted({a.cve_id for a in self.by_project[project] if a.affects(parsed)}))


def load_matcher(session: Session, names: CondaNames) -> Matcher:
    rows = session.execute(select(Cve.id, Cve.affected).where(Cve.withdrawn.is_(False)))
    return Matcher(
        ((cve_id, AffectedPackage.from_json(p)) for cve_id, affected in rows for p in affected),
        names,
    )


@dataclass(frozen=True)
class MatchReport:
    files: int  # looked at; 0 when the database has no advisory to match against
    matches: int
    added: int
    removed: int
    seconds: float

    def describe(self) -> str:
        if not self.files and not self.removed:
            return "no file to match against the CVE database"
        return (
            f"{self.matches} CVE matches over {self.files} files ({self.added} new, "
            f"{self.removed} gone) in {self.seconds} s"
        )


def rematch(session: Session, matcher: Matcher, *, channel_id: int | None = None) -> MatchReport:
    """Bring the matches of every file (of one channel, or all) in line with the CVE database:
    new matches are `reported`, matches that still hold keep their curation, and matches that
    no longer hold (a withdrawn advisory, a changed range) are removed."""
    started = time.perf_counter()
    files = select(PackageFile.id, PackageFile.package_type, PackageFile.name, PackageFile.version)
    existing_query = select(CveMatch.id, CveMatch.file_id, CveMatch.cve_id)
    if channel_id is not None:
        files = files.where(PackageFile.channel_id == channel_id)
        existing_query = existing_query.join(PackageFile, PackageFile.id == CveMatch.file_id).where(
            PackageFile.channel_id == channel_id
        )
    wanted: set[tuple[int, str]] = set()
    count = 0
    if matcher.by_project:  # with no advisory at all, no file needs looking at
        for file_id, package_type, name, version in session.execute(files):
            count += 1
            for cve_id in matcher.cves_for(package_type, name, version):
                wanted.add((file_id, cve_id))
    existing = {
        (file_id, cve_id): match_id for match_id, file_id, cve_id in session.execute(existing_query)
    }
    stale = [match_id for pair, match_id in existing.items() if pair not in wanted]
    now = utcnow()
    new = [
        {"file_id": file_id, "cve_id": cve_id, "status": "reported", "created_at": now}
        for file_id, cve_id in wanted
        if (file_id, cve_id) not in existing
    ]
    for start in range(0, len(stale), _CHUNK):
        session.execute(delete(CveMatch).where(CveMatch.id.in_(stale[start : start + _CHUNK])))
    for start in range(0, len(new), _CHUNK):
        # Core, not the ORM: a first match of a large channel inserts millions of rows.
        session.execute(insert_or_ignore(session, _MATCHES), new[start : start + _CHUNK])
    return MatchReport(
        files=count,
        matches=len(wanted),
        added=len(new),
        removed=len(stale),
        seconds=round(time.perf_counter() - started, 3),
    )


class CveOracle:
    """What the CVE rules of an active run read of an upstream file: its score, whether an
    unresolved match is unscored, and whether it has a match nobody curated. A file keeps the
    curated statuses its bytes have (by sha256) in this channel, or from an administrator
    anywhere; any other match would be new, so `reported`."""

    def __init__(self, session: Session, matcher: Matcher, channel_id: int) -> None:
        self.matcher = matcher
        live = session.execute(select(Cve.id, Cve.score).where(Cve.withdrawn.is_(False)))
        self.scores: dict[str, float | None] = {cve_id: score for cve_id, score in live}
        self.statuses: dict[str, dict[str, str]] = defaultdict(dict)
        administrators = select(User.username).where(User.is_admin.is_(True))
        rows = session.execute(
            select(PackageFile.sha256, CveMatch.cve_id, CveMatch.status)
            .join(CveMatch, CveMatch.file_id == PackageFile.id)
            .where(
                (PackageFile.channel_id == channel_id) | (CveMatch.curated_by.in_(administrators))
            )
            .order_by(CveMatch.curated_at.nulls_first())
        )
        for sha256, cve_id, status in rows:
            self.statuses[sha256][cve_id] = status

    def standing(self, package_type: str, name: str, version: str, sha256: str) -> CveStanding:
        known = self.statuses.get(sha256, {})
        matches = [
            (known.get(cve_id, MatchStatus.reported.value), self.scores.get(cve_id))
            for cve_id in self.matcher.cves_for(package_type, name, version)
        ]
        return CveStanding(
            score=file_score(matches),
            has_reported=any(status == MatchStatus.reported for status, _ in matches),
            unscored=has_unscored(matches),
        )

    def for_conda(self, record: Any) -> CveStanding:
        return self.standing(PackageType.conda, record.name, record.version, record.sha256)

    def for_python(self, record: Any) -> CveStanding:
        return self.standing(PackageType.python, record.project, record.version, record.sha256)


# Part of database_revision: bumped when the CVE rules themselves change meaning (2: an
# unscored match counts as above cve_score_threshold), so mirrors with CVE rules re-judge.
_RULES_VERSION = 2


def database_revision(session: Session) -> str:
    """Changes whenever what the CVE rules would say may change: advisories, curation, or
    the rules' own meaning."""
    cves = session.execute(select(func.count(), func.max(Cve.updated_at))).one()
    matches = session.execute(
        select(func.count(), func.max(CveMatch.curated_at), func.max(CveMatch.id))
    ).one()
    return f"r{_RULES_VERSION}:{cves[0]}:{cves[1]}:{matches[0]}:{matches[1]}:{matches[2]}"


def match_staged(db: Database, change_key: str, *, names: CondaNames) -> int:
    """Match the files a change staged (services/revisions.py) before it lands. A match takes
    the curation the same bytes already have for the same CVE, so a curation follows the file:
    one made in this channel (any revision), or one an administrator made anywhere. A channel
    manager's curation elsewhere does not carry: it would let anyone clear a CVE for others'
    channels by uploading the same file to their own. Answers how many matches were made."""
    with db.reading() as session:
        matcher = load_matcher(session, names)
        if not matcher.by_project:
            return 0
        staged = session.execute(
            select(
                PackageFile.id,
                PackageFile.package_type,
                PackageFile.name,
                PackageFile.version,
                PackageFile.sha256,
            ).where(PackageFile.change_key == change_key)
        ).all()
        channel_id = session.scalar(
            select(PackageFile.channel_id).where(PackageFile.change_key == change_key).limit(1)
        )
        found = [
            (file_id, sha256, cve_id)
            for file_id, package_type, name, version, sha256 in staged
            for cve_id in matcher.cves_for(package_type, name, version)
        ]
        curated = _curations(session, channel_id, {sha256 for _, sha256, _ in found})
    now = utcnow()
    rows = []
    for file_id, sha256, cve_id in found:
        # Every row names every column: an executemany takes its columns from the first row.
        row: dict[str, Any] = {
            "file_id": file_id,
            "cve_id": cve_id,
            "created_at": now,
            **curated.get((sha256, cve_id), _REPORTED),
        }
        rows.append(row)
    for start in range(0, len(rows), _CHUNK):
        with db.writing() as session:
            session.execute(insert_or_ignore(session, _MATCHES), rows[start : start + _CHUNK])
    return len(rows)


_REPORTED = {"status": "reported", "note": None, "curated_by": None, "curated_at": None}


def _curations(
    session: Session, channel_id: int | None, digests: set[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest curation that carries of each (file sha256, CVE) among `digests`."""
    administrators = select(User.username).where(User.is_admin.is_(True))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    listed = sorted(digests)
    for start in range(0, len(listed), _CHUNK):
        rows = session.execute(
            select(
                PackageFile.sha256,
                CveMatch.cve_id,
                CveMatch.status,
                CveMatch.note,
                CveMatch.curated_by,
                CveMatch.curated_at,
            )
            .join(CveMatch, CveMatch.file_id == PackageFile.id)
            .where(
                PackageFile.sha256.in_(listed[start : start + _CHUNK]),
                CveMatch.curated_at.is_not(None),
                (PackageFile.channel_id == channel_id) | CveMatch.curated_by.in_(administrators),
            )
            .order_by(CveMatch.curated_at)
        )
        for sha256, cve_id, status, note, curated_by, curated_at in rows:
            found[(sha256, cve_id)] = {
                "status": status,
                "note": note,
                "curated_by": curated_by,
                "curated_at": curated_at,
            }
    return found


def match_everything(db: Database, names: CondaNames) -> MatchReport:
    """Match every file again, after the advisories changed."""
    with db.writing() as session:
        return rematch(session, load_matcher(session, names))
