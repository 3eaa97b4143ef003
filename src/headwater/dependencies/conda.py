"""Conda dependencies: the closure a mirror takes, and the check that every kept record's
`depends` is satisfiable in a revision.

A record of a platform subdir finds its dependencies in that subdir and noarch; a noarch
record in noarch and every platform subdir of the run (or revision). Virtual packages
(`__glibc`, `__cuda`, ...) are the client machine's, not upstream packages. A record's
`constrains` do not pull packages in; they narrow which versions of a dependency of the same
name it may take.

Specs are matched with the filters' compiled MatchSpecs (filters/conda_specs.py, checked
against rattler's own matching), each distinct spec once per subdir group, each version string
parsed once: half a million records are checked in seconds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgspec
import rattler

from headwater.dependencies.report import Cause, DependencyReport, Finding, shortened
from headwater.filters.conda_specs import CondaSpec, SpecError, parse_conda_spec
from headwater.filters.rules import Exclusion
from headwater.formats.conda import conda_version
from headwater.formats.conda.repodata import CondaRecord

NOARCH = "noarch"
Judge = Callable[[CondaRecord, str], Exclusion | None]


class _Relations(msgspec.Struct, gc=False):
    depends: list[str] = []
    constrains: list[str] = []


class _AnyRelations(msgspec.Struct, gc=False):
    # Upstream's own bytes: anything but a list of strings is read as no dependency.
    depends: Any = []
    constrains: Any = []


_relations = msgspec.json.Decoder(_Relations)
_any_relations = msgspec.json.Decoder(_AnyRelations)


def strings(value: Any) -> list[str]:
    """The strings of a `depends` or `constrains` value, whatever an upstream put there."""
    return [item for item in value if type(item) is str] if type(value) is list else []


def relations(record: CondaRecord) -> tuple[list[str], list[str]]:
    """A record's `depends` and `constrains`."""
    return relations_of(record.raw)


def relations_of(raw: bytes) -> tuple[list[str], list[str]]:
    try:
        found = _relations.decode(raw)
        return found.depends, found.constrains
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return [], []
    lenient = _any_relations.decode(raw)
    return strings(lenient.depends), strings(lenient.constrains)


@lru_cache(maxsize=262_144)
def dependency_spec(text: str) -> CondaSpec | None:
    """A `depends` entry as a compiled spec; None for a virtual package or one that does not
    parse (reported as unsatisfiable by name only when it names a package)."""
    if text.startswith("__"):
        return None
    simple = _SIMPLE.fullmatch(text)
    if simple is not None and not ("==" in text and "*" in text):
        name, version, build = simple.groups()
        compiled = _version_spec(version) if version else None
        if version is None or compiled is not None:
            return CondaSpec(
                text=text,
                name=name.lower(),
                name_is_glob=False,
                version=compiled,
                build=build,
                build_number=None,
                subdir=None,
            )
    try:
        return parse_conda_spec(text)
    except SpecError:
        return None


# `name`, `name version` or `name version build`, as nearly every `depends` entry is: compiled
# without MatchSpec's parser (a fifth of the check's time at conda-forge size), its version
# spec shared by every name that states it. tests/unit/test_dependencies_conda.py checks that it
# agrees with parse_conda_spec on every entry of the real conda-forge sample.
_SIMPLE = re.compile(r"([A-Za-z0-9_.\-]+)(?: ([^\s\[\]:/]+))?(?: ([^\s\[\]:/]+))?")


@lru_cache(maxsize=65_536)
def _version_spec(text: str) -> rattler.VersionSpec | None:
    try:
        return rattler.VersionSpec(text)
    except Exception:
        return None


def spec_name(text: str) -> str:
    return text.split(" ", 1)[0].split("[", 1)[0].strip()


# The virtual packages that limit a noarch record to some operating systems (conda-forge's
# `__win` / `__unix` variants), and the subdir prefixes of those systems.
_SYSTEMS = {
    "__win": ("win-",),
    "__unix": ("linux-", "osx-", "freebsd-", "emscripten-", "wasi-", "zos-"),
    "__linux": ("linux-",),
    "__osx": ("osx-",),
}


