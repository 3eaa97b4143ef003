"""REST for a channel's revisions: list, one with its difference, keep, roll back."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.models import Channel
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.schemas.revisions import ChangedFile, KeepIn, RevisionDetail, RevisionOut
from headwater.services import channel_revisions as revision_service
from headwater.services.access.rules import Action

router = APIRouter(prefix="/api/channels", tags=["revisions"], route_class=StrictJsonRoute)


class KeepBody(KeepIn):
    model_config = ConfigDict(extra="forbid")


def _head(session: Session, channel_id: int) -> int:
    return session.get_one(Channel, channel_id).head


@router.get("/{channel}/revisions")
def list_revisions(
    resources: ResourcesDep, page: PagingDep, allowed: Allowed = requires(Action.read_channel)
) -> Page[RevisionOut]:
    """The channel's revisions, newest first."""
    channel = allowed.channel
    with resources.db.reading() as session:
        revisions, total = revision_service.list_revisions(
            session, channel, offset=page.offset, limit=page.limit
        )
        head = _head(session, channel.id)
    return Page(
        items=[RevisionOut.of(channel.name, revision, head) for revision in revisions],
        total_count=total,
    )


@router.get("/{channel}/revisions/{number}")
def get_revision(
    number: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.read_channel)
) -> RevisionDetail:
    """One revision, with the files it added and removed against its parent."""
    return _detail(resources, allowed, number)


def _detail(resources: ResourcesDep, allowed: Allowed, number: int) -> RevisionDetail:
    channel = allowed.channel
    with resources.db.reading() as session:
        difference = revision_service.get_revision(session, channel, number)
        head = _head(session, channel.id)
        summary = RevisionOut.of(channel.name, difference.revision, head)
        return RevisionDetail(
            **summary.model_dump(),
            files_added=[ChangedFile.of(file) for file in difference.added],
            files_removed=[ChangedFile.of(file) for file in difference.removed],
        )


@router.put("/{channel}/revisions/{number}")
def keep_revision(
    number: RowId,
    body: KeepBody,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.edit_channel),
) -> RevisionDetail:
    """Keep a revision under a name past retention (`{"keep": "2026-q4-release"}`), pinnable
    as `/api/repo/<channel>@<name>/`; `{"keep": null}` lets retention take it again."""
    with resources.db.writing() as session:
        revision_service.keep_revision(
            session, allowed.channel, number, body.keep, actor=allowed.actor
        )
    return _detail(resources, allowed, number)


@router.post("/{channel}/revisions/{number}/rollback")
async def rollback(
    number: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.edit_channel)
) -> RevisionDetail:
    """Make a new head revision whose contents equal revision `number`'s; answers it."""

    def roll_back() -> int:
        landed = revision_service.rollback(
            resources.db,
            resources.store,
            allowed.channel,
            number,
            actor=allowed.actor,
            cve_names=resources.cve_names,
        )
        return landed.number

    head = await run_in_threadpool(roll_back)
    return await run_in_threadpool(_detail, resources, allowed, head)
