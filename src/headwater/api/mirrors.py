"""REST for mirrors: per channel, all of them, Run now and Stop."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, Paging, PagingDep
from headwater.filters import parse_filter_set
from headwater.models.mirror import DEFAULT_CRON
from headwater.params import RowId
from headwater.requires import Allowed, requires
from headwater.schemas.mirrors import MirrorOut, MirrorSaved
from headwater.schemas.previews import PreviewOut
from headwater.schemas.runs import RunOut
from headwater.services import mirrors as mirror_service
from headwater.services import runs as run_service
from headwater.services.access.decisions import ChannelRef
from headwater.services.access.identities import channels_where
from headwater.services.access.rules import Action, may_set_proxy
from headwater.services.preview import PreviewQuery, PreviewRequest, Show
from headwater.services.preview import preview_mirror as preview_of

router = APIRouter(tags=["mirrors"], route_class=StrictJsonRoute)


class MirrorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mirror_name: str
    mirror_type: str = "conda"
    source_root: str
    mirror_mode: str = "passive"
    on_missing_file: str = "skip"  # or fail: what an active run does with a file upstream lacks
    cron: str = DEFAULT_CRON
    run_now: bool = False
    proxy: str | None = None
    filters: dict[str, Any] | None = None


class MirrorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mirror_name: str | None = None
    mirror_type: str | None = None
    source_root: str | None = None
    mirror_mode: str | None = None
    on_missing_file: str | None = None
    cron: str | None = None
    run_now: bool | None = None
    proxy: str | None = None
    filters: dict[str, Any] | None = None


def _mirror_out(resources: ResourcesDep, channel: ChannelRef, mirror_id: int) -> MirrorOut:
    with resources.db.reading() as session:
        mirror = mirror_service.get_mirror(session, channel, mirror_id)
        latest = run_service.latest_runs(session, [mirror.id]).get(mirror.id)
        return MirrorOut.of(mirror, channel.name, latest)


async def _saved(
    resources: ResourcesDep, channel: ChannelRef, change: mirror_service.MirrorChange
) -> MirrorSaved:
    await mirror_service.check_projects(change, resources.policy)
    out = await run_in_threadpool(_mirror_out, resources, channel, change.mirror.id)
    run = RunOut.of(change.run, change.mirror.mirror_name) if change.run else None
    return MirrorSaved(**out.model_dump(), warnings=change.warnings, run=run)


@router.get("/api/channels/{channel}/mirrors")
def list_mirrors(
    resources: ResourcesDep, allowed: Allowed = requires(Action.read_mirrors)
) -> Page[MirrorOut]:
    channel = allowed.channel
    with resources.db.reading() as session:
        mirrors = mirror_service.list_channel_mirrors(session, channel)
        latest = run_service.latest_runs(session, [mirror.id for mirror in mirrors])
        items = [MirrorOut.of(mirror, channel.name, latest.get(mirror.id)) for mirror in mirrors]
    return Page(items=items, total_count=len(items))


@router.post("/api/channels/{channel}/mirrors", status_code=201)
async def create_mirror(
    body: MirrorCreate, resources: ResourcesDep, allowed: Allowed = requires(Action.edit_mirrors)
) -> MirrorSaved:
    """Create a mirror. A cron more frequent than daily is accepted with a warning; a proxy
    only by administrators, and only one of HEADWATER_PROXY_ALLOWLIST."""

    def create() -> mirror_service.MirrorChange:
        with resources.db.writing() as session:
            return mirror_service.create_mirror(
                session,
                allowed.channel,
                body.model_dump(),
                policy=resources.policy,
                actor=allowed.actor,
                proxy_allowed=may_set_proxy(allowed.identity),
            )

    return await _saved(resources, allowed.channel, await run_in_threadpool(create))


@router.get("/api/channels/{channel}/mirrors/{mirror_id}")
def show_mirror(
    mirror_id: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.read_mirrors)
) -> MirrorOut:
    return _mirror_out(resources, allowed.channel, mirror_id)


@router.put("/api/channels/{channel}/mirrors/{mirror_id}")
@router.patch("/api/channels/{channel}/mirrors/{mirror_id}")
async def update_mirror(
    mirror_id: RowId,
    body: MirrorUpdate,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.edit_mirrors),
) -> MirrorSaved:
    """Edit a mirror: fields sent replace stored ones; `filters` merge key by key (null removes)."""

    def update() -> mirror_service.MirrorChange:
        with resources.db.writing() as session:
            return mirror_service.update_mirror(
                session,
                allowed.channel,
                mirror_id,
                body.model_dump(exclude_unset=True),
                policy=resources.policy,
                actor=allowed.actor,
                proxy_allowed=may_set_proxy(allowed.identity),
            )

    return await _saved(resources, allowed.channel, await run_in_threadpool(update))


@router.delete("/api/channels/{channel}/mirrors/{mirror_id}", status_code=204)
def delete_mirror(
    mirror_id: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.edit_mirrors)
) -> Response:
    """Delete a mirror with its history; the files it brought leave the channel."""
    mirror_service.delete_mirror(
        resources.db, resources.store, allowed.channel, mirror_id, actor=allowed.actor
    )
    return Response(status_code=204)


@router.post("/api/channels/{channel}/mirrors/{mirror_id}/run", status_code=202)
def run_mirror(
    mirror_id: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.edit_mirrors)
) -> RunOut:
    """Run now: queue a run at once, without changing the schedule. 409 if one is under way."""
    with resources.db.writing() as session:
        mirror, run = mirror_service.run_now(
            session, allowed.channel, mirror_id, actor=allowed.actor
        )
        return RunOut.of(run, mirror.mirror_name)


@router.post("/api/channels/{channel}/mirrors/{mirror_id}/stop", status_code=202)
def stop_mirror(
    mirror_id: RowId, resources: ResourcesDep, allowed: Allowed = requires(Action.edit_mirrors)
) -> RunOut:
    """Stop the mirror's run: a pending one fails at once, a running one at its next heartbeat."""
    with resources.db.writing() as session:
        mirror, run = mirror_service.stop(session, allowed.channel, mirror_id, actor=allowed.actor)
        return RunOut.of(run, mirror.mirror_name)


