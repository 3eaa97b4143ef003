"""Lists in the API: `{"items": [...], "total_count": N}` paged with `offset` and `limit`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel

from headwater.params import Offset
from headwater.schemas.pages import Page

__all__ = ["Page", "Paging", "PagingDep", "paging"]


class Paging(BaseModel):
    offset: int
    limit: int


def paging(
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Paging:
    return Paging(offset=offset, limit=limit)


PagingDep = Annotated[Paging, Depends(paging)]
