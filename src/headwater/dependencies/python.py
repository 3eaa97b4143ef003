"""PyPI dependencies: the closure a mirror takes over the projects it reads, and the check that
every kept file's `Requires-Dist` is satisfiable in a revision.

Which requirements count: a requirement counts when its environment marker is true in any
of the marker environments the mirror keeps files for, one per (platform, Python version):

- platforms are the platforms named by the `subdirs` filter (conda subdir names, the mapping
  of formats/pypi/filenames.py), or linux-64, osx-arm64 and win-64 when none is named;
- Python versions are 3.9 to 3.13 (CPython): the versions with upstream support or wheels
  still published for them by the projects people mirror. A requirement only for older or
  newer interpreters is not taken.

`extra == "..."` markers are true only for the extras named by the requirement that pulled
the project in (`pkg[socks]` takes pkg's `extra == "socks"` requirements). The check reads
each file's requirements without extras, and with the extras any file of the revision asks
of its project.

The closure takes every version that satisfies a specifier, or (`newest`) only the newest
one, the way packaging's `SpecifierSet.filter` selects: pre-releases only where the specifier
names one or nothing else satisfies it; yanked versions only for an exact `==` pin (PEP 592).
A version is a project's files of that version: every file the refusing rules let in is
taken (wheels for each platform, the sdist). A file whose core metadata was not read has
unknown requirements: the closure cannot follow it and the check does not judge it.

Versions are matched, not files for a platform or an interpreter tag: a dependency is there
when some file of a satisfying version is (the must_install solve, services/
python_solvability.py, goes further and asks for a file usable on the platform).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from headwater.dependencies.report import Cause, DependencyReport, Finding, shortened
from headwater.filters.rules import Exclusion
from headwater.formats.pypi.records import PythonRecord

PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
DEFAULT_PLATFORMS = ("linux-64", "osx-arm64", "win-64")
MAX_DEPENDENCY_PROJECTS = 2000  # projects a closure may add to those the mirror names

Judge = Callable[[PythonRecord], Exclusion | None]

# sys_platform, platform_system, os_name, platform_machine
_LINUX = ("linux", "Linux", "posix")
_MACOS = ("darwin", "Darwin", "posix")
_WINDOWS = ("win32", "Windows", "nt")
_PLATFORMS: dict[str, tuple[tuple[str, str, str], str]] = {
    "linux-64": (_LINUX, "x86_64"),
    "linux-32": (_LINUX, "i686"),
    "linux-aarch64": (_LINUX, "aarch64"),
    "linux-ppc64le": (_LINUX, "ppc64le"),
    "linux-s390x": (_LINUX, "s390x"),
    "linux-armv7l": (_LINUX, "armv7l"),
    "osx-64": (_MACOS, "x86_64"),
    "osx-arm64": (_MACOS, "arm64"),
    "win-64": (_WINDOWS, "AMD64"),
    "win-32": (_WINDOWS, "x86"),
    "win-arm64": (_WINDOWS, "ARM64"),
    "linux-armv6l": (_LINUX, "armv6l"),
    "linux-ppc64": (_LINUX, "ppc64"),
    "linux-riscv64": (_LINUX, "riscv64"),
    "emscripten-wasm32": (("emscripten", "Emscripten", "posix"), "wasm32"),
    "wasi-wasm32": (("wasi", "", "posix"), "wasm32"),
    "zos-z": (("zos", "OS/390", "posix"), "s390x"),
}


@dataclass(frozen=True)
class Environment:
    """One machine a kept file may be installed on: a platform (conda subdir) and a Python."""

    platform: str
    python: str  # "3.12"

    def markers(self, extra: str = "") -> dict[str, str]:
        (sys_platform, system, os_name), machine = _PLATFORMS.get(
            self.platform, _PLATFORMS["linux-64"]
        )
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": os_name,
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": sys_platform,
            "extra": extra,
        }


def environments(subdirs: Iterable[str] | None) -> list[Environment]:
    """The marker environments for the platforms the subdirs filter names (the defaults when
    it names none), each with every Python version kept."""
    named = [subdir for subdir in subdirs or () if subdir in _PLATFORMS]
    platforms = named or list(DEFAULT_PLATFORMS)
    return [Environment(platform, python) for platform in platforms for python in PYTHON_VERSIONS]


@lru_cache(maxsize=65_536)
def parse_requirement(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


@lru_cache(maxsize=65_536)
def _marker_true(
    marker: str, environment: Environment, extras: frozenset[str]
) -> bool:  # cached by marker text: a few distinct markers cover most requirements
    parsed = Marker(marker)
    return any(marker_holds(parsed, environment.markers(extra)) for extra in ("", *sorted(extras)))


def marker_holds(marker: Marker, environment: dict[str, str]) -> bool:
    """Whether the marker is true there; one that parses but cannot be evaluated (comparing
    `python_version ~= "abc"`) applies nowhere."""
    try:
        return bool(marker.evaluate(environment))
    except Exception:  # packaging raises several kinds here; an upstream wrote the marker
        return False


def applies(
    requirement: Requirement, envs: Sequence[Environment], extras: frozenset[str] = frozenset()
) -> bool:
    """Whether the requirement counts: no marker, or its marker is true in some environment
    (with `extra` one of `extras`, or none)."""
    if requirement.marker is None:
        return True
    text = str(requirement.marker)
    return any(_marker_true(text, environment, extras) for environment in envs)


def requirements_of(
    record: PythonRecord, envs: Sequence[Environment], extras: frozenset[str] = frozenset()
) -> Iterator[Requirement]:
    """The record's requirements that count in `envs` when installed with `extras`."""
    for text in record.requires_dist:
        requirement = parse_requirement(text)
        if requirement is not None and applies(requirement, envs, extras):
            yield requirement


