"""Filter sets: which upstream files a channel takes, validated on the way in and out."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from headwater.errors import InvalidFilterError
from headwater.formats.conda import KNOWN_SUBDIRS


class FilterSet(BaseModel):
    """The rules one channel or one mirror applies. An absent key means "no rule"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subdirs: tuple[str, ...] | None = None

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

    def allows_subdir(self, subdir: str) -> bool:
        return self.subdirs is None or subdir in self.subdirs


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
        key = ".".join(str(part) for part in problem["loc"]) or "filters"
        if problem["type"] == "extra_forbidden":
            messages.append(f"unknown filter key {key!r}")
        else:
            messages.append(f"filter {key!r}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(messages)
