"""Checking a PyPI mirror run's revision before it becomes the head: every kept file's
requirements are there (or on the indexes available beside it), and the channel's PEP 508
must_install specs resolve with a real resolver (resolvelib, the one pip uses).

The solve is made per platform (a spec's own, else every platform of the mirror's marker
environments), for each Python version kept, newest first: the specs solve on a platform when
they install with one of those Pythons. A version is a candidate on a platform when one of
its files is a wheel for that platform, a pure-Python wheel or an sdist, and its
Requires-Python admits the Python. Its requirements are those of that file's core metadata;
a file whose metadata was never read counts as having none (the report notes how many).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from resolvelib import (
    AbstractProvider,
    BaseReporter,
    ResolutionError,
    ResolutionImpossible,
    Resolver,
)
from sqlalchemy import select

from headwater.db import Database
from headwater.dependencies.python import (
    Environment,
    Pool,
    check_revision,
    marker_holds,
    parse_requirement,
    project_of,
    requirements_of,
    satisfying,
)
from headwater.dependencies.report import Cause, DependencyReport, MustInstall, Notes
from headwater.dependencies.settings import by_platform
from headwater.formats.pypi.records import PythonRecord, decode_record
from headwater.models import PackageFile, PackageType
from headwater.services.pypi_pages import build_records, upstream_license
from headwater.services.revisions import Candidate
from headwater.services.solvability import ChannelChecks, DependencyCheck, Elsewhere
from headwater.storage import BlobStore
from headwater.upstreams.http import HttpPolicy
from headwater.upstreams.pypi import PyPIUpstream

MAX_ROUNDS = 2000  # resolver rounds of one solve before it gives up
MAX_ELSEWHERE_METADATA = 200  # .metadata files one check may read from other indexes


class PythonElsewhere(Elsewhere):
    """The simple indexes available to clients beside this channel, read (once per project)
    only for projects the revision lacks or cannot satisfy."""

    def __init__(
        self, urls: Sequence[str], policy: HttpPolicy, proxy: str | None, notes: Notes
    ) -> None:
        super().__init__(
            [url if url.endswith("/") else url + "/" for url in urls], policy, proxy, notes
        )
        self._records: dict[str, list[PythonRecord]] = {}
        self._metadata_reads = 0

    def records(self, project: str) -> list[PythonRecord]:
        if project not in self._records:
            self._records[project] = self._read(project)
        return self._records[project]

    def versions(self, project: str) -> list[tuple[str, bool]]:
        return [(record.version, record.yanked is not None) for record in self.records(project)]

    def with_metadata(self, record: PythonRecord) -> PythonRecord:
        """The record with its requirements, when the index offers PEP 658 metadata."""
        if record.dependencies_known or record.core_metadata is None:
            return record
        if self._metadata_reads >= MAX_ELSEWHERE_METADATA:
            return record
        self._metadata_reads += 1
        root = record.url.rsplit("/", 1)[0] + "/"
        read = self.fetch(root, record.filename, partial(self._metadata, root, record))
        return read if read is not None else record

    def _read(self, project: str) -> list[PythonRecord]:
        found: list[PythonRecord] = []
        for url in self.urls:
            found += self.fetch(url, project, partial(self._fetch, url, project)) or []
        return found

    async def _fetch(self, url: str, project: str) -> list[PythonRecord]:
        async with self.client() as client:
            page = await PyPIUpstream(client, url, self.policy).fetch_project(project)
        if page is None or page.links is None:
            return []
        return build_records(project, page.links)[0]

    async def _metadata(self, root: str, record: PythonRecord) -> PythonRecord:
        async with self.client() as client:
            return await upstream_license(PyPIUpstream(client, root, self.policy), None, record)


class PythonCheck(DependencyCheck):
    def __init__(
        self,
        checks: ChannelChecks,
        report: DependencyReport,
        pool: Pool,
        envs: Sequence[Environment],
        elsewhere: PythonElsewhere | None,
    ) -> None:
        super().__init__(checks, report)
        self.pool = pool
        self.envs = list(envs)
        self.elsewhere = elsewhere

    def examine(self, db: Database, store: BlobStore, candidate: Candidate) -> None:
        records = revision_records(db, candidate)
        elsewhere = self.elsewhere
        check_revision(
            records,
            self.pool,
            self.envs,
            self.report,
            elsewhere=elsewhere.versions if elsewhere is not None else lambda project: (),
        )
        unknown = sum(1 for record in records if not record.dependencies_known)
        if unknown:
            self.report.notes.add(
                f"{unknown} files have no core metadata read: their requirements are not checked"
            )
        index = RevisionIndex(records, elsewhere)
        for platform, specs in self._environments():
            self.report.must_install.append(self._solve(index, platform, specs))

    def _environments(self) -> list[tuple[str, list[str]]]:
        platforms = sorted({env.platform for env in self.envs})
        environments, aside = by_platform(self.checks.must_install, platforms, conda=False)
        for spec in aside:
            self.report.notes.add(
                f"must_install {spec.spec!r} is not a PEP 508 requirement: a PyPI mirror's "
                "runs do not solve it"
            )
        return environments

    def _solve(self, index: RevisionIndex, platform: str, specs: list[str]) -> MustInstall:
        pythons = sorted({env.python for env in self.envs}, key=Version, reverse=True)
        first: tuple[str, set[str]] | None = None
        for python in pythons:
            solved, message, projects = solve_python(index, Environment(platform, python), specs)
            if solved:
                return MustInstall(platform, tuple(specs), True, message)
            if first is None:
                first = (message, projects)
        assert first is not None
        message, projects = first
        return MustInstall(
            platform, tuple(specs), False, message, self._causes(platform, specs, projects)
        )

    def _causes(self, platform: str, specs: list[str], projects: set[str]) -> tuple[Cause, ...]:
        """The filters that removed what the failure names: the projects of the specs and of
        the requirements the resolver could not meet."""
        causes: set[Cause] = set()
        named = set(projects)
        for text in specs:
            requirement = parse_requirement(text)
            if requirement is not None:
                named.add(project_of(requirement))
                causes.update(self.pool.causes(requirement))
        for project in named:
            for entry in self.pool.projects.get(project, ()):
                why = self.pool.why(entry)
                if why is not None and why.hard:
                    causes.add(Cause.of(why))
        return tuple(sorted(causes))


def revision_records(db: Database, candidate: Candidate) -> list[PythonRecord]:
    """The PyPI files of the revision being built."""
    with db.reading() as session:
        rows = session.scalars(
            select(PackageFile.record).where(
                candidate.files(), PackageFile.package_type == PackageType.python.value
            )
        )
        return [decode_record(row) for row in rows if row]


@dataclass
class RevisionIndex:
    """The revision's files by project; projects it lacks are looked up elsewhere."""

    records: Sequence[PythonRecord]
    elsewhere: PythonElsewhere | None
    by_project: dict[str, list[PythonRecord]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for record in self.records:
            self.by_project.setdefault(record.project, []).append(record)

    def files(self, project: str) -> list[PythonRecord]:
        found = self.by_project.get(project)
        if found is None and self.elsewhere is not None:
            return self.elsewhere.records(project)
        return found or []


@dataclass(frozen=True)
class _Candidate:
    project: str
    version: Version
    text: str  # the version as the files name it
    extras: frozenset[str]
    record: PythonRecord  # the file whose requirements count

    def __repr__(self) -> str:
        shown = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.project}{shown}=={self.text}"


