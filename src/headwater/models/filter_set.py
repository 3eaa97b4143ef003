"""The column type that stores a FilterSet as JSON and validates it in both directions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlalchemy.types import TypeDecorator

from headwater.filters import FilterSet


class FilterSetColumn(TypeDecorator[FilterSet]):
    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: FilterSet | None, dialect: Any) -> dict[str, Any]:
        return (value or FilterSet()).to_json()

    def process_result_value(self, value: dict[str, Any] | None, dialect: Any) -> FilterSet:
        return FilterSet.model_validate(value or {})
