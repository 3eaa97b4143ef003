"""Curating CVE matches: one match, or many at once — the matches of a CVE ticked on a page, or
those of a package version range, a subdir or a whole channel — with one status and note.

A curation changes only matches in channels the caller may curate, in the caller's transaction,
with set-based UPDATEs, and is recorded as one audit event. An administrator's curation is
carried to the same bytes in every other channel (`_carry_curation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from sqlalchemy import ColumnElement, and_, func, select, tuple_, update
from sqlalchemy.orm import Session

from headwater.cves.scoring import (
    MatchStatus,
)
from headwater.db import utcnow
from headwater.errors import (
    CveMatchNotFoundError,
    InvalidInputError,
    PermissionDeniedError,
)
from headwater.filters.conda_specs import CondaSpec, SpecError, parse_conda_spec
from headwater.filters.python_specs import (
    PythonSpec,
    RequirementError,
    parse_python_spec,
    parse_version,
)
from headwater.formats.conda import conda_version
from headwater.inputs import check_text, has_control_characters
from headwater.models import Channel, CveMatch, PackageFile, PackageType, User
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import ChannelRef, require_channel
from headwater.services.access.identities import channel_ids_where
from headwater.services.access.rules import Action, Identity
from headwater.services.cves import chunks, get_cve


def get_match(session: Session, match_id: int) -> CveMatch:
    match = session.get(CveMatch, match_id)
    if match is None:
        raise CveMatchNotFoundError(f"CVE match {match_id} does not exist")
    return match


@dataclass(frozen=True)
class Curated:
    match: CveMatch
    file: PackageFile
    channel: Channel


def curate_match(
    session: Session,
    channel: ChannelRef,
    match_id: int,
    status: str,
    note: str | None,
    *,
    actor: Actor,
) -> Curated:
    """Curate a match of a file of `channel` (whose managers may: decided before)."""
    match = get_match(session, match_id)
    file = session.get(PackageFile, match.file_id)
    row = session.get(Channel, file.channel_id) if file is not None else None
    if file is None or row is None or row.id != channel.id:
        raise CveMatchNotFoundError(f"CVE match {match_id} does not exist")
    curate(session, match, status, note, curated_by=actor.username)
    _carry_curation(session, match, file, everywhere=_is_administrator(session, actor))
    record(
        session,
        actor,
        "cve.curate",
        channel.name,
        match_id=match.id,
        cve=match.cve_id,
        file=file.filename,
        status=match.status,
        note=match.note,
    )
    session.flush()
    return Curated(match, file, row)


MAX_NOTE_LENGTH = 10_000


def _carry_curation(
    session: Session, match: CveMatch, file: PackageFile, *, everywhere: bool
) -> None:
    """A curation belongs to the file's bytes: it goes to every match of the same CVE on the
    same sha256 in this channel's revisions, and, made by an administrator, in every channel
    (services/cve_matching.match_staged carries it to files matched later)."""
    same_bytes = select(PackageFile.id).where(PackageFile.sha256 == file.sha256)
    if not everywhere:
        same_bytes = same_bytes.where(PackageFile.channel_id == file.channel_id)
    session.execute(
        update(CveMatch)
        .where(
            CveMatch.cve_id == match.cve_id,
            CveMatch.file_id.in_(same_bytes),
            CveMatch.id != match.id,
        )
        .values(
            status=match.status,
            note=match.note,
            curated_by=match.curated_by,
            curated_at=match.curated_at,
        )
    )


def curate(
    session: Session, match: CveMatch, status: str, note: str | None, *, curated_by: str
) -> CveMatch:
    """Set a match's status with a note; who and when are kept. `reported` puts it back."""
    match.status = _checked_status(status)
    match.note = (
        check_text(note, "note", max_length=MAX_NOTE_LENGTH, multiline=True) if note else None
    )
    match.curated_by = curated_by
    match.curated_at = utcnow()
    return match


def _is_administrator(session: Session, actor: Actor) -> bool:
    return actor.user_id is None or bool(
        session.scalar(select(User.is_admin).where(User.id == actor.user_id))
    )


# Curation at scale ---------------------------------------------------------------------------

MAX_BULK_MATCHES = 1000  # named match ids in one curation: ten pages of a CVE's files
MAX_BULK_CVES = 100  # CVEs in one curation: a page of a channel's CVEs
MAX_VERSIONS_LENGTH = 200


