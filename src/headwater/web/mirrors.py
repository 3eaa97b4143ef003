"""Mirror pages: the create and edit form, Run now, Stop, and All Repository Mirrors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from headwater.db import utcnow
from headwater.errors import HeadwaterError
from headwater.filters import nothing_passes, parse_filter_set
from headwater.models import Mirror, MirrorMode, RunTrigger
from headwater.models.mirror import DEFAULT_CRON
from headwater.params import RowId
from headwater.schedule import parse_schedule
from headwater.schemas.previews import PreviewOut
from headwater.services import access
from headwater.services import mirrors as mirror_service
from headwater.services import runs as run_service
from headwater.services.auth import Identity
from headwater.services.preview import PreviewQuery, preview_mirror
from headwater.upstreams.http import shown_url
from headwater.web.filter_form import filter_context, filters_from_form
from headwater.web.session import (
    check_csrf,
    managed,
    read_form,
    redirect,
    render,
    require_browser_identity,
    resources_of,
)

router = APIRouter(include_in_schema=False)


def form_fields(form: FormData) -> dict[str, Any]:
    """The mirror fields of a submitted form, in the shape the REST API takes."""
    return {
        "mirror_name": str(form.get("mirror_name", "")).strip(),
        "mirror_type": str(form.get("mirror_type", "conda")),
        "source_root": str(form.get("source_root", "")).strip(),
        "mirror_mode": str(form.get("mirror_mode", MirrorMode.passive)),
        "cron": str(form.get("cron", "")).strip() or DEFAULT_CRON,
        "proxy": str(form.get("proxy", "")).strip() or None,
        "run_now": form.get("run_now") == "on",
        "filters": filters_from_form(form),
    }


def _form_page(
    request: Request,
    identity: Identity,
    channel_name: str,
    fields: dict[str, Any],
    *,
    mirror: Mirror | None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        channel = access.managed_channel(session, channel_name, identity)
    schedule_preview = _schedule_preview(fields.get("cron") or DEFAULT_CRON)
    filters = {
        key: value for key, value in (fields.get("filters") or {}).items() if value is not None
    }
    context = {
        "channel": channel,
        "mirror": mirror,
        "fields": fields,
        "filters": filters,
        "channel_filters": channel.filters.to_json(),
        "error": error,
        "schedule": schedule_preview,
        "python": fields.get("mirror_type") == "python_simple",
        "tab": "mirrors",
        **filter_context(),
    }
    return render(request, "mirror/form.html", context, identity=identity, status_code=status_code)


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


@router.get("/channels/{name}/mirrors/new")
def new_mirror(request: Request, name: str) -> HTMLResponse:
    identity = require_browser_identity(request)
    fields = {"mirror_type": "conda", "mirror_mode": "passive", "cron": DEFAULT_CRON, "filters": {}}
    return _form_page(request, identity, name, fields, mirror=None)


@router.post("/channels/{name}/mirrors/new")
async def create_mirror(request: Request, name: str) -> Response:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    fields = form_fields(form)
    resources = resources_of(request)
    try:
        with resources.db.writing() as session:
            change = mirror_service.create_mirror(
                session,
                name,
                fields,
                policy=resources.policy,
                requested_by=identity.username,
                proxy_allowed=access.may_set_proxy(identity),
            )
    except HeadwaterError as error:
        return _form_page(
            request,
            identity,
            name,
            fields,
            mirror=None,
            error=error.message,
            status_code=error.status_code,
        )
    await mirror_service.check_projects(change, resources.policy)
    message = f"Mirror {change.mirror.mirror_name} created."
    if change.warnings:
        message += " " + " ".join(change.warnings)
    return redirect(f"/channels/{name}/mirrors", message)


def _fields_of(mirror: Mirror) -> dict[str, Any]:
    return {
        "mirror_name": mirror.mirror_name,
        "mirror_type": mirror.mirror_type,
        "source_root": mirror.source_root,
        "mirror_mode": mirror.mirror_mode,
        "cron": mirror.cron,
        "proxy": shown_url(mirror.proxy),
        "filters": mirror.filters.to_json(),
    }


@router.get("/channels/{name}/mirrors/{mirror_id}/edit")
def edit_mirror(request: Request, name: str, mirror_id: RowId) -> HTMLResponse:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    with resources_of(request).db.reading() as session:
        mirror = mirror_service.get_mirror(session, name, mirror_id)
    return _form_page(request, identity, name, _fields_of(mirror), mirror=mirror)


@router.post("/channels/{name}/mirrors/{mirror_id}/edit")
async def save_mirror(request: Request, name: str, mirror_id: RowId) -> Response:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    fields = form_fields(form)
    resources = resources_of(request)
    try:
        with resources.db.writing() as session:
            change = mirror_service.update_mirror(
                session,
                name,
                mirror_id,
                fields,
                policy=resources.policy,
                requested_by=identity.username,
                proxy_allowed=access.may_set_proxy(identity),
            )
    except HeadwaterError as error:
        with resources.db.reading() as session:
            mirror = mirror_service.get_mirror(session, name, mirror_id)
        return _form_page(
            request,
            identity,
            name,
            fields,
            mirror=mirror,
            error=error.message,
            status_code=error.status_code,
        )
    await mirror_service.check_projects(change, resources.policy)
    message = f"Mirror {change.mirror.mirror_name} saved; the changes apply from its next run."
    if change.warnings:
        message += " " + " ".join(change.warnings)
    return redirect(f"/channels/{name}/mirrors", message)


@router.post("/channels/{name}/mirrors/{mirror_id}/run")
async def run_now(request: Request, name: str, mirror_id: RowId) -> Response:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    try:
        with resources_of(request).db.writing() as session:
            mirror = mirror_service.get_mirror(session, name, mirror_id)
            run_service.request_run(
                session, mirror, trigger=RunTrigger.manual, requested_by=identity.username
            )
    except HeadwaterError as error:
        return redirect(_back(form, name), error.message)
    return redirect(f"/channels/{name}/history", f"Run of {mirror.mirror_name} queued.")


@router.post("/channels/{name}/mirrors/{mirror_id}/stop")
async def stop(request: Request, name: str, mirror_id: RowId) -> Response:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    try:
        with resources_of(request).db.writing() as session:
            mirror = mirror_service.get_mirror(session, name, mirror_id)
            run_service.stop_run(session, mirror, stopped_by=identity.username)
    except HeadwaterError as error:
        return redirect(_back(form, name), error.message)
    return redirect(_back(form, name), f"Stopping the run of {mirror.mirror_name}.")


@router.post("/channels/{name}/mirrors/{mirror_id}/delete")
async def delete(request: Request, name: str, mirror_id: RowId) -> Response:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    resources = resources_of(request)
    try:
        with resources.db.writing() as session:
            mirror_service.delete_mirror(session, resources.store, name, mirror_id)
    except HeadwaterError as error:
        return redirect(f"/channels/{name}/mirrors", error.message)
    return redirect(f"/channels/{name}/mirrors", "Mirror deleted.")


def _back(form: FormData, name: str) -> str:
    target = str(form.get("back", ""))
    return (
        target
        if target.startswith("/") and not target.startswith("//")
        else f"/channels/{name}/mirrors"
    )


@router.get("/mirrors")
def all_mirrors(request: Request) -> HTMLResponse:
    identity = require_browser_identity(request)
    with resources_of(request).db.reading() as session:
        rows, total = mirror_service.list_all_mirrors(
            session, offset=0, limit=1000, where=access.managed_condition(identity)
        )
        latest = run_service.latest_runs(session, [mirror.id for mirror, _ in rows])
    context = {"rows": rows, "latest": latest, "total": total}
    return render(request, "mirror/all.html", context, identity=identity)


@router.post("/channels/{name}/mirrors/preview")
async def preview(request: Request, name: str) -> HTMLResponse:
    """The Preview button: the form as it stands, judged against the upstream's metadata."""
    identity = require_browser_identity(request)
    form = await read_form(request)
    check_csrf(request, form)
    fields = form_fields(form)
    resources = resources_of(request)
    try:
        with resources.db.reading() as session:
            access.managed_channel(session, name, identity)
            draft = mirror_service.draft_preview_request(
                session,
                name,
                fields,
                policy=resources.policy,
                cve_names=resources.cve_names,
                proxy_allowed=access.may_set_proxy(identity),
            )
        query = PreviewQuery(show="dropped", limit=50)
        result = PreviewOut.of(draft, await preview_mirror(draft, resources.policy, query))
    except HeadwaterError as error:
        return render(request, "mirror/_preview.html", {"error": error.message}, identity=identity)
    return render(
        request, "mirror/_preview.html", {"preview": result, "error": None}, identity=identity
    )


@router.post("/channels/{name}/filters/check")
async def check_filters(request: Request, name: str) -> JSONResponse:
    """Whether the filters in the form, with the channel's (or the mirrors'), leave anything."""
    identity = require_browser_identity(request)
    form = await read_form(request)
    check_csrf(request, form)
    with resources_of(request).db.reading() as session:
        channel = access.managed_channel(session, name, identity)
        mirrors = mirror_service.list_channel_mirrors(session, name)
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
