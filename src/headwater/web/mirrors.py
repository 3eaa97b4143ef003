"""Mirror pages: the create and edit form with its live checks, Run now, Stop, and All
Repository Mirrors."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from headwater.db import utcnow
from headwater.errors import HeadwaterError, InvalidInputError
from headwater.filters import nothing_passes, parse_filter_set
from headwater.models import Channel, Mirror, MirrorMode, OnMissingFile, Run
from headwater.models.mirror import DEFAULT_CRON
from headwater.params import Offset, RowId
from headwater.requires import Allowed, requires
from headwater.schedule import parse_schedule
from headwater.schemas.previews import PreviewOut
from headwater.schemas.runs import Progress
from headwater.services import mirrors as mirror_service
from headwater.services import run_queue
from headwater.services import runs as run_service
from headwater.services.access.identities import channels_where
from headwater.services.access.rules import Action, may_set_proxy
from headwater.services.channels import channel_stats
from headwater.services.preview import PreviewQuery, preview_mirror
from headwater.services.project_check import MAX_TYPED, check_project
from headwater.upstreams.http import check_proxy, shown_url
from headwater.web.filter_form import filter_context, filters_from_form, labelled_filters
from headwater.web.listing import PAGE_SIZE, Sort, sorting
from headwater.web.session import redirect, render, resources_of, safe_target, submitted

router = APIRouter(include_in_schema=False)


def form_fields(form: FormData) -> dict[str, Any]:
    """The mirror fields of a submitted form, in the shape the REST API takes."""
    return {
        "mirror_name": str(form.get("mirror_name", "")).strip(),
        "mirror_type": str(form.get("mirror_type", "conda")),
        "source_root": str(form.get("source_root", "")).strip(),
        "mirror_mode": str(form.get("mirror_mode", MirrorMode.passive)),
        "on_missing_file": str(form.get("on_missing_file", OnMissingFile.skip)),
        "cron": str(form.get("cron", "")).strip() or DEFAULT_CRON,
        "proxy": str(form.get("proxy", "")).strip() or None,
        "run_now": form.get("run_now") == "on",
        "filters": filters_from_form(form),
    }


def _form_page(
    request: Request,
    allowed: Allowed,
    fields: dict[str, Any],
    *,
    mirror: Mirror | None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        channel = session.get_one(Channel, allowed.channel.id)
    schedule_preview = _schedule_preview(fields.get("cron") or DEFAULT_CRON)
    filters = {
        key: value for key, value in (fields.get("filters") or {}).items() if value is not None
    }
    context = {
        "channel": channel,
        "mirror": mirror,
        "fields": fields,
        "filters": filters,
        "channel_filters": labelled_filters(channel.filters.to_json()),
        "chips_check": f"/channels/{channel.name}/mirrors/projects/check",
        "error": error,
        "schedule": schedule_preview,
        "python": fields.get("mirror_type") == "python_simple",
        "tab": "mirrors",
        **filter_context(),
    }
    return render(
        request, "mirror/form.html", context, identity=allowed.identity, status_code=status_code
    )


def _schedule_preview(cron: str) -> dict[str, Any]:
    try:
        schedule = parse_schedule(cron)
    except HeadwaterError as error:
        return {"error": error.message, "description": "", "next_runs": [], "warnings": []}
    now = utcnow()
    return {
        "error": None,
        "description": schedule.description(),
        "next_runs": schedule.next_runs(now, 3),
        "warnings": schedule.warnings(now),
    }


@router.get("/channels/{channel}/mirrors/new")
def new_mirror(request: Request, allowed: Allowed = requires(Action.edit_mirrors)) -> HTMLResponse:
    fields = {
        "mirror_type": "conda",
        "mirror_mode": "passive",
        "on_missing_file": "skip",
        "cron": DEFAULT_CRON,
        "filters": {},
    }
    return _form_page(request, allowed, fields, mirror=None)


@router.post("/channels/{channel}/mirrors/new")
async def create_mirror(
    request: Request, allowed: Allowed = requires(Action.edit_mirrors)
) -> Response:
    fields = form_fields(submitted(request))
    resources = resources_of(request)

    def create() -> mirror_service.MirrorChange:
        with resources.db.writing() as session:
            return mirror_service.create_mirror(
                session,
                allowed.channel,
                fields,
                policy=resources.policy,
                actor=allowed.actor,
                proxy_allowed=may_set_proxy(allowed.identity),
            )

    try:
        change = await run_in_threadpool(create)
    except HeadwaterError as error:
        return await run_in_threadpool(
            partial(
                _form_page,
                request,
                allowed,
                fields,
                mirror=None,
                error=error.message,
                status_code=error.status_code,
            )
        )
    await mirror_service.check_projects(change, resources.policy)
    message = f"Mirror {change.mirror.mirror_name} created."
    if change.warnings:
        message += " " + " ".join(change.warnings)
    return redirect(_mirrors_tab(allowed.channel.name, change.run), message)


def _fields_of(mirror: Mirror) -> dict[str, Any]:
    return {
        "mirror_name": mirror.mirror_name,
        "mirror_type": mirror.mirror_type,
        "source_root": mirror.source_root,
        "mirror_mode": mirror.mirror_mode,
        "on_missing_file": mirror.on_missing_file,
        "cron": mirror.cron,
        "proxy": shown_url(mirror.proxy),
        "filters": mirror.filters.to_json(),
    }


@router.get("/channels/{channel}/mirrors/{mirror_id}/edit")
def edit_mirror(
    request: Request, mirror_id: RowId, allowed: Allowed = requires(Action.edit_mirrors)
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        mirror = mirror_service.get_mirror(session, allowed.channel, mirror_id)
    return _form_page(request, allowed, _fields_of(mirror), mirror=mirror)


@router.post("/channels/{channel}/mirrors/{mirror_id}/edit")
async def save_mirror(
    request: Request, mirror_id: RowId, allowed: Allowed = requires(Action.edit_mirrors)
) -> Response:
    fields = form_fields(submitted(request))
    resources = resources_of(request)

    def update() -> mirror_service.MirrorChange:
        with resources.db.writing() as session:
            return mirror_service.update_mirror(
                session,
                allowed.channel,
                mirror_id,
                fields,
                policy=resources.policy,
                actor=allowed.actor,
                proxy_allowed=may_set_proxy(allowed.identity),
            )

    try:
        change = await run_in_threadpool(update)
    except HeadwaterError as error:
        return await run_in_threadpool(
            partial(_form_again, request, allowed, mirror_id, fields, error)
        )
    await mirror_service.check_projects(change, resources.policy)
    message = f"Mirror {change.mirror.mirror_name} saved; the changes apply from its next run."
    if change.warnings:
        message += " " + " ".join(change.warnings)
    return redirect(_mirrors_tab(allowed.channel.name, change.run), message)


def _mirrors_tab(channel: str, run: Run | None) -> str:
    """The Mirrors tab after saving; with Run now, it names the queued run so that the tab
    links to it (the flash message is plain text)."""
    return f"/channels/{channel}/mirrors" + (f"?queued={run.id}" if run is not None else "")


def _form_again(
    request: Request,
    allowed: Allowed,
    mirror_id: int,
    fields: dict[str, Any],
    error: HeadwaterError,
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        mirror = mirror_service.get_mirror(session, allowed.channel, mirror_id)
    return _form_page(
        request, allowed, fields, mirror=mirror, error=error.message, status_code=error.status_code
    )


@router.post("/channels/{channel}/mirrors/{mirror_id}/run")
def run_now(
    request: Request, mirror_id: RowId, allowed: Allowed = requires(Action.edit_mirrors)
) -> Response:
    form = submitted(request)
    name = allowed.channel.name
    try:
        with resources_of(request).db.writing() as session:
            mirror, _ = mirror_service.run_now(
                session, allowed.channel, mirror_id, actor=allowed.actor
            )
    except HeadwaterError as error:
        return redirect(_back(form, name), error.message)
    return redirect(f"/channels/{name}/history", f"Run of {mirror.mirror_name} queued.")


@router.post("/channels/{channel}/mirrors/{mirror_id}/stop")
def stop(
    request: Request, mirror_id: RowId, allowed: Allowed = requires(Action.edit_mirrors)
) -> Response:
    form = submitted(request)
    name = allowed.channel.name
    try:
        with resources_of(request).db.writing() as session:
            mirror, _ = mirror_service.stop(
                session, allowed.channel, mirror_id, actor=allowed.actor
            )
    except HeadwaterError as error:
        return redirect(_back(form, name), error.message)
    return redirect(_back(form, name), f"Stopping the run of {mirror.mirror_name}.")


@router.post("/channels/{channel}/mirrors/{mirror_id}/delete")
def delete(
    request: Request, mirror_id: RowId, allowed: Allowed = requires(Action.edit_mirrors)
) -> Response:
    resources = resources_of(request)
    name = allowed.channel.name
    try:
        mirror_service.delete_mirror(
            resources.db, resources.store, allowed.channel, mirror_id, actor=allowed.actor
        )
    except HeadwaterError as error:
        return redirect(f"/channels/{name}/mirrors", error.message)
    return redirect(f"/channels/{name}/mirrors", "Mirror deleted.")


def _back(form: FormData, name: str) -> str:
    return safe_target(form.get("back"), f"/channels/{name}/mirrors")


# What All Repository Mirrors filters by: a run's state, or "never" for a mirror never run.
MIRROR_STATES = ("pending", "running", "completed", "failed", "never")


@router.get("/mirrors")
def all_mirrors(
    request: Request,
    state: str | None = None,
    channel: str | None = None,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*mirror_service.MIRROR_SORTS, default="channel")),
    allowed: Allowed = requires(Action.list_mirrors),
) -> HTMLResponse:
    """Every mirror of the channels the caller may read, with its latest run's state and
    progress (the seed's "globally for all users"); the upstream and the edit menu only where
    they may manage the mirrors (administrators: everywhere)."""
    state, channel = state or None, channel or None
    if state is not None and state not in MIRROR_STATES:
        raise InvalidInputError(f"state {state!r} is not one of {', '.join(MIRROR_STATES)}")
    identity = allowed.identity
    readable = channels_where(identity, Action.read_channel)
    where = readable if channel is None else readable & (Channel.name == channel)
    with resources_of(request).db.reading() as session:
        rows, total = mirror_service.list_all_mirrors(
            session, offset=offset, limit=PAGE_SIZE, where=where, state=state, sort=sort
        )
        latest = run_service.latest_runs(session, [mirror.id for mirror, _ in rows])
        reasons = run_queue.pending_reasons(session, latest.values())
        managed = set(
            session.scalars(
                select(Channel.name).where(where, channels_where(identity, Action.read_mirrors))
            )
        )
        stats = channel_stats(session, sorted({mirror.channel_id for mirror, _ in rows}))
        choices = list(session.scalars(select(Channel.name).where(readable).order_by(Channel.name)))
    context = {
        "rows": rows,
        "latest": latest,
        "reasons": reasons,
        "progress": {mirror_id: Progress.of(run) for mirror_id, run in latest.items()},
        "managed": managed,
        "owners": {channel_id: found.owner for channel_id, found in stats.items()},
        "upstreams": {mirror.id: shown_url(mirror.source_root) for mirror, _ in rows},
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
        "states": MIRROR_STATES,
        "channels": choices,
        "chosen": {"state": state or "", "channel": channel or ""},
    }
    return render(request, "mirror/all.html", context, identity=identity)


# What the preview lists, by the form's `preview_list`: a heading and the query.
PREVIEW_LISTS = {
    "dropped": ("Dropped files", PreviewQuery(show="dropped", limit=50)),
    "dependency": (
        "Files taken as dependencies",
        PreviewQuery(show="taken", reason="dependency", limit=50),
    ),
    "taken": ("Taken files", PreviewQuery(show="taken", limit=50)),
    "all": ("All files", PreviewQuery(show="all", limit=50)),
}


@router.post("/channels/{channel}/mirrors/preview")
async def preview(
    request: Request, allowed: Allowed = requires(Action.edit_mirrors)
) -> HTMLResponse:
    """The Preview button: the form as it stands, judged against the upstream's metadata,
    listing the files its `preview_list` choice names (the dropped ones by default)."""
    form = submitted(request)
    fields = form_fields(form)
    listing, query = PREVIEW_LISTS.get(str(form.get("preview_list", "")), PREVIEW_LISTS["dropped"])
    resources = resources_of(request)

    def draft() -> Any:
        with resources.db.reading() as session:
            return mirror_service.draft_preview_request(
                session,
                allowed.channel,
                fields,
                policy=resources.policy,
                cve_names=resources.cve_names,
                proxy_allowed=may_set_proxy(allowed.identity),
            )

    try:
        drafted = await run_in_threadpool(draft)
        previewed = await preview_mirror(
            drafted,
            resources.policy,
            query,
            gate=resources.previews,
            caller=allowed.actor.counted_as,
        )
        result = PreviewOut.of(drafted, previewed)
    except HeadwaterError as error:
        context: dict[str, Any] = {"error": error.message}
        return render(request, "mirror/_preview.html", context, identity=allowed.identity)
    context = {"preview": result, "error": None, "listing": listing}
    return render(request, "mirror/_preview.html", context, identity=allowed.identity)


@router.post("/channels/{channel}/filters/check")
def check_filters(
    request: Request, allowed: Allowed = requires(Action.read_mirrors)
) -> JSONResponse:
    """Whether the filters in the form, with the channel's (or the mirrors'), leave anything."""
    form = submitted(request)
    with resources_of(request).db.reading() as session:
        channel = session.get_one(Channel, allowed.channel.id)
        mirrors = mirror_service.list_channel_mirrors(session, allowed.channel)
    try:
        drafted = parse_filter_set(filters_from_form(form))
    except HeadwaterError as error:
        return JSONResponse({"problems": [], "invalid": error.message})
    if form.get("scope") == "channel":
        problems = [
            f"with mirror {mirror.mirror_name}: {reason}"
            for mirror in mirrors
            for reason in nothing_passes(mirror.filters, drafted)
        ]
    else:
        problems = nothing_passes(drafted, channel.filters)
    return JSONResponse({"problems": problems, "invalid": None})


@router.get("/channels/{channel}/mirrors/schedule")
def schedule_sentence(
    cron: str = Query(max_length=200), allowed: Allowed = requires(Action.edit_mirrors)
) -> JSONResponse:
    """The form's frequency as it is typed: its sentence and next runs, or 422 with what is
    wrong with it."""
    found = _schedule_preview(cron)
    if found["error"]:
        return JSONResponse({"error": found["error"]}, status_code=422)
    return JSONResponse(
        {
            "description": found["description"],
            "next_runs": [
                {"at": moment.isoformat(), "text": moment.strftime("%Y-%m-%d %H:%M:%S UTC")}
                for moment in found["next_runs"]
            ],
            "warnings": found["warnings"],
        }
    )


@router.post("/channels/{channel}/mirrors/projects/check")
async def project_check(
    request: Request, allowed: Allowed = requires(Action.edit_mirrors)
) -> JSONResponse:
    """One project chip as it is entered: accepted (PEP 508 name, normalized as PEP 503 says,
    and for a PyPI mirror found on its index when the index answers) or why not."""
    form = submitted(request)
    typed = form.get("project")
    if not isinstance(typed, str) or not typed.strip():
        return JSONResponse({"detail": "project is required"}, status_code=422)
    if len(typed) > MAX_TYPED:
        return JSONResponse(
            {"detail": f"project has at most {MAX_TYPED} characters"}, status_code=422
        )
    python = form.get("mirror_type") == "python_simple"
    source_root = str(form.get("source_root") or "").strip() if python else ""
    try:
        proxy = await run_in_threadpool(_draft_proxy, request, allowed, form)
    except HeadwaterError:
        source_root = ""  # the proxy is refused (saving says why): the index is not asked
        proxy = None
    verdict = await check_project(
        typed, source_root=source_root or None, proxy=proxy, policy=resources_of(request).policy
    )
    return JSONResponse(verdict.to_json())


def _draft_proxy(request: Request, allowed: Allowed, form: FormData) -> str | None:
    """The proxy the form would save: the stored one as shown, or one only an administrator
    may set, from HEADWATER_PROXY_ALLOWLIST."""
    value = str(form.get("proxy") or "").strip()
    mirror_id = str(form.get("mirror_id") or "")
    if mirror_id.isdigit() and len(mirror_id) < 12:
        with resources_of(request).db.reading() as session:
            mirror = mirror_service.get_mirror(session, allowed.channel, int(mirror_id))
        if mirror.proxy is not None and value == shown_url(mirror.proxy):
            return mirror.proxy
    if value and not may_set_proxy(allowed.identity):
        raise InvalidInputError("only administrators set a mirror's proxy")
    return check_proxy(value or None, resources_of(request).policy.proxies)