def project_of(requirement: Requirement) -> str:
    return canonicalize_name(requirement.name)


@lru_cache(maxsize=262_144)
def version_of(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _exact_pin(specifier: SpecifierSet) -> bool:
    return any(spec.operator in ("==", "===") and "*" not in spec.version for spec in specifier)


def satisfying(specifier: SpecifierSet, versions: Iterable[tuple[str, bool]]) -> list[str]:
    """Of (version, yanked) pairs, the versions an installer would take for `specifier`,
    newest first: packaging's filter (pre-releases only when named or alone), yanked ones
    only for an exact pin."""
    pinned = _exact_pin(specifier)
    parsed: dict[Version, str] = {}
    for text, yanked in versions:
        version = version_of(text)
        if version is not None and (pinned or not yanked):
            parsed.setdefault(version, text)
    chosen = sorted(specifier.filter(parsed), reverse=True)
    return [parsed[version] for version in chosen]


@dataclass
class Entry:
    """One upstream file as the closure sees it."""

    record: PythonRecord
    exclusion: Exclusion | None  # None: kept
    dependency_of: str | None = None  # taken because this project's files require it


@dataclass
class Pool:
    """Every file a run read from upstream, by project, with its judgement; `read` holds the
    projects whose pages the run read (a project upstream lacks is read, with no files)."""

    projects: dict[str, list[Entry]] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)
    extras: dict[str, set[str]] = field(default_factory=dict)  # extras asked of a project
    # The refusing rules: what a report names for a file they refuse, rather than the first
    # rule that left it out (a dependency's project is always outside the projects filter).
    refusals: Judge | None = None
    # Projects whose page was unchanged since the last run (not read again), and the blame
    # the last report gave for what they lack: dependency → causes.
    unchanged: set[str] = field(default_factory=set)
    previous_blame: dict[str, tuple[Cause, ...]] = field(default_factory=dict)

    def why(self, entry: Entry) -> Exclusion | None:
        """Why the file is not in the channel: the refusing rule, else the file's own."""
        if entry.exclusion is None:
            return None
        if self.refusals is not None and not entry.exclusion.hard:
            refused = self.refusals(entry.record)
            if refused is not None:
                return refused
        return entry.exclusion

    def add_project(
        self, project: str, judged: Iterable[tuple[PythonRecord, Exclusion | None]]
    ) -> None:
        self.read.add(project)
        entries = self.projects.setdefault(project, [])
        entries.extend(Entry(record, exclusion) for record, exclusion in judged)

    def kept(self) -> Iterator[Entry]:
        for entries in self.projects.values():
            yield from (entry for entry in entries if entry.exclusion is None)

    def kept_records(self, project: str) -> list[PythonRecord]:
        return [e.record for e in self.projects.get(project, ()) if e.exclusion is None]

    def excluded(self) -> dict[str, int]:
        """How many files each reason still leaves out."""
        counts: dict[str, int] = {}
        for entries in self.projects.values():
            for entry in entries:
                if entry.exclusion is not None:
                    reason = entry.exclusion.reason
                    counts[reason] = counts.get(reason, 0) + 1
        return counts

    def causes(self, requirement: Requirement) -> tuple[Cause, ...]:
        """Why the files upstream has for `requirement` are not in the channel: the filters
        that removed them, each once; the mirror's projects filter when the run did not read
        the project at all; empty when upstream has nothing that satisfies it."""
        project = project_of(requirement)
        if project in self.unchanged:
            return self.previous_blame.get(project, ())
        if project not in self.read:
            return (Cause("mirror", "projects", project),)
        excluded = [e for e in self.projects.get(project, ()) if e.exclusion is not None]
        matching = set(
            satisfying(requirement.specifier, {(e.record.version, False) for e in excluded})
        )
        found = {
            Cause.of(why)
            for entry in excluded
            if entry.record.version in matching and (why := self.why(entry)) is not None
        }
        return tuple(sorted(found))


