"""Judging PyPI files against filter sets: the conda rules' order and reasons, in PEP 508 terms.

Inside a set: projects and subdir (wheel platforms, see formats/pypi/filenames.py), spec (PEP
508 `only_specs`/`exclude_specs`, and pre-releases unless `include_prereleases`), license (from
core metadata), date (upload time), CVE. `include_specs` let a file past `exclude_specs`, the
pre-release rule and the license rules. Then `keep_latest`: of the files that passed, those of
each project's N highest versions not yanked stay, and the rest leave. A file the
channel's set drops has the reason "channel filter".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import Version

from headwater.filters import FilterSet
from headwater.filters.python_licenses import distribution_license_families
from headwater.filters.python_specs import PythonSpec, parse_python_spec, parse_version
from headwater.filters.rules import (
    CveLookup,
    DateWindow,
    Exclusion,
    cve_exclusion,
    license_exclusion,
)
from headwater.formats.pypi.records import PythonRecord


def record_license_families(record: PythonRecord) -> frozenset[str]:
    if not record.metadata_known:
        return frozenset({"none"})
    return distribution_license_families(
        record.license, record.license_expression, record.classifiers
    )


def _python_specs(texts: tuple[str, ...] | None) -> tuple[PythonSpec, ...] | None:
    """The specs that are PEP 508 requirements; a channel's conda-only specs do not apply."""
    if not texts:
        return None
    specs = []
    for text in texts:
        try:
            specs.append(parse_python_spec(text))
        except ValueError:
            continue
    return tuple(specs) or None


@dataclass
class _Versions:
    cache: dict[str, Version | None]

    def of(self, text: str) -> Version | None:
        if text not in self.cache:
            self.cache[text] = parse_version(text)
        return self.cache[text]


class PythonRuleSet:
    def __init__(
        self, filters: FilterSet, cve: CveLookup | None = None, *, prereleases: bool = False
    ) -> None:
        self.filters = filters
        self.prereleases = prereleases  # whether this set lets pre-releases in
        self.projects = frozenset(filters.projects or ()) or None
        self.only = _python_specs(filters.only_specs)
        self.include = _python_specs(filters.include_specs)
        self.exclude = _python_specs(filters.exclude_specs)
        self.include_licenses = frozenset(filters.include_licenses or ())
        self.exclude_licenses = frozenset(filters.exclude_licenses or ())
        self.dates = DateWindow(filters, "uploaded")
        self.cve = cve if filters.has_cve_rules else None
        self.versions = _Versions({})

    def _included(self, record: PythonRecord, version: Version | None) -> bool:
        return self.include is not None and any(
            s.matches(record.project, version) for s in self.include
        )

    def judge(self, record: PythonRecord) -> Exclusion | None:
        filters = self.filters
        if self.projects is not None and record.project not in self.projects:
            return Exclusion(
                "spec", f"project {record.project} is not in projects", "projects", record.project
            )
        if filters.subdirs is not None and record.platforms.isdisjoint(filters.subdirs):
            platforms = ", ".join(sorted(record.platforms)) or "no conda platform"
            return Exclusion(
                "subdir", f"built for {platforms}, not in subdirs", "subdirs", platforms
            )
        version = self.versions.of(record.version)
        if self.only is not None and not any(s.matches(record.project, version) for s in self.only):
            return Exclusion("spec", "matches none of only_specs", "only_specs")
        if self.exclude is not None:
            spec = next((s for s in self.exclude if s.matches(record.project, version)), None)
            if spec is not None and not self._included(record, version):
                return Exclusion(
                    "spec", f"matches exclude_specs {spec.text!r}", "exclude_specs", spec.text
                )
        unreleased = version is None or version.is_prerelease
        if unreleased and not self.prereleases and not self._included(record, version):
            what = "a pre-release" if version is not None else "not a PEP 440 version"
            return Exclusion(
                "spec",
                f"{record.version} is {what} (include_prereleases is off)",
                "include_prereleases",
                "false",
            )
        if self.include_licenses or self.exclude_licenses:
            exclusion = self._judge_license(record)
            if exclusion is not None and not self._included(record, version):
                return exclusion
        if self.dates.active:
            exclusion = self.dates.judge(record.timestamp)
            if exclusion is not None:
                return exclusion
        if self.cve is not None:
            return cve_exclusion(self.filters, self.cve(record))  # type: ignore[arg-type]
        return None

    def _judge_license(self, record: PythonRecord) -> Exclusion | None:
        families = record_license_families(record)
        return license_exclusion(
            _named(record, families), families, self.include_licenses, self.exclude_licenses
        )


