"""Lists in the API: `{"items": [...], "total_count": N}` paged with `offset` and `limit`."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total_count: int


class Paging(BaseModel):
    offset: int
    limit: int


def paging(
    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> Paging:
    return Paging(offset=offset, limit=limit)


PagingDep = Annotated[Paging, Depends(paging)]