def _key(project: str, extras: Iterable[str]) -> str:
    extras = sorted(extras)
    return f"{project}[{','.join(extras)}]" if extras else project


class _Provider(AbstractProvider):
    """resolvelib's view of a revision for one environment (pip's model of extras: `pkg[x]`
    is its own name, depending on `pkg` of the same version)."""

    def __init__(self, index: RevisionIndex, environment: Environment) -> None:
        self.index = index
        self.environment = environment
        self.python = Version(f"{environment.python}.0")

    def identify(self, requirement_or_candidate: Any) -> str:
        item = requirement_or_candidate
        if isinstance(item, _Candidate):
            return _key(item.project, item.extras)
        return _key(project_of(item), (canonicalize_name(extra) for extra in item.extras))

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Any],
        candidates: Mapping[str, Iterator[Any]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> Any:
        causing = any(self.identify(cause.requirement) == identifier for cause in backtrack_causes)
        return (not causing, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Any]],
        incompatibilities: Mapping[str, Iterator[Any]],
    ) -> list[_Candidate]:
        wanted = list(requirements[identifier])
        if not wanted:
            return []
        project = project_of(wanted[0])
        extras = frozenset(canonicalize_name(extra) for extra in wanted[0].extras)
        refused = {candidate.version for candidate in incompatibilities[identifier]}
        usable = self._usable(project)
        specifier = SpecifierSet()
        for requirement in wanted:
            specifier &= requirement.specifier
        versions = [(text, yanked) for text, (yanked, _) in usable.items()]
        return [
            _Candidate(project, version, text, extras, usable[text][1])
            for text in satisfying(specifier, versions)
            if (version := Version(text)) not in refused
        ]

    def _usable(self, project: str) -> dict[str, tuple[bool, PythonRecord]]:
        """version → (all its usable files yanked, the file whose requirements count)."""
        platform = self.environment.platform
        found: dict[str, tuple[bool, PythonRecord, int]] = {}
        for record in self.index.files(project):
            if platform in record.platforms:
                rank = 0
            elif "noarch" in record.platforms:
                rank = 1 if record.kind == "wheel" else 2
            else:
                continue
            if not _admits(record.requires_python, self.python):
                continue
            yanked = record.yanked is not None
            current = found.get(record.version)
            if current is None:
                found[record.version] = (yanked, record, rank)
            else:
                best = record if rank < current[2] else current[1]
                found[record.version] = (current[0] and yanked, best, min(rank, current[2]))
        return {text: (yanked, record) for text, (yanked, record, _) in found.items()}

    def is_satisfied_by(self, requirement: Any, candidate: Any) -> bool:
        return bool(
            project_of(requirement) == candidate.project
            and requirement.specifier.contains(candidate.version, prereleases=True)
        )

    def get_dependencies(self, candidate: Any) -> list[Requirement]:
        record = candidate.record
        if self.index.elsewhere is not None and record.project not in self.index.by_project:
            record = self.index.elsewhere.with_metadata(record)
        dependencies = []
        if candidate.extras:
            dependencies.append(Requirement(f"{candidate.project}=={candidate.text}"))
        for requirement in requirements_of(record, [self.environment], candidate.extras):
            if candidate.extras and _counts(requirement, self.environment):
                continue  # the base candidate brings it; `pkg[x]` adds what its extras add
            dependencies.append(requirement)
        return dependencies


