"""A channel's dependency settings, validated on the way in: `must_install` (specs each
optionally for one platform), `also_available` (channel URLs clients use beside this one) and
`on_unsolvable`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rattler
from packaging.requirements import InvalidRequirement, Requirement

from headwater.errors import InvalidInputError
from headwater.filters import MAX_SPEC_LENGTH
from headwater.filters.conda_specs import SpecError, parse_conda_spec
from headwater.formats.conda import KNOWN_SUBDIRS
from headwater.inputs import has_control_characters

MAX_MUST_INSTALL = 100
MAX_ALSO_AVAILABLE = 10
PLATFORMS = tuple(sorted(subdir for subdir in KNOWN_SUBDIRS if subdir != "noarch"))


@dataclass(frozen=True)
class MustInstallSpec:
    """One spec the real solver must satisfy against every new revision: a conda MatchSpec or
    a PEP 508 requirement (which applies depends on the mirror's type), on one platform or, with
    `platform` None, on every platform the revision holds."""

    spec: str
    platform: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "platform": self.platform}

    @property
    def is_conda(self) -> bool:
        return _conda_problem(self.spec) is None

    @property
    def is_python(self) -> bool:
        return _python_problem(self.spec) is None


def _conda_problem(spec: str) -> str | None:
    """Why the solver could not take `spec` as a conda MatchSpec (the filters' parser allows
    name globs, which a solver does not)."""
    try:
        parse_conda_spec(spec)
        rattler.MatchSpec(spec)
    except SpecError as error:
        return str(error)
    except Exception as error:  # rattler's own refusal
        return f"{spec[:60]!r} is not a MatchSpec the solver takes: {str(error)[:200]}"
    return None


def _python_problem(spec: str) -> str | None:
    """Why `spec` is not a PEP 508 requirement a resolver can take from an index (extras and
    markers allowed; a direct URL is not: the channel is the only index)."""
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as error:
        return str(error).splitlines()[0][:200]
    if requirement.url:
        return f"{spec[:60]!r} names a URL; must_install takes what the channel holds"
    return None


def parse_must_install(value: Any) -> list[MustInstallSpec] | None:
    """`["python 3.9.*", {"spec": "numpy", "platform": "linux-64"}]` as specs; None clears."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInputError("must_install must be a list of specs")
    if len(value) > MAX_MUST_INSTALL:
        raise InvalidInputError(f"must_install holds at most {MAX_MUST_INSTALL} specs")
    specs = [_one_spec(item, position) for position, item in enumerate(value, 1)]
    return list(dict.fromkeys(specs)) or None


def _one_spec(item: Any, position: int) -> MustInstallSpec:
    where = f"must_install entry {position}"
    if isinstance(item, str):
        item = {"spec": item}
    if not isinstance(item, dict) or set(item) - {"spec", "platform"} or "spec" not in item:
        raise InvalidInputError(
            f"{where} must be a spec, or an object with 'spec' and an optional 'platform'"
        )
    spec, platform = item["spec"], item.get("platform")
    if (
        not isinstance(spec, str)
        or not spec.strip()
        or len(spec) > MAX_SPEC_LENGTH
        or has_control_characters(spec)
    ):
        raise InvalidInputError(
            f"{where}: the spec must be text of at most {MAX_SPEC_LENGTH} characters without "
            "control characters"
        )
    spec = spec.strip()
    conda, python = _conda_problem(spec), _python_problem(spec)
    if conda and python:
        raise InvalidInputError(
            f"{where} is neither a conda MatchSpec ({conda}) nor a PEP 508 requirement ({python})"
        )
    if platform is not None and platform not in PLATFORMS:
        raise InvalidInputError(
            f"{where}: unknown platform {str(platform)[:40]!r}; platforms are "
            f"{', '.join(PLATFORMS)}"
        )
    return MustInstallSpec(spec, platform)


def stored_must_install(value: list[dict[str, Any]] | None) -> list[MustInstallSpec]:
    """The specs as the channel row stores them (validated when they were saved)."""
    return [MustInstallSpec(item["spec"], item.get("platform")) for item in value or ()]


def by_platform(
    specs: Sequence[MustInstallSpec], platforms: Sequence[str], *, conda: bool
) -> tuple[list[tuple[str, list[str]]], list[MustInstallSpec]]:
    """The environments to solve: the specs of one kind (conda MatchSpecs, or PEP 508) per
    platform, a spec without one on every platform of `platforms`; and the specs of the other
    kind, which a mirror of this kind leaves aside."""
    environments: dict[str, list[str]] = {}
    aside = []
    for spec in specs:
        if not (spec.is_conda if conda else spec.is_python):
            aside.append(spec)
            continue
        for platform in [spec.platform] if spec.platform else platforms:
            environments.setdefault(platform, []).append(spec.spec)
    return sorted(environments.items()), aside