def systems(depends: Sequence[str]) -> tuple[str, ...] | None:
    """The subdir prefixes a record may be installed on, when its depends name a system's
    virtual package; None when they name none."""
    found: tuple[str, ...] | None = None
    for text in depends:
        if type(text) is str and text.startswith("__"):
            prefixes = _SYSTEMS.get(spec_name(text))
            if prefixes is not None:
                found = prefixes if found is None else tuple(p for p in found if p in prefixes)
    return found


def groups(
    subdir: str, platforms: Sequence[str], only: tuple[str, ...] | None = None
) -> list[tuple[str, ...]]:
    """Where a record of `subdir` finds its dependencies: its own subdir and noarch; a noarch
    record, noarch with each platform (those of the systems `only` names, when it names some;
    noarch alone when there is no such platform)."""
    if subdir != NOARCH:
        return [(subdir, NOARCH)]
    if only is not None:
        platforms = [platform for platform in platforms if platform.startswith(only)]
    return [(platform, NOARCH) for platform in platforms] or [(NOARCH,)]


@dataclass(slots=True)
class Entry:
    """One upstream record as the closure sees it."""

    subdir: str
    record: CondaRecord
    exclusion: Exclusion | None  # None: kept
    dependency_of: str | None = None  # taken because this package depends on it


@dataclass
class Pool:
    """Every record a run read from upstream, by subdir and name, with its judgement.
    `refusals` judges by the refusing rules alone: what a missing dependency is blamed on when
    the first rule that dropped it only names what is wanted."""

    by_subdir: dict[str, dict[str, list[Entry]]] = field(default_factory=dict)
    refusals: Judge | None = None
    read: set[str] = field(default_factory=set)  # the subdirs read (kept records or not)
    # The blame the last report gave, for dependencies looked for in subdirs this run did not
    # read again (upstream unchanged): dependency name → causes.
    previous_blame: dict[str, tuple[Cause, ...]] = field(default_factory=dict)

    def add(self, subdir: str, record: CondaRecord, exclusion: Exclusion | None) -> None:
        self.read.add(subdir)
        names = self.by_subdir.setdefault(subdir, {})
        names.setdefault(record.name, []).append(Entry(subdir, record, exclusion))

    @property
    def platforms(self) -> list[str]:
        return sorted(subdir for subdir in self.read if subdir != NOARCH)

    def entries(self, group: Iterable[str], name: str) -> Iterator[Entry]:
        for subdir in group:
            yield from self.by_subdir.get(subdir, {}).get(name, ())

    def excluded(self) -> Counter[str]:
        """How many records each reason leaves out."""
        counts: Counter[str] = Counter()
        for names in self.by_subdir.values():
            for entries in names.values():
                for entry in entries:
                    if entry.exclusion is not None:
                        counts[entry.exclusion.reason] += 1
        return counts

    def kept(self) -> Iterator[Entry]:
        for names in self.by_subdir.values():
            for entries in names.values():
                yield from (entry for entry in entries if entry.exclusion is None)

    def causes(self, group: Iterable[str], spec: CondaSpec) -> tuple[Cause, ...]:
        """Why the records upstream has for `spec` are not in the channel: the filters that
        removed them, each once (a refusing rule before one that names what is wanted);
        empty when upstream has none."""
        if not any(subdir in self.read for subdir in group):
            return self.previous_blame.get(spec.name, ())
        found = set()
        for entry in self.entries(group, spec.name):
            if entry.exclusion is not None and _matches(spec, entry.subdir, entry.record):
                found.add(Cause.of(self._blamed(entry)))
        return tuple(sorted(found))

    def _blamed(self, entry: Entry) -> Exclusion:
        assert entry.exclusion is not None
        if entry.exclusion.hard or self.refusals is None:
            return entry.exclusion
        return self.refusals(entry.record, entry.subdir) or entry.exclusion


