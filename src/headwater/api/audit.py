"""REST for the audit log: paged and filtered, or every matching event as JSON lines."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.requires import Allowed, requires
from headwater.schemas.access import AuditEventOut
from headwater.services.access.audit import AuditQuery, export_lines, list_events
from headwater.services.access.rules import Action

router = APIRouter(prefix="/api/audit", tags=["audit"], route_class=StrictJsonRoute)


def audit_query(
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> AuditQuery:
    """`action` is an action (`channel.update`) or a family of them (`channel`); `since` and
    `until` without a time zone are UTC."""
    return AuditQuery(actor=actor, action=action, target=target, since=since, until=until)


QueryDep = Annotated[AuditQuery, Depends(audit_query)]


@router.get("")
def list_audit_events(
    resources: ResourcesDep,
    page: PagingDep,
    query: QueryDep,
    allowed: Allowed = requires(Action.read_audit),
) -> Page[AuditEventOut]:
    """Administrative actions, newest first."""
    with resources.db.reading() as session:
        events, total = list_events(session, query, offset=page.offset, limit=page.limit)
        return Page(items=[AuditEventOut.of(e) for e in events], total_count=total)


@router.get("/export", response_class=StreamingResponse)
def export_audit_events(
    resources: ResourcesDep, query: QueryDep, allowed: Allowed = requires(Action.read_audit)
) -> StreamingResponse:
    """Every matching event, newest first, one JSON document per line."""

    def lines():  # type: ignore[no-untyped-def]
        with resources.db.reading() as session:
            yield from export_lines(session, query)

    return StreamingResponse(
        iterate_in_threadpool(lines()),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="headwater-audit.jsonl"'},
    )
