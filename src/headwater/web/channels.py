"""Channel pages: the list with its create form, and a channel's Packages, Mirrors, History and
Settings tabs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from headwater.errors import HeadwaterError
from headwater.models import Channel, Privacy
from headwater.params import Offset
from headwater.services import access
from headwater.services import channels as channel_service
from headwater.services import cves as cve_service
from headwater.services import mirrors as mirror_service
from headwater.services import packages as package_service
from headwater.services import runs as run_service
from headwater.services.auth import Identity
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
PAGE_SIZE = 100


@router.get("/channels")
def channel_list(request: Request) -> HTMLResponse:
    identity = require_browser_identity(request)
    return _channel_list(request, identity, error=None, form={})


def _channel_list(
    request: Request,
    identity: Identity,
    *,
    error: str | None,
    form: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        channels, total = channel_service.list_channels(
            session, offset=0, limit=1000, where=access.readable_condition(identity)
        )
        stats = channel_service.channel_stats(session, [channel.id for channel in channels])
    context = {
        "channels": channels,
        "stats": stats,
        "total": total,
        "privacies": [privacy.value for privacy in Privacy],
        "error": error,
        "form": form,
    }
    return render(request, "channel/list.html", context, identity=identity, status_code=status_code)


@router.post("/channels")
async def create_channel(request: Request) -> Response:
    identity = require_browser_identity(request)
    form = await read_form(request)
    check_csrf(request, form)
    fields = {key: str(form.get(key, "")) for key in ("name", "description", "privacy")}
    try:
        with resources_of(request).db.writing() as session:
            channel_service.create_channel(
                session,
                fields["name"].strip(),
                owner=identity.username,
                description=fields["description"],
                privacy=fields["privacy"] or Privacy.public,
            )
    except HeadwaterError as error:
        return _channel_list(
            request, identity, error=error.message, form=fields, status_code=error.status_code
        )
    return redirect(
        f"/channels/{fields['name'].strip()}/mirrors", f"Channel {fields['name'].strip()} created."
    )


@router.get("/channels/{name}")
def channel_home(request: Request, name: str) -> Response:
    return redirect(f"/channels/{name}/packages")


def channel_context(
    request: Request, name: str, identity: Identity, *, manage: bool = False
) -> dict[str, object]:
    with resources_of(request).db.reading() as session:
        if manage:
            channel = access.managed_channel(session, name, identity)
        else:
            channel = access.readable_channel(session, name, identity)
        stats = channel_service.channel_stats(session, [channel.id])[channel.id]
        subdirs = package_service.published_subdirs(session, channel.id)
        cve_count = cve_service.channel_cve_count(session, channel.id)
    return {
        "channel": channel,
        "stats": stats,
        "subdirs": subdirs,
        "cve_count": cve_count,
        "can_manage": access.can_manage(identity, channel),
    }


@router.get("/channels/{name}/packages")
def packages_tab(
    request: Request, name: str, q: str | None = None, offset: Offset = 0
) -> HTMLResponse:
    identity = require_browser_identity(request)
    context = channel_context(request, name, identity)
    with resources_of(request).db.reading() as session:
        summaries, total = package_service.list_packages(
            session, name, offset=max(offset, 0), limit=PAGE_SIZE, search=q
        )
    context.update(
        tab="packages",
        packages=summaries,
        total=total,
        q=q or "",
        offset=offset,
        page_size=PAGE_SIZE,
    )
    return render(request, "channel/packages.html", context, identity=identity)


@router.get("/channels/{name}/packages/{package}")
def package_page(request: Request, name: str, package: str) -> HTMLResponse:
    identity = require_browser_identity(request)
    context = channel_context(request, name, identity)
    with resources_of(request).db.reading() as session:
        files = package_service.get_package_files(session, name, package)
        cves = cve_service.file_cves(session, [file.id for file in files])
    context.update(tab="packages", package=package, files=files, cves=cves)
    return render(request, "channel/package.html", context, identity=identity)


@router.get("/channels/{name}/mirrors")
def mirrors_tab(request: Request, name: str) -> HTMLResponse:
    identity = require_browser_identity(request)
    context = channel_context(request, name, identity, manage=True)
    with resources_of(request).db.reading() as session:
        mirrors = mirror_service.list_channel_mirrors(session, name)
        latest = run_service.latest_runs(session, [mirror.id for mirror in mirrors])
    context.update(tab="mirrors", mirrors=mirrors, latest=latest)
    return render(request, "channel/mirrors.html", context, identity=identity)


@router.get("/channels/{name}/history")
def history_tab(request: Request, name: str, offset: Offset = 0) -> HTMLResponse:
    identity = require_browser_identity(request)
    context = channel_context(request, name, identity, manage=True)
    with resources_of(request).db.reading() as session:
        mirrors = mirror_service.list_channel_mirrors(session, name)
        names = {mirror.id: mirror.mirror_name for mirror in mirrors}
        history, total = run_service.list_runs(
            session, mirror_ids=list(names), offset=max(offset, 0), limit=PAGE_SIZE
        )
    context.update(
        tab="history",
        runs=history,
        mirror_names=names,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
    )
    return render(request, "channel/history.html", context, identity=identity)


def _settings_page(
    request: Request,
    name: str,
    identity: Identity,
    *,
    error: str | None = None,
    filter_error: str | None = None,
    filters: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = channel_context(request, name, identity, manage=True)
    channel = context["channel"]
    assert isinstance(channel, Channel)
    context.update(
        tab="settings",
        privacies=[privacy.value for privacy in Privacy],
        error=error,
        filter_error=filter_error,
        filters=filters if filters is not None else channel.filters.to_json(),
        **filter_context(),
    )
    return render(
        request, "channel/settings.html", context, identity=identity, status_code=status_code
    )


@router.get("/channels/{name}/settings")
def settings_tab(request: Request, name: str) -> HTMLResponse:
    identity = require_browser_identity(request)
    return _settings_page(request, name, identity)


@router.post("/channels/{name}/settings")
async def save_settings(request: Request, name: str) -> Response:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    changes = {
        "description": str(form.get("description", "")),
        "privacy": str(form.get("privacy", "")),
    }
    try:
        with resources_of(request).db.writing() as session:
            channel_service.update_channel(session, name, changes)
    except HeadwaterError as error:
        return _settings_page(
            request, name, identity, error=error.message, status_code=error.status_code
        )
    return redirect(f"/channels/{name}/settings", "Channel saved.")


@router.post("/channels/{name}/filters")
async def save_filters(request: Request, name: str) -> Response:
    """The channel's whole filter set, as the form shows it."""
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    filters = filters_from_form(form)
    try:
        with resources_of(request).db.writing() as session:
            channel_service.update_channel(session, name, {"filters": filters})
    except HeadwaterError as error:
        shown = {key: value for key, value in filters.items() if value is not None}
        return _settings_page(
            request,
            name,
            identity,
            filter_error=error.message,
            filters=shown,
            status_code=error.status_code,
        )
    return redirect(
        f"/channels/{name}/settings", "Filters saved; they apply from each mirror's next run."
    )


@router.post("/channels/{name}/delete")
async def delete_channel(request: Request, name: str) -> Response:
    identity = require_browser_identity(request)
    managed(request, name, identity)
    form = await read_form(request)
    check_csrf(request, form)
    resources = resources_of(request)
    with resources.db.writing() as session:
        channel_service.delete_channel(session, resources.store, name)
    return redirect("/channels", f"Channel {name} deleted.")