def _matches(spec: CondaSpec, subdir: str, record: CondaRecord) -> bool:
    return spec.matches(record.name, record.version, record.build, record.build_number, subdir)


def _newest_first(entry: Entry) -> tuple[object, int, int]:
    record = entry.record
    return (
        conda_version(record.version) or conda_version("0"),
        record.build_number,
        record.timestamp or 0,
    )


def take_dependencies(
    pool: Pool, refusals: Judge, *, newest: bool, report: DependencyReport
) -> list[Entry]:
    """The records the kept ones depend on, transitively, that the refusing rules let in:
    every version that satisfies each spec, or (`newest`) only the newest. The entries taken
    are marked kept in the pool and returned; each is told to `report` with the package that
    first needed it."""
    taken: list[Entry] = []
    queue = list(pool.kept())
    platforms = pool.platforms
    done: set[tuple[str, str | None, tuple[str, ...]]] = set()
    while queue:
        entry = queue.pop()
        depends, constrains = relations(entry.record)
        limits = {spec_name(text): text for text in constrains}
        only = systems(depends) if entry.subdir == NOARCH else None
        for text in depends:
            spec = dependency_spec(text)
            if spec is None:
                continue
            limit = dependency_spec(limits[spec.name]) if spec.name in limits else None
            for group in groups(entry.subdir, platforms, only):
                key = (text, limit.text if limit else None, group)
                if key in done:
                    continue
                done.add(key)
                for chosen in _choose(pool, group, spec, limit, refusals, newest):
                    chosen.exclusion = None
                    chosen.dependency_of = entry.record.name
                    report.take(chosen.subdir, chosen.record.filename, entry.record.name)
                    taken.append(chosen)
                    queue.append(chosen)
    return taken


def _choose(
    pool: Pool,
    group: tuple[str, ...],
    spec: CondaSpec,
    limit: CondaSpec | None,
    refusals: Judge,
    newest: bool,
) -> list[Entry]:
    matching = [
        entry
        for entry in pool.entries(group, spec.name)
        if _matches(spec, entry.subdir, entry.record)
        and (limit is None or _matches(limit, entry.subdir, entry.record))
        and (entry.exclusion is None or refusals(entry.record, entry.subdir) is None)
    ]
    if newest and matching:
        best = max(matching, key=_newest_first)
        return [best] if best.exclusion is not None else []
    return [entry for entry in matching if entry.exclusion is not None]


class _Listed(msgspec.Struct, gc=False):
    name: str
    version: str
    build: str = ""
    build_number: int = 0
    depends: Any = []  # checked by `strings` where read


class _Listing(msgspec.Struct):
    packages: dict[str, _Listed] | None = None
    packages_conda: dict[str, _Listed] | None = msgspec.field(default=None, name="packages.conda")


_listing = msgspec.json.Decoder(_Listing)