def _counts(requirement: Requirement, environment: Environment) -> bool:
    """Whether the requirement counts in `environment` without any extra."""
    marker = requirement.marker
    return marker is None or marker_holds(marker, environment.markers(""))


def _admits(requires_python: str | None, python: Version) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(python, prereleases=True)
    except InvalidSpecifier:
        return True  # an installer ignores a Requires-Python it cannot read


def solve_python(
    index: RevisionIndex, environment: Environment, specs: Sequence[str]
) -> tuple[bool, str, set[str]]:
    """resolvelib on the revision for one environment: (solved, message, projects named in
    the failure)."""
    requirements = [requirement for text in specs if (requirement := parse_requirement(text))]
    requirements = [r for r in requirements if _counts(r, environment)]
    where = f"Python {environment.python}"
    resolver: Resolver[Requirement, _Candidate, str] = Resolver(
        _Provider(index, environment), BaseReporter()
    )
    try:
        result = resolver.resolve(requirements, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as error:
        projects = {project_of(cause.requirement) for cause in error.causes}
        parts = []
        for cause in list(error.causes)[:20]:
            parent = f" (required by {cause.parent!r})" if cause.parent is not None else ""
            parts.append(f"{cause.requirement}{parent}")
        return False, f"{where}: no version satisfies " + "; ".join(parts), projects
    except ResolutionError as error:
        return False, f"{where}: the resolver gave up: {error}", set()
    chosen = sorted(
        repr(candidate) for candidate in result.mapping.values() if not candidate.extras
    )
    shown = ", ".join(chosen[:30]) + (f" and {len(chosen) - 30} more" if len(chosen) > 30 else "")
    return True, f"{where}: {len(chosen)} packages: {shown}", set()