@dataclass(frozen=True)
class CurationScope:
    """The matches one curation sets: of `cve_ids`, in the head of the channels it is given,
    either the named `match_ids` or every one, narrowed to a `package` (and to its `versions`,
    a conda version spec or a PEP 440 specifier by the file's kind) and to a `subdir`."""

    cve_ids: tuple[str, ...]
    match_ids: tuple[int, ...] | None = None
    package: str | None = None
    versions: str | None = None
    subdir: str | None = None

    def described(self) -> dict[str, Any]:
        """The scope as the audit event names it."""
        named: dict[str, Any] = {"cves": list(self.cve_ids)}
        if self.match_ids is not None:
            named["matches"] = len(self.match_ids)
        for key in ("package", "versions", "subdir"):
            if getattr(self, key) is not None:
                named[key] = getattr(self, key)
        return named


@dataclass(frozen=True)
class BulkCuration:
    curated: int  # matches in the channels' heads that the scope named
    carried: int  # matches of the same bytes elsewhere (older revisions...) that follow them
    channels: list[str]


def curatable_channel_ids(
    session: Session, identity: Identity | None, channel: str | None
) -> list[int]:
    """The channels a curation may change: the one named (refused as access decides when the
    caller may not curate there), else every channel the caller may curate: none is refused."""
    if channel is not None:
        return [require_channel(session, identity, Action.curate_cves, channel).id]
    ids = channel_ids_where(session, identity, Action.curate_cves)
    if not ids:
        raise PermissionDeniedError(
            "you may not curate CVE matches: that needs the manage role on their channel"
        )
    return ids


def curate_cve(
    session: Session,
    scope: CurationScope,
    status: str,
    note: str | None,
    *,
    channel: str | None,
    identity: Identity | None,
    actor: Actor,
) -> BulkCuration:
    """Curate one CVE's matches in `scope` where the caller may: in `channel` when one is
    named (refused when they may not curate there), else in every channel they may curate.
    An unknown CVE is refused before access is judged."""
    for cve_id in scope.cve_ids:
        get_cve(session, cve_id)
    return curate_scope(
        session,
        scope,
        status,
        note,
        channel_ids=curatable_channel_ids(session, identity, channel),
        actor=actor,
        target=channel or ", ".join(scope.cve_ids),
    )