def take_dependencies(
    pool: Pool,
    refusals: Judge,
    envs: Sequence[Environment],
    *,
    newest: bool,
    report: DependencyReport,
) -> tuple[list[Entry], set[str]]:
    """The files the kept ones depend on, transitively, that the refusing rules let in, and
    the projects they need that the pool has not read. The entries taken are marked kept and
    told to `report` with the project that first needed them. Called again once the caller
    has read the missing projects and the taken files' core metadata, it goes on from there:
    a file whose requirements are unknown is taken, not followed."""
    taken: list[Entry] = []
    missing: set[str] = set()
    done: set[tuple[str, str, frozenset[str]]] = set()
    queue = list(pool.kept())
    while queue:
        entry = queue.pop()
        record = entry.record
        if not record.dependencies_known:
            continue
        extras = frozenset(pool.extras.get(record.project, ()))
        for requirement in requirements_of(record, envs, extras):
            project = project_of(requirement)
            if project not in pool.read:
                missing.add(project)
                continue
            wanted = frozenset(canonicalize_name(extra) for extra in requirement.extras)
            key = (project, str(requirement.specifier), wanted)
            if key in done:
                continue
            done.add(key)
            asked = pool.extras.setdefault(project, set())
            if not wanted <= asked:
                asked |= wanted
                queue.extend(e for e in pool.projects.get(project, ()) if e.exclusion is None)
            for chosen in _choose(pool.projects.get(project, ()), requirement, refusals, newest):
                chosen.exclusion = None
                chosen.dependency_of = record.project
                report.take(project, chosen.record.filename, record.project)
                taken.append(chosen)
                queue.append(chosen)
    return taken, missing


def _choose(
    entries: Sequence[Entry], requirement: Requirement, refusals: Judge, newest: bool
) -> list[Entry]:
    allowed = [e for e in entries if e.exclusion is None or refusals(e.record) is None]
    versions = _versions(allowed)
    chosen = satisfying(requirement.specifier, versions.items())
    if newest:
        chosen = chosen[:1]
    wanted = set(chosen)
    return [e for e in allowed if e.exclusion is not None and e.record.version in wanted]


def _versions(entries: Iterable[Entry]) -> dict[str, bool]:
    """version → whether every file of it is yanked."""
    yanked: dict[str, bool] = {}
    for entry in entries:
        version = entry.record.version
        yanked[version] = yanked.get(version, True) and entry.record.yanked is not None
    return yanked


Elsewhere = Callable[[str], Sequence[tuple[str, bool]]]  # project → (version, yanked) offered


def check_revision(
    records: Sequence[PythonRecord],
    pool: Pool,
    envs: Sequence[Environment],
    report: DependencyReport,
    *,
    elsewhere: Elsewhere = lambda project: (),
) -> None:
    """Every file of the revision whose requirement (counting somewhere) nothing there, nor
    `elsewhere` (the indexes available beside it), satisfies becomes a finding, with the
    filters of the run's `pool` that removed what would have."""
    by_project: dict[str, dict[str, bool]] = {}
    for record in records:
        versions = by_project.setdefault(record.project, {})
        versions[record.version] = versions.get(record.version, True) and record.yanked is not None
    asked = _asked_extras(records, envs)
    answers: dict[tuple[str, str], bool] = {}
    blamed: dict[tuple[str, str], tuple[Cause, ...]] = {}
    for record in records:
        if not record.dependencies_known:
            continue
        extras = frozenset(asked.get(record.project, ()))
        for requirement in requirements_of(record, envs, extras):
            project = project_of(requirement)
            key = (project, str(requirement.specifier))
            if key not in answers:
                answers[key] = bool(
                    satisfying(requirement.specifier, by_project.get(project, {}).items())
                    or satisfying(requirement.specifier, elsewhere(project))
                )
            if not answers[key]:
                if key not in blamed:
                    blamed[key] = pool.causes(requirement)
                report.findings.append(
                    Finding(
                        record.project,
                        record.filename,
                        shortened(str(requirement)),
                        shortened(project),
                        blamed[key],
                    )
                )
    report.checked = True


def _asked_extras(
    records: Sequence[PythonRecord], envs: Sequence[Environment]
) -> dict[str, set[str]]:
    asked: dict[str, set[str]] = {}
    for record in records:
        if not record.dependencies_known:
            continue
        for requirement in requirements_of(record, envs):
            if requirement.extras:
                asked.setdefault(project_of(requirement), set()).update(
                    canonicalize_name(extra) for extra in requirement.extras
                )
    return asked
