"""How a list is sorted: by one named column, ascending or descending. Pages and the API read it
from `sort=name` or `sort=-name`; services map each name to their own columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression


@dataclass(frozen=True)
class Sort:
    """The column a list is sorted by, and which way."""

    key: str
    descending: bool = False

    def __str__(self) -> str:
        return f"-{self.key}" if self.descending else self.key

    def order_by(self, columns: Mapping[str, SQLColumnExpression[Any]]) -> list[ColumnElement[Any]]:
        """The ORDER BY for this sort over a service's named columns: the named one first, the
        rest after it as tie-breakers so that pages never overlap."""
        first = columns[self.key]
        ordered = [first.desc() if self.descending else first.asc()]
        return ordered + [column.asc() for key, column in columns.items() if key != self.key]