def curate_scope(
    session: Session,
    scope: CurationScope,
    status: str,
    note: str | None,
    *,
    channel_ids: Sequence[int],
    actor: Actor,
    target: str,
) -> BulkCuration:
    """Curate every match in `scope` within `channel_ids` (those the caller may curate, decided
    before) with one status and note: a few set-based UPDATEs in the caller's transaction, and
    one audit event on `target` naming the scope and the count. As for one match, a
    curation follows the bytes (`_carry_curation`)."""
    status = _checked_status(status)
    note = check_text(note, "note", max_length=MAX_NOTE_LENGTH, multiline=True) if note else None
    for cve_id in scope.cve_ids:
        get_cve(session, check_text(cve_id, "a CVE id", max_length=100))
    condition = _scope_condition(scope, channel_ids)
    conditions = [condition]
    if scope.versions is not None:
        conditions = _within_versions(session, condition, scope)
    curated = carried = 0
    channels: set[str] = set()
    everywhere = _is_administrator(session, actor)
    values = {
        "status": status,
        "note": note,
        "curated_by": actor.username,
        "curated_at": utcnow(),
    }
    for chosen in conditions:
        in_scope = (
            select(CveMatch.id).join(PackageFile, PackageFile.id == CveMatch.file_id).where(chosen)
        )
        channels.update(
            session.scalars(
                select(Channel.name)
                .join(PackageFile, PackageFile.channel_id == Channel.id)
                .join(CveMatch, CveMatch.file_id == PackageFile.id)
                .where(chosen)
                .distinct()
            )
        )
        count = session.scalar(select(func.count()).select_from(in_scope.subquery())) or 0
        if not count:
            continue
        # The matches of the same CVEs on the same bytes: in the same channel, or made by an
        # administrator, in every channel; the scope's own are among them.
        files = select(PackageFile.channel_id, PackageFile.sha256).join(
            CveMatch, CveMatch.file_id == PackageFile.id
        )
        if everywhere:
            same_bytes = PackageFile.sha256.in_(
                files.with_only_columns(PackageFile.sha256).where(chosen)
            )
        else:
            same_bytes = tuple_(PackageFile.channel_id, PackageFile.sha256).in_(files.where(chosen))
        changed = session.execute(
            update(CveMatch)
            .where(
                CveMatch.cve_id.in_(scope.cve_ids),
                CveMatch.file_id.in_(select(PackageFile.id).where(same_bytes)),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        curated += count
        carried += max(0, _rowcount(changed) - count)
    if scope.match_ids is not None and not curated:
        raise CveMatchNotFoundError(
            f"none of the {len(scope.match_ids)} matches named is a match of "
            f"{', '.join(scope.cve_ids)} in a channel you may curate"
        )
    session.expire_all()  # the rows the UPDATEs changed
    record(
        session,
        actor,
        "cve.curate_bulk",
        target,
        scope=scope.described(),
        channels=sorted(channels),
        status=status,
        note=note,
        count=curated,
        carried=carried,
    )
    session.flush()
    return BulkCuration(curated=curated, carried=carried, channels=sorted(channels))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _checked_status(status: str) -> str:
    if status not in MatchStatus.__members__:
        raise InvalidInputError(
            f"status {status!r} is not one of {', '.join(MatchStatus.__members__)}"
        )
    return status


def _package_names(package: str) -> set[str]:
    """A package as conda files and PyPI files keep its name."""
    return {package.lower(), canonicalize_name(package)}


def _scope_condition(scope: CurationScope, channel_ids: Sequence[int]) -> ColumnElement[bool]:
    """The matches of the scope, in the heads of `channel_ids` (versions apart)."""
    parts = [
        CveMatch.cve_id.in_(scope.cve_ids),
        PackageFile.in_head(),
        PackageFile.channel_id.in_(channel_ids),
    ]
    if scope.match_ids is not None:
        parts.append(CveMatch.id.in_(scope.match_ids))
    if scope.package is not None:
        parts.append(PackageFile.name.in_(_package_names(scope.package)))
    if scope.subdir is not None:
        parts.append(PackageFile.subdir == scope.subdir)
    return and_(*parts)


@dataclass(frozen=True)
class VersionRange:
    """A package's versions as a conda version spec and as a PEP 440 specifier: the filters'
    own parsers (filters/conda_specs, filters/python_specs), each for its kind of file."""

    text: str
    conda: CondaSpec | None
    python: PythonSpec | None
    conda_problem: str | None
    python_problem: str | None

    @classmethod
    def parse(cls, package: str, text: str) -> VersionRange:
        if len(text) > MAX_VERSIONS_LENGTH or has_control_characters(text):
            raise InvalidInputError(
                f"versions must be a version spec of at most {MAX_VERSIONS_LENGTH} characters"
            )
        conda = python = None
        conda_problem = python_problem = None
        try:
            conda = parse_conda_spec(f"{package.lower()} {text}")
        except (SpecError, ValueError) as error:
            conda_problem = str(error)
        try:
            python = parse_python_spec(f"{canonicalize_name(package)}{text}")
        except (RequirementError, ValueError) as error:
            python_problem = str(error)
        if conda is None and python is None:
            raise InvalidInputError(
                f"versions {text!r} is neither a conda version spec nor a PEP 440 specifier "
                f"(such as '>=60,<70'): {python_problem}"
            )
        return cls(text, conda, python, conda_problem, python_problem)

    def holds(self, package_type: str, version: str) -> bool:
        if package_type == PackageType.python:
            if self.python is None:
                raise InvalidInputError(
                    f"versions {self.text!r} is not a PEP 440 specifier, and the scope has PyPI "
                    f"files: {self.python_problem}"
                )
            return self.python.matches(self.python.project, parse_version(version))
        if self.conda is None or self.conda.version is None:
            if self.conda is None:
                raise InvalidInputError(
                    f"versions {self.text!r} is not a conda version spec, and the scope has "
                    f"conda files: {self.conda_problem}"
                )
            return True
        parsed = conda_version(version)
        return parsed is not None and bool(self.conda.version.matches(parsed))


def _within_versions(
    session: Session, condition: ColumnElement[bool], scope: CurationScope
) -> list[ColumnElement[bool]]:
    """The scope's condition narrowed to the versions in its range: each distinct version is
    judged once, and the ones in range go into the UPDATE by value (in chunks)."""
    assert scope.package is not None and scope.versions is not None
    wanted = VersionRange.parse(scope.package, scope.versions)
    found = session.execute(
        select(PackageFile.package_type, PackageFile.version)
        .join(CveMatch, CveMatch.file_id == PackageFile.id)
        .where(condition)
        .distinct()
    )
    held = [(kind, version) for kind, version in found if wanted.holds(kind, version)]
    return [
        and_(condition, tuple_(PackageFile.package_type, PackageFile.version).in_(chunk))
        for chunk in chunks(held)
    ]