def _named(record: PythonRecord, families: frozenset[str]) -> str:
    if not record.metadata_known:
        return "license unknown (no core metadata) (none)"
    shown = record.license_expression or record.license or "from classifiers"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"license {shown!r} ({', '.join(sorted(families))})"


class PythonMirrorRules:
    """The mirror's set, then the channel's, then keep-latest over what passed both."""

    def __init__(self, mirror: FilterSet, channel: FilterSet, cve: CveLookup | None = None) -> None:
        # Pre-releases stay out unless asked for: by the mirror, or, where the mirror is silent,
        # by the channel. The channel's own set drops them only when it says false outright.
        wanted = mirror.include_prereleases
        if wanted is None:
            wanted = bool(channel.include_prereleases)
        self.mirror = PythonRuleSet(mirror, cve, prereleases=wanted)
        self.channel = PythonRuleSet(
            channel, cve, prereleases=channel.include_prereleases is not False
        )
        latest = [
            (n, s)
            for n, s in ((mirror.keep_latest, "spec"), (channel.keep_latest, "channel filter"))
            if n
        ]
        self.keep_latest = min(latest) if latest else None
        self.cve = cve

    def refusals(self) -> PythonMirrorRules:
        """The rules a dependency of a kept file must still pass (FilterSet.refusals): no
        projects, only_specs, dates, keep_latest or pre-release rule."""
        return PythonMirrorRules(
            self.mirror.filters.refusals(), self.channel.filters.refusals(), self.cve
        )

    def judge(self, record: PythonRecord) -> Exclusion | None:
        exclusion = self.mirror.judge(record)
        if exclusion is not None:
            return exclusion
        exclusion = self.channel.judge(record)
        if exclusion is not None:
            return exclusion.by_channel()
        return None

    def judge_all(
        self, records: Sequence[PythonRecord]
    ) -> list[tuple[PythonRecord, Exclusion | None]]:
        judged = [(record, self.judge(record)) for record in records]
        if self.keep_latest is None:
            return judged
        count, reason = self.keep_latest
        kept_versions = self._latest_versions([r for r, e in judged if e is None], count)
        prefix = "channel filter: " if reason == "channel filter" else ""
        result = []
        for record, exclusion in judged:
            if exclusion is None and record.version not in kept_versions[record.project]:
                exclusion = Exclusion(
                    reason,
                    f"{prefix}not among the {count} latest versions of {record.project}",
                    "keep_latest",
                    str(count),
                    "channel" if prefix else "mirror",
                )
            result.append((record, exclusion))
        return result

    def _latest_versions(self, records: list[PythonRecord], count: int) -> dict[str, set[str]]:
        versions: dict[str, set[str]] = defaultdict(set)
        yanked: Counter[tuple[str, str]] = Counter()
        files: Counter[tuple[str, str]] = Counter()
        for record in records:
            versions[record.project].add(record.version)
            files[(record.project, record.version)] += 1
            if record.yanked is not None:
                yanked[(record.project, record.version)] += 1
        latest: dict[str, set[str]] = defaultdict(set)
        for project, texts in versions.items():
            # A version counts when it parses and not all of its files are yanked.
            ranked = sorted(
                (
                    v
                    for t in texts
                    if (v := parse_version(t)) is not None
                    and yanked[(project, t)] < files[(project, t)]
                ),
                reverse=True,
            )[:count]
            wanted = {str(v) for v in ranked}
            latest[project] = {
                t for t in texts if (v := parse_version(t)) is not None and str(v) in wanted
            }
        return latest