@dataclass
class SubdirIndex:
    """What one subdir of a channel offers: name → version → builds, and (to check them) its
    records' depends: a decoded list, or the record's JSON, decoded when checked. Each distinct
    spec is answered once."""

    subdir: str
    names: dict[str, dict[str, list[tuple[str, int]]]] = field(default_factory=dict)
    records: list[tuple[str, Any]] = field(default_factory=list)  # (filename, depends or raw)
    _answers: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def of_repodata(cls, subdir: str, content: bytes, *, keep_records: bool) -> SubdirIndex:
        listing = _listing.decode(content)
        index = cls(subdir)
        for section in (listing.packages, listing.packages_conda):
            for filename, record in (section or {}).items():
                index.offer(record.name, record.version, record.build, record.build_number)
                if keep_records:
                    index.records.append((filename, record.depends))
        return index

    def offer(self, name: str, version: str, build: str, build_number: int) -> None:
        versions = self.names.setdefault(name, {})
        versions.setdefault(version, []).append((build, build_number))

    def add(self, record: CondaRecord) -> None:
        """A record as a run holds it (its depends read from its JSON when checked)."""
        self.offer(record.name, record.version, record.build, record.build_number)
        self.records.append((record.filename, record.raw))

    def depends(self, held: Any) -> list[Any]:
        """A record's depends; items that are not strings are left for the reader to skip."""
        if type(held) is list:
            return held
        return relations_of(held)[0] if isinstance(held, bytes) else []

    def provides(self, spec: CondaSpec) -> bool:
        answer = self._answers.get(spec.text)
        if answer is None:
            answer = self._answers[spec.text] = self._provides(spec)
        return answer

    def _provides(self, spec: CondaSpec) -> bool:
        if spec.name_is_glob:
            return any(
                spec.matches_name(name) and self._any_version(spec, name, versions)
                for name, versions in self.names.items()
            )
        versions = self.names.get(spec.name)
        return versions is not None and self._any_version(spec, spec.name, versions)

    def _any_version(
        self, spec: CondaSpec, name: str, versions: dict[str, list[tuple[str, int]]]
    ) -> bool:
        for version, builds in versions.items():
            for build, build_number in builds:
                if spec.matches(name, version, build, build_number, self.subdir):
                    return True
                if spec.build is None and spec.build_number is None:
                    break  # the version decided it for every build
        return False


Lookup = Callable[[str], Sequence[SubdirIndex]]  # subdir → what other channels offer there


def check_revision(
    revision: dict[str, SubdirIndex],
    pool: Pool,
    report: DependencyReport,
    *,
    elsewhere: Lookup = lambda subdir: (),
) -> None:
    """Every record of the revision whose dependency nothing there (or `elsewhere`, the
    channels available beside it) satisfies becomes a finding, with the filters of the run's
    `pool` that removed what would have."""
    platforms = sorted(subdir for subdir in revision if subdir != NOARCH)
    # (subdir, dependency text) → (name, causes) when unsatisfied, None when satisfied: a
    # dependency stated by thousands of records is answered once.
    verdicts: dict[tuple[str, tuple[str, ...] | None, str], Verdict | None]
    verdicts = {}
    for subdir, index in sorted(revision.items()):
        for filename, held in index.records:
            depends = index.depends(held)
            only = systems(depends) if subdir == NOARCH else None
            for text in depends:
                if type(text) is not str:
                    continue
                key = (subdir, only, text)
                if key in verdicts:
                    verdict = verdicts[key]
                else:
                    verdict = verdicts[key] = _check(
                        revision, pool, groups(subdir, platforms, only), text, elsewhere
                    )
                if verdict is not None:
                    shown, name, causes = verdict
                    report.findings.append(Finding(subdir, filename, shown, name, causes))
    report.checked = True
    forget_specs()


def forget_specs() -> None:
    """Let go of the specs compiled for a check (a channel-sized one compiles a hundred
    thousand, which would otherwise live on in the worker, walked by every collection)."""
    dependency_spec.cache_clear()
    _version_spec.cache_clear()


Verdict = tuple[str, str, tuple[Cause, ...]]  # the spec as shown, the name, the causes


def _check(
    revision: dict[str, SubdirIndex],
    pool: Pool,
    where: list[tuple[str, ...]],
    text: str,
    elsewhere: Lookup,
) -> Verdict | None:
    """What a finding says when nothing satisfies `text` in one of the subdir groups it is
    looked for `where`."""
    spec = dependency_spec(text)
    if spec is None:
        if text.startswith("__"):
            return None
        return shortened(text), shortened(spec_name(text)), ()
    for group in where:
        if not _satisfied(revision, group, spec, elsewhere):
            return shortened(text), spec.name, pool.causes(group, spec)
    return None


def _satisfied(
    revision: dict[str, SubdirIndex], group: tuple[str, ...], spec: CondaSpec, elsewhere: Lookup
) -> bool:
    for subdir in group:
        index = revision.get(subdir)
        if index is not None and index.provides(spec):
            return True
    return any(index.provides(spec) for subdir in group for index in elsewhere(subdir))
