"""Conda MatchSpecs as filter rules: parsed by py-rattler, matched fast against many records.

rattler's own `MatchSpec.matches` needs a rattler record per file, which costs more to build
than the whole filter pass may take at conda-forge size; so the spec is parsed by rattler and
its parts (name, version, build, build number, subdir) are matched here, with versions parsed
once per distinct string. tests/unit/test_filters_conda_specs.py checks the result against
rattler's `matches` on real repodata.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase

import rattler

from headwater.formats.conda import conda_version

_BRACKET_KEYS = re.compile(r"(\w+)\s*=")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_SUPPORTED_KEYS = {"version", "build", "build_number", "subdir"}
_BUILD_NUMBER = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)?\s*(\d+)\s*$")
_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "!=": operator.ne,
    "==": operator.eq,
    "=": operator.eq,
    "": operator.eq,
}


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class CondaSpec:
    """One MatchSpec, compiled for matching records by their fields."""

    text: str
    name: str
    name_is_glob: bool
    version: rattler.VersionSpec | None
    build: str | None
    build_number: Callable[[int], bool] | None
    subdir: str | None

    def matches_name(self, name: str) -> bool:
        return fnmatchcase(name, self.name) if self.name_is_glob else name == self.name

    def matches(self, name: str, version: str, build: str, build_number: int, subdir: str) -> bool:
        if not self.matches_name(name):
            return False
        if self.subdir is not None and subdir != self.subdir:
            return False
        if self.build is not None and not fnmatchcase(build, self.build):
            return False
        if self.build_number is not None and not self.build_number(build_number):
            return False
        if self.version is not None:
            parsed = conda_version(version)
            return parsed is not None and bool(self.version.matches(parsed))
        return True


def parse_conda_spec(text: str) -> CondaSpec:
    """A compiled spec, or SpecError with rattler's reason (or ours) in its message."""
    if "::" not in text and "/" in text.partition("[")[0]:
        raise SpecError(f"{text!r}: a filter spec names packages, not a URL or path to one file")
    try:
        spec = rattler.MatchSpec(text, exact_names_only=False)
    except Exception as error:
        raise SpecError(f"{text!r} is not a valid conda MatchSpec: {error}") from None
    brackets = _QUOTED.sub("", text.partition("[")[2])
    unsupported = [key for key in _BRACKET_KEYS.findall(brackets) if key not in _SUPPORTED_KEYS]
    if spec.channel is not None or "::" in text:
        unsupported.append("channel")
    if unsupported:
        raise SpecError(
            f"{text!r}: a filter spec may name a package, version, build, build_number and "
            f"subdir, not {', '.join(sorted(set(unsupported)))}"
        )
    name = str(spec.name.normalized).lower()
    return CondaSpec(
        text=text,
        name=name,
        name_is_glob=any(character in name for character in "*?["),
        version=rattler.VersionSpec(spec.version) if spec.version else None,
        build=spec.build,
        build_number=_build_number(text, spec.build_number),
        subdir=spec.subdir,
    )


def _build_number(text: str, value: str | None) -> Callable[[int], bool] | None:
    if value is None:
        return None
    match = _BUILD_NUMBER.match(str(value))
    if match is None:
        raise SpecError(f"{text!r}: build_number {value!r} is not a comparison with a number")
    compare, number = _OPERATORS[match.group(1) or ""], int(match.group(2))
    return lambda build_number: compare(build_number, number)