class PreviewDraft(MirrorCreate):
    """A mirror not saved yet; `channel_filters` tries a draft of the channel's filters too."""

    mirror_name: str = "draft"
    channel_filters: dict[str, Any] | None = None


class PreviewOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_filters: dict[str, Any] | None = None


def _query(show: Show, reason: str | None, search: str | None, page: Paging) -> PreviewQuery:
    return PreviewQuery(
        show=show, reason=reason, search=search, offset=page.offset, limit=page.limit
    )


@router.post("/api/channels/{channel}/mirrors/preview")
async def preview_draft(
    body: PreviewDraft,
    resources: ResourcesDep,
    page: PagingDep,
    show: Show = "all",
    reason: str | None = None,
    search: str | None = None,
    allowed: Allowed = requires(Action.edit_mirrors),
) -> PreviewOut:
    """What a mirror with these fields would take and drop, and why; nothing is downloaded."""

    def request() -> PreviewRequest:
        with resources.db.reading() as session:
            return mirror_service.draft_preview_request(
                session,
                allowed.channel,
                body.model_dump(exclude={"channel_filters"}),
                policy=resources.policy,
                channel_filters=body.channel_filters,
                cve_names=resources.cve_names,
                proxy_allowed=may_set_proxy(allowed.identity),
            )

    draft = await run_in_threadpool(request)
    query = _query(show, reason, search, page)
    previewed = await preview_of(
        draft, resources.policy, query, gate=resources.previews, caller=allowed.actor.counted_as
    )
    return PreviewOut.of(draft, previewed)


@router.post("/api/channels/{channel}/mirrors/{mirror_id}/preview")
async def preview_saved_mirror(
    mirror_id: RowId,
    resources: ResourcesDep,
    page: PagingDep,
    body: PreviewOptions | None = None,
    show: Show = "all",
    reason: str | None = None,
    search: str | None = None,
    allowed: Allowed = requires(Action.read_mirrors),
) -> PreviewOut:
    """What the mirror's next run would take and drop with its filters and the channel's."""

    def request() -> PreviewRequest:
        with resources.db.reading() as session:
            saved = mirror_service.preview_request(
                session, allowed.channel, mirror_id, resources.cve_names
            )
        if body is not None and body.channel_filters is not None:
            saved = replace(saved, channel_filters=parse_filter_set(body.channel_filters))
        return saved

    saved = await run_in_threadpool(request)
    query = _query(show, reason, search, page)
    previewed = await preview_of(
        saved, resources.policy, query, gate=resources.previews, caller=allowed.actor.counted_as
    )
    return PreviewOut.of(saved, previewed)


@router.get("/api/mirrors")
def all_mirrors(
    resources: ResourcesDep, page: PagingDep, allowed: Allowed = requires(Action.list_mirrors)
) -> Page[MirrorOut]:
    """Every mirror with its state, step, progress, last and next run, of the channels whose
    mirrors the caller may see (every channel, for an administrator)."""
    where = channels_where(allowed.identity, Action.read_mirrors)
    with resources.db.reading() as session:
        rows, total = mirror_service.list_all_mirrors(
            session, offset=page.offset, limit=page.limit, where=where
        )
        latest = run_service.latest_runs(session, [mirror.id for mirror, _ in rows])
        items = [MirrorOut.of(mirror, channel, latest.get(mirror.id)) for mirror, channel in rows]
    return Page(items=items, total_count=total)
