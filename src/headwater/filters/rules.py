"""Judging upstream records against filter sets, with the one reason a record is left out.

Inside a set the rules run in this order, and the first that drops a record is its reason:
subdir, spec, license, date, cve. `include_specs` is the explicit exception: a record it
matches passes `exclude_specs` and the license rules, never the subdir, date or CVE rules.
A record enters a channel only if it passes the mirror's set and the channel's; a record the
channel's set drops has the reason "channel filter".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from headwater.filters import FilterSet
from headwater.filters.conda_specs import CondaSpec, SpecError, parse_conda_spec
from headwater.filters.licenses import license_families

REASONS = ("subdir", "spec", "license", "date", "cve", "channel filter")
_DAY_MS = 86_400_000
_MAX_LICENSES = 100_000  # (license, license_family) judgements remembered per rule set


class JudgedRecord(Protocol):
    """What the rules read of a record."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def build(self) -> str: ...
    @property
    def build_number(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...  # milliseconds
    @property
    def license(self) -> str | None: ...
    @property
    def license_family(self) -> str | None: ...
    @property
    def sha256(self) -> str: ...


class Exclusion(NamedTuple):
    """Why a record is left out: the reason counted, the sentence shown, and the filter that
    said so (`level` mirror or channel, its `key` and the `value` that matched), which a
    dependency report names and the UI links to."""

    reason: str  # one of REASONS
    detail: str
    key: str = ""
    value: str = ""
    level: str = "mirror"

    def by_channel(self) -> Exclusion:
        return self._replace(
            reason="channel filter", detail=f"channel filter: {self.detail}", level="channel"
        )

    @property
    def hard(self) -> bool:
        """Whether taking the dependencies of kept files still obeys it (docs/concepts.md)."""
        return self.key in HARD_KEYS


# What keeps a file out even when a kept file depends on it; the rest (only_specs, projects,
# the date window, keep_latest, pre-releases) name what a mirror wants, not what it refuses.
HARD_KEYS = frozenset(
    {
        "subdirs",
        "exclude_specs",
        "include_licenses",
        "exclude_licenses",
        "cve_score_threshold",
        "exclude_non_curated_cve",
    }
)


@dataclass(frozen=True)
class CveStanding:
    """What the CVE database says of one file."""

    score: float | None
    has_reported: bool
    unscored: bool = False  # an unresolved match is of a CVE without a score


CveLookup = Callable[[JudgedRecord], CveStanding]


def _day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


class DateWindow:
    """`date_from`/`date_to` as a half-open window of milliseconds (both days inclusive, UTC)."""

    def __init__(self, filters: FilterSet, verb: str) -> None:
        self.filters = filters
        self.verb = verb  # "published" for conda, "uploaded" for PyPI
        self.start = _day_start_ms(filters.date_from) if filters.date_from else None
        self.end = _day_start_ms(filters.date_to) + _DAY_MS if filters.date_to else None
        self.active = self.start is not None or self.end is not None

        # The three exclusions it can make, made once: a conda-forge-sized run drops hundreds
        # of thousands of records by date.
        self._none = Exclusion("date", "no timestamp", "date_from" if self.start else "date_to")
        self._before = Exclusion(
            "date",
            f"{verb} before date_from {filters.date_from}",
            "date_from",
            str(filters.date_from),
        )
        self._after = Exclusion(
            "date", f"{verb} after date_to {filters.date_to}", "date_to", str(filters.date_to)
        )

    def judge(self, timestamp: int | None) -> Exclusion | None:
        if timestamp is None:
            return self._none
        if self.start is not None and timestamp < self.start:
            return self._before
        if self.end is not None and timestamp >= self.end:
            return self._after
        return None


def cve_exclusion(filters: FilterSet, standing: CveStanding) -> Exclusion | None:
    threshold = filters.cve_score_threshold
    if threshold is not None and standing.score is not None and standing.score > threshold:
        return Exclusion(
            "cve",
            f"CVE score {standing.score} is above {threshold}",
            "cve_score_threshold",
            str(threshold),
        )
    if threshold is not None and standing.unscored:
        counted = filters.cve_unscored_score
        if counted is None:
            return Exclusion(
                "cve",
                f"unscored CVE counted above cve_score_threshold {threshold}",
                "cve_score_threshold",
                str(threshold),
            )
        if counted > threshold:
            return Exclusion(
                "cve",
                f"unscored CVE counted as {counted} (cve_unscored_score), "
                f"above cve_score_threshold {threshold}",
                "cve_score_threshold",
                str(threshold),
            )
    if filters.exclude_non_curated_cve and standing.has_reported:
        return Exclusion(
            "cve", "has CVE matches nobody has curated yet", "exclude_non_curated_cve", "true"
        )
    return None


@dataclass
class _Specs:
    specs: tuple[CondaSpec, ...]
    _by_name: dict[str, tuple[CondaSpec, ...]] = field(default_factory=dict)

    def for_name(self, name: str) -> tuple[CondaSpec, ...]:
        """The specs that can match this package name (computed once per name)."""
        found = self._by_name.get(name)
        if found is None:
            found = tuple(spec for spec in self.specs if spec.matches_name(name))
            self._by_name[name] = found
        return found

    def first_match(self, record: JudgedRecord, subdir: str) -> CondaSpec | None:
        for spec in self.for_name(record.name):
            if spec.matches(record.name, record.version, record.build, record.build_number, subdir):
                return spec
        return None


def _specs(texts: tuple[str, ...] | None) -> _Specs | None:
    """The specs that are conda MatchSpecs: a channel's PEP 508-only specs are for its PyPI
    mirrors (a mirror's own specs were checked against its type when saved)."""
    specs = []
    for text in texts or ():
        try:
            specs.append(parse_conda_spec(text))
        except SpecError:
            continue
    return _Specs(tuple(specs)) if specs else None


class RuleSet:
    """One filter set compiled for judging many records quickly."""

    def __init__(self, filters: FilterSet, cve: CveLookup | None = None) -> None:
        self.filters = filters
        self.only = _specs(filters.only_specs)
        self.include = _specs(filters.include_specs)
        self.exclude = _specs(filters.exclude_specs)
        self.include_licenses = frozenset(filters.include_licenses or ())
        self.exclude_licenses = frozenset(filters.exclude_licenses or ())
        self.dates = DateWindow(filters, "published")
        self.cve = cve if filters.has_cve_rules else None
        self._licenses: dict[tuple[str | None, str | None], Exclusion | None] = {}

    def judge(self, record: JudgedRecord, subdir: str) -> Exclusion | None:
        filters = self.filters
        if filters.subdirs is not None and subdir not in filters.subdirs:
            return Exclusion("subdir", f"subdir {subdir} is not in subdirs", "subdirs", subdir)
        if self.only is not None and self.only.first_match(record, subdir) is None:
            return Exclusion("spec", "matches none of only_specs", "only_specs")
        # Whether include_specs let the record past the spec and license rules is only worth
        # asking once one of those rules would drop it.
        if self.exclude is not None:
            spec = self.exclude.first_match(record, subdir)
            if spec is not None and not self._included(record, subdir):
                return Exclusion(
                    "spec", f"matches exclude_specs {spec.text!r}", "exclude_specs", spec.text
                )
        if self.include_licenses or self.exclude_licenses:
            exclusion = self._judge_license(record)
            if exclusion is not None and not self._included(record, subdir):
                return exclusion
        if self.dates.active:
            exclusion = self.dates.judge(record.timestamp)
            if exclusion is not None:
                return exclusion
        if self.cve is not None:
            return cve_exclusion(self.filters, self.cve(record))
        return None

    def _included(self, record: JudgedRecord, subdir: str) -> bool:
        return self.include is not None and self.include.first_match(record, subdir) is not None

    def _judge_license(self, record: JudgedRecord) -> Exclusion | None:
        key = (record.license, record.license_family)
        if key in self._licenses:
            return self._licenses[key]
        families = license_families(record.license, record.license_family)
        judged = license_exclusion(
            _named(record, families), families, self.include_licenses, self.exclude_licenses
        )
        if len(self._licenses) < _MAX_LICENSES:  # distinct license strings: a few thousand
            self._licenses[key] = judged
        return judged


def license_exclusion(
    named: str,
    families: frozenset[str],
    include: frozenset[str],
    exclude: frozenset[str],
) -> Exclusion | None:
    """The license rules' judgement of a file whose license is in `families`."""
    if exclude and not families.isdisjoint(exclude):
        matched = ", ".join(sorted(families & exclude))
        return Exclusion("license", f"{named} is in exclude_licenses", "exclude_licenses", matched)
    if include and families.isdisjoint(include):
        return Exclusion(
            "license",
            f"{named} is not in include_licenses",
            "include_licenses",
            ", ".join(sorted(include)),
        )
    return None


def _named(record: JudgedRecord, families: frozenset[str]) -> str:
    return f"license {record.license!r} ({', '.join(sorted(families))})"


class MirrorRules:
    """The mirror's set, then the channel's: a record enters only if it passes both."""

    def __init__(self, mirror: FilterSet, channel: FilterSet, cve: CveLookup | None = None) -> None:
        self.mirror = RuleSet(mirror, cve)
        self.channel = RuleSet(channel, cve)
        self.cve = cve
        self._channel: dict[Exclusion, Exclusion] = {}  # the channel's exclusions, as reported

    def refusals(self) -> MirrorRules:
        """The rules a dependency of a kept file must still pass (FilterSet.refusals)."""
        return MirrorRules(
            self.mirror.filters.refusals(), self.channel.filters.refusals(), self.cve
        )

    def judge(self, record: JudgedRecord, subdir: str) -> Exclusion | None:
        exclusion = self.mirror.judge(record, subdir)
        if exclusion is not None:
            return exclusion
        exclusion = self.channel.judge(record, subdir)
        if exclusion is None:
            return None
        channel = self._channel.get(exclusion)
        if channel is None:
            channel = exclusion.by_channel()
            if len(self._channel) < _MAX_LICENSES:
                self._channel[exclusion] = channel
        return channel
