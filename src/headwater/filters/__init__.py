"""Filter sets: which upstream files a channel takes, validated on the way in and out.

The pure rules live beside this module: `licenses` (families of license strings),
`conda_specs` (MatchSpecs) and `rules` (judging a record, with the reason it is left out).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from packaging.utils import canonicalize_name
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from headwater.errors import InvalidFilterError
from headwater.filters.conda_specs import SpecError, parse_conda_spec
from headwater.filters.licenses import FAMILIES, LicenseFamily
from headwater.filters.python_specs import RequirementError, parse_python_spec
from headwater.formats.conda import KNOWN_SUBDIRS
from headwater.inputs import has_control_characters

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PROJECT = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]{0,98}[A-Z0-9]", re.IGNORECASE)
MAX_SPEC_LENGTH = 500
SPEC_KEYS = ("only_specs", "include_specs", "exclude_specs")
PYTHON_ONLY_KEYS = ("projects", "include_prereleases", "keep_latest")


def _conda_spec_error(spec: str) -> str | None:
    try:
        parse_conda_spec(spec)
    except SpecError as error:
        return str(error)
    return None


def _python_spec_error(spec: str) -> str | None:
    try:
        parse_python_spec(spec)
    except RequirementError as error:
        return str(error)
    return None


LICENSE_KEYS = ("include_licenses", "exclude_licenses")


class FilterSet(BaseModel):
    """The rules one channel or one mirror applies. An absent key means "no rule"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subdirs: tuple[str, ...] | None = None
    projects: tuple[str, ...] | None = None
    only_specs: tuple[str, ...] | None = None
    include_specs: tuple[str, ...] | None = None
    exclude_specs: tuple[str, ...] | None = None
    include_licenses: tuple[LicenseFamily, ...] | None = None
    exclude_licenses: tuple[LicenseFamily, ...] | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    cve_score_threshold: float | None = Field(default=None, ge=0, le=10)
    # The score an unscored CVE counts as for cve_score_threshold; unset, it counts as above
    # any threshold: a CVE nobody scored is not known to be harmless.
    cve_unscored_score: float | None = Field(default=None, ge=0, le=10)
    exclude_non_curated_cve: StrictBool | None = None
    include_prereleases: StrictBool | None = None
    keep_latest: int | None = Field(default=None, ge=1, le=10_000)
    # Take, from the same upstream, what the kept files depend on (docs/concepts.md).
    include_dependencies: StrictBool | None = None
    dependencies: Literal["all", "newest"] | None = None

    @field_validator("subdirs")
    @classmethod
    def _known_subdirs(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        unknown = [subdir for subdir in value if subdir not in KNOWN_SUBDIRS]
        if unknown:
            raise ValueError(
                f"unknown subdir {', '.join(map(repr, unknown))}; "
                f"known subdirs are {', '.join(sorted(KNOWN_SUBDIRS))}"
            )
        return tuple(dict.fromkeys(value))

    @field_validator("projects")
    @classmethod
    def _project_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        bad = [name for name in value if not _PROJECT.fullmatch(name)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} is not a project name")
        return tuple(dict.fromkeys(canonicalize_name(name) for name in value))

    @field_validator(*SPEC_KEYS)
    @classmethod
    def _valid_specs(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """A spec must be a conda MatchSpec or a PEP 508 requirement; which one a mirror needs
        is checked against the mirror's type (`check_for`)."""
        if not value:
            return None
        for spec in value:
            if len(spec) > MAX_SPEC_LENGTH or has_control_characters(spec):
                raise ValueError(
                    f"{spec[:60]!r} is not a spec: at most {MAX_SPEC_LENGTH} characters, "
                    "without control characters"
                )
            if _conda_spec_error(spec) and _python_spec_error(spec):
                raise ValueError(f"{_conda_spec_error(spec)}; nor is it a PEP 508 requirement")
        return tuple(dict.fromkeys(spec.strip() for spec in value))

    @field_validator(*LICENSE_KEYS, mode="before")
    @classmethod
    def _known_families(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            unknown = [family for family in value if family not in FAMILIES]
            if unknown:
                raise ValueError(
                    f"unknown license family {', '.join(map(repr, unknown))}; "
                    f"families are {', '.join(FAMILIES)}"
                )
            return tuple(dict.fromkeys(value)) or None
        return value

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _iso_dates(cls, value: Any) -> Any:
        if value is None or isinstance(value, dt.date):
            return value
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FilterSet:
        if self.only_specs and (self.include_specs or self.exclude_specs):
            raise ValueError(
                "only_specs cannot be combined with include_specs or exclude_specs: "
                "only_specs already names everything the set takes"
            )
        if self.cve_unscored_score is not None and self.cve_score_threshold is None:
            raise ValueError(
                "cve_unscored_score says what an unscored CVE counts as for "
                "cve_score_threshold; set cve_score_threshold too, or remove cve_unscored_score"
            )
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def merged(self, changes: dict[str, Any]) -> FilterSet:
        """This set with `changes` applied: keys sent replace stored ones, a null removes one."""
        if not isinstance(changes, dict):
            raise InvalidFilterError("filters must be an object of filter keys")
        unknown = sorted(set(changes) - set(FilterSet.model_fields))
        if unknown:
            raise InvalidFilterError(f"unknown filter key {', '.join(map(repr, unknown))}")
        data = self.to_json()
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return parse_filter_set(data)

    def check_for(self, kind: str) -> FilterSet:
        """Refuse what does not apply to a mirror of this type (`conda`, `python_simple`)."""
        problems = []
        specs = [spec for key in SPEC_KEYS for spec in getattr(self, key) or ()]
        if kind == "conda":
            problems += [message for spec in specs if (message := _conda_spec_error(spec))]
            problems += [
                f"filter {key!r} is for PyPI mirrors only"
                for key in PYTHON_ONLY_KEYS
                if getattr(self, key) is not None
            ]
        elif kind == "python_simple":
            problems += [message for spec in specs if (message := _python_spec_error(spec))]
        if problems:
            raise InvalidFilterError("; ".join(problems))
        return self

    def allows_subdir(self, subdir: str) -> bool:
        return self.subdirs is None or subdir in self.subdirs

    def refusals(self) -> FilterSet:
        """Only the rules that refuse files (subdirs, licenses, CVE rules, exclude_specs), not
        those that name what is wanted (only_specs, projects, dates, keep_latest,
        pre-releases): what a dependency of a kept file must still pass."""
        return self.model_copy(
            update={
                "projects": None,
                "only_specs": None,
                "date_from": None,
                "date_to": None,
                "keep_latest": None,
                "include_prereleases": True,
            }
        )

    @property
    def takes_dependencies(self) -> bool:
        return bool(self.include_dependencies)

    @property
    def has_cve_rules(self) -> bool:
        return self.cve_score_threshold is not None or bool(self.exclude_non_curated_cve)


def parse_filter_set(data: dict[str, Any] | None) -> FilterSet:
    """Validate a filter set from user input, turning every problem into one clear message."""
    if data is None:
        return FilterSet()
    if not isinstance(data, dict):
        raise InvalidFilterError("filters must be an object of filter keys")
    try:
        return FilterSet.model_validate(data)
    except ValidationError as error:
        raise InvalidFilterError(describe_filter_errors(error)) from None


def describe_filter_errors(error: ValidationError) -> str:
    messages = []
    for problem in error.errors():
        location = [str(part) for part in problem["loc"] if not isinstance(part, int)]
        key = location[0] if location else ""
        text = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            messages.append(f"unknown filter key {key!r}")
        elif key:
            messages.append(f"filter {key!r}: {text}")
        else:
            messages.append(text)
    return "; ".join(dict.fromkeys(messages))


def named_subdirs(*sets: FilterSet) -> list[str] | None:
    """The subdirs every set allows, when any names some; None when none does."""
    named: set[str] | None = None
    for filters in sets:
        if filters.subdirs is not None:
            named = set(filters.subdirs) if named is None else named & set(filters.subdirs)
    return None if named is None else sorted(named)


def nothing_passes(*sets: FilterSet) -> list[str]:
    """Why no file at all could pass every one of these sets; empty when some file could."""
    reasons = []
    named = [set(filters.subdirs) for filters in sets if filters.subdirs is not None]
    if named and not set.intersection(*named):
        reasons.append("the subdirs filters share no subdir")
    excluded = set().union(*(set(filters.exclude_licenses or ()) for filters in sets))
    # include_specs let files past the license rules: then licenses alone leave something.
    license_rules_bind = not any(filters.include_specs for filters in sets)
    for filters in sets if license_rules_bind else ():
        if filters.include_licenses and set(filters.include_licenses) <= excluded:
            reasons.append(
                f"include_licenses {', '.join(filters.include_licenses)} are all excluded"
            )
            break
    starts = [filters.date_from for filters in sets if filters.date_from]
    ends = [filters.date_to for filters in sets if filters.date_to]
    if starts and ends and max(starts) > min(ends):
        reasons.append(f"no date is on or after {max(starts)} and on or before {min(ends)}")
    return reasons
