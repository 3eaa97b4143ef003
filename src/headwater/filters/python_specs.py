"""PEP 508 requirements as filter rules for PyPI mirrors: a project name and a version range."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


class RequirementError(ValueError):
    pass


@dataclass(frozen=True)
class PythonSpec:
    text: str
    project: str  # PEP 503 normalized
    specifier: SpecifierSet

    def matches(self, project: str, version: Version | None) -> bool:
        if project != self.project:
            return False
        if not self.specifier:
            return True
        # A spec names versions; whether pre-releases are wanted is a rule of its own.
        return version is not None and self.specifier.contains(version, prereleases=True)


def parse_python_spec(text: str) -> PythonSpec:
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        raise RequirementError(f"{text!r} is not a valid PEP 508 requirement: {error}") from None
    if requirement.url or requirement.marker or requirement.extras:
        raise RequirementError(
            f"{text!r}: a filter spec names a project and versions, not a URL, markers or extras"
        )
    return PythonSpec(text, canonicalize_name(requirement.name), requirement.specifier)


def parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
