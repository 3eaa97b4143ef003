"""Path and query parameters the HTTP edges (REST and UI) share, bounded so that no number a
client sends can overflow a database column."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from headwater.inputs import MAX_COUNT, MAX_ID

# The id of a row (mirror, run, file, CVE match): larger numbers can name no row.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
# Where a page of a list starts.
Offset = Annotated[int, Query(ge=0, le=MAX_COUNT)]
