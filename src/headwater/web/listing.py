"""Lists on pages: a page of rows (`offset`), sorted by one column (`sort=name` ascending,
`sort=-name` descending), with links that keep every other query parameter.

A view names the columns its list sorts by; an unknown one is refused with 422 that lists them.
The service behind the view maps each name to its own columns: the names are the page's words,
not the tables'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request

from headwater.errors import InvalidInputError
from headwater.sorting import Sort

PAGE_SIZE = 100

__all__ = ["PAGE_SIZE", "Sort", "sorting", "with_query"]


def sorting(*keys: str, default: str) -> Callable[..., Sort]:
    """A dependency reading `sort` as one of `keys`, optionally prefixed with "-"."""

    def sort(value: Annotated[str, Query(alias="sort", max_length=64)] = default) -> Sort:
        key = value.removeprefix("-")
        if key not in keys:
            raise InvalidInputError(
                f"cannot sort by {key!r}; sort by one of: {', '.join(keys)} (- first: descending)"
            )
        return Sort(key, descending=value.startswith("-"))

    return sort


def with_query(request: Request, **changes: object) -> str:
    """This page's URL with some query parameters changed (None removes one): what the pager's
    and the sortable headers' links point at."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return request.url.path + (f"?{urlencode(params)}" if params else "")
