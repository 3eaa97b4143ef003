"""Channel pages: the list with its create form, and a channel's Packages, Revisions, Mirrors,
History and Settings tabs (with who holds which role on it)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from headwater.dependencies.settings import PLATFORMS
from headwater.errors import HeadwaterError
from headwater.models import Channel, ChannelRoleName, Privacy, RunState
from headwater.params import Offset, RowId
from headwater.requires import Allowed, requires
from headwater.schemas.runs import Progress
from headwater.services import channel_revisions as revision_service
from headwater.services import channels as channel_service
from headwater.services import cves as cve_service
from headwater.services import mirrors as mirror_service
from headwater.services import packages as package_service
from headwater.services import run_queue
from headwater.services import runs as run_service
from headwater.services.access import roles as role_service
from headwater.services.access.decisions import require_organization
from headwater.services.access.identities import channels_where
from headwater.services.access.organizations import list_organizations
from headwater.services.access.rules import Action, Role
from headwater.upstreams.http import shown_url
from headwater.web.filter_form import filter_context, filters_from_form
from headwater.web.listing import PAGE_SIZE, Sort, sorting
from headwater.web.session import redirect, render, resources_of, submitted

router = APIRouter(include_in_schema=False)


@router.get("/channels")
def channel_list(
    request: Request,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*channel_service.CHANNEL_SORTS, default="name")),
    allowed: Allowed = requires(Action.list_channels),
) -> HTMLResponse:
    return _channel_list(request, allowed, error=None, form={}, offset=offset, sort=sort)


def _channel_list(
    request: Request,
    allowed: Allowed,
    *,
    error: str | None,
    form: dict[str, str],
    offset: int = 0,
    sort: Sort = Sort("name"),
    status_code: int = 200,
) -> HTMLResponse:
    identity = allowed.identity
    with resources_of(request).db.reading() as session:
        channels, total = channel_service.list_channels(
            session,
            offset=offset,
            limit=PAGE_SIZE,
            where=channels_where(identity, Action.read_channel),
            sort=sort,
        )
        stats = channel_service.channel_stats(session, [channel.id for channel in channels])
        organizations = (
            list_organizations(session, identity, offset=0, limit=1000)[0] if identity else []
        )
    context = {
        "channels": channels,
        "stats": stats,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
        "privacies": [privacy.value for privacy in Privacy],
        "organizations": [o.name for o in organizations],
        "error": error,
        "form": form,
    }
    return render(request, "channel/list.html", context, identity=identity, status_code=status_code)


@router.post("/channels")
def create_channel(
    request: Request, allowed: Allowed = requires(Action.create_channel)
) -> Response:
    form = submitted(request)
    fields = {
        key: str(form.get(key, "")).strip()
        for key in ("name", "description", "privacy", "organization")
    }
    try:
        with resources_of(request).db.writing() as session:
            organization = None
            if fields["organization"]:
                organization = require_organization(
                    session, allowed.user, Action.manage_organization, fields["organization"]
                )
            channel_service.create_channel(
                session,
                fields["name"],
                actor=allowed.actor,
                organization=organization,
                description=fields["description"],
                privacy=fields["privacy"] or Privacy.public,
            )
    except HeadwaterError as error:
        return _channel_list(
            request, allowed, error=error.message, form=fields, status_code=error.status_code
        )
    return redirect(f"/channels/{fields['name']}/mirrors", f"Channel {fields['name']} created.")


@router.get("/channels/{channel}")
def channel_home(allowed: Allowed = requires(Action.read_channel)) -> Response:
    return redirect(f"/channels/{allowed.channel.name}/packages")


def channel_context(request: Request, allowed: Allowed) -> dict[str, Any]:
    """What every tab of a channel shows: the channel, its counts, the tabs the caller has."""
    ref = allowed.channel
    with resources_of(request).db.reading() as session:
        channel = session.get_one(Channel, ref.id)
        stats = channel_service.channel_stats(session, [ref.id])[ref.id]
        subdirs = package_service.published_subdirs(session, ref.id, channel.head)
        cve_count = cve_service.channel_cve_count(session, ref.id)
    return {
        "channel": channel,
        "stats": stats,
        "subdirs": subdirs,
        "cve_count": cve_count,
        "can_manage": ref.role >= Role.manage,
    }


@router.get("/channels/{channel}/packages")
def packages_tab(
    request: Request,
    q: str | None = None,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*package_service.PACKAGE_SORTS, default="name")),
    allowed: Allowed = requires(Action.read_channel),
) -> HTMLResponse:
    context = channel_context(request, allowed)
    with resources_of(request).db.reading() as session:
        summaries, total = package_service.list_packages(
            session, allowed.channel, offset=offset, limit=PAGE_SIZE, search=q, sort=sort
        )
    context.update(
        tab="packages",
        packages=summaries,
        total=total,
        q=q or "",
        offset=offset,
        page_size=PAGE_SIZE,
        sort=sort,
    )
    return render(request, "channel/packages.html", context, identity=allowed.identity)


@router.get("/channels/{channel}/packages/{package}")
def package_page(
    request: Request,
    package: str,
    offset: Offset = 0,
    allowed: Allowed = requires(Action.read_channel),
) -> HTMLResponse:
    """The package's install commands and its Files list, grouped by version, newest first,
    a page of about PAGE_SIZE files at a time (whole versions where they fit)."""
    context = channel_context(request, allowed)
    with resources_of(request).db.reading() as session:
        page = package_service.package_files_page(
            session, allowed.channel, package, offset=offset, limit=PAGE_SIZE
        )
        shown = [file.id for group in page.groups for file in group.files]
        cves = cve_service.file_cves(session, shown)
    context.update(tab="packages", package=package, page=page, cves=cves)
    return render(request, "channel/package.html", context, identity=allowed.identity)


@router.get("/channels/{channel}/mirrors")
def mirrors_tab(request: Request, allowed: Allowed = requires(Action.read_mirrors)) -> HTMLResponse:
    context = channel_context(request, allowed)
    with resources_of(request).db.reading() as session:
        mirrors = mirror_service.list_channel_mirrors(session, allowed.channel)
        latest = run_service.latest_runs(session, [mirror.id for mirror in mirrors])
    context.update(tab="mirrors", mirrors=mirrors, latest=latest)
    return render(request, "channel/mirrors.html", context, identity=allowed.identity)


@router.get("/channels/{channel}/history")
def history_tab(
    request: Request,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*run_service.HISTORY_SORTS, default="-run")),
    allowed: Allowed = requires(Action.read_mirrors),
) -> HTMLResponse:
    context = channel_context(request, allowed)
    with resources_of(request).db.reading() as session:
        mirrors = mirror_service.list_channel_mirrors(session, allowed.channel)
        names = {mirror.id: mirror.mirror_name for mirror in mirrors}
        history, total = run_service.list_runs(
            session, mirror_ids=list(names), offset=offset, limit=PAGE_SIZE, sort=sort
        )
        reasons = run_queue.pending_reasons(session, history)
    context.update(
        tab="history",
        runs=history,
        paces={run.id: Progress.of(run) for run in history if run.state == RunState.running},
        reasons=reasons,
        mirror_names=names,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        sort=sort,
    )
    return render(request, "channel/history.html", context, identity=allowed.identity)


@router.get("/channels/{channel}/revisions")
def revisions_tab(
    request: Request,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*revision_service.REVISION_SORTS, default="-number")),
    allowed: Allowed = requires(Action.read_channel),
) -> HTMLResponse:
    context = channel_context(request, allowed)
    with resources_of(request).db.reading() as session:
        revisions, total = revision_service.list_revisions(
            session, allowed.channel, offset=offset, limit=PAGE_SIZE, sort=sort
        )
    context.update(
        tab="revisions",
        revisions=revisions,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        sort=sort,
    )
    return render(request, "channel/revisions.html", context, identity=allowed.identity)


@router.post("/channels/{channel}/revisions/{number}/rollback")
def rollback(
    request: Request, number: RowId, allowed: Allowed = requires(Action.edit_channel)
) -> Response:
    resources = resources_of(request)
    name = allowed.channel.name
    try:
        landed = revision_service.rollback(
            resources.db,
            resources.store,
            allowed.channel,
            number,
            actor=allowed.actor,
            cve_names=resources.cve_names,
        )
    except HeadwaterError as error:
        return redirect(f"/channels/{name}/revisions", error.message)
    return redirect(
        f"/channels/{name}/revisions",
        f"Rolled back: revision {landed.number} holds what revision {number} held.",
    )


@router.post("/channels/{channel}/revisions/{number}/keep")
def keep(
    request: Request, number: RowId, allowed: Allowed = requires(Action.edit_channel)
) -> Response:
    form = submitted(request)
    name = allowed.channel.name
    keep_as = str(form.get("keep", "")).strip() or None
    try:
        with resources_of(request).db.writing() as session:
            revision_service.keep_revision(
                session, allowed.channel, number, keep_as, actor=allowed.actor
            )
    except HeadwaterError as error:
        return redirect(f"/channels/{name}/revisions", error.message)
    said = (
        f"Revision {number} is kept as {keep_as}."
        if keep_as
        else f"Revision {number} is no longer kept."
    )
    return redirect(f"/channels/{name}/revisions", said)


# A must_install line's platform, after its last "@": `numpy >=1.26 @ linux-64`. A PEP 508
# direct reference (`name @ https://...`) ends with a URL, which this never matches.
_PLATFORM_SUFFIX = re.compile(r"[a-z0-9_-]+")


def must_install_entry(line: str) -> dict[str, str | None]:
    """One line of the must_install box: a spec, optionally `@ platform` at its end."""
    spec, at, platform = line.rpartition("@")
    if at and spec.strip() and _PLATFORM_SUFFIX.fullmatch(platform.strip()):
        return {"spec": spec.strip(), "platform": platform.strip()}
    return {"spec": line.strip(), "platform": None}


def must_install_line(entry: dict[str, Any]) -> str:
    return f"{entry['spec']} @ {entry['platform']}" if entry.get("platform") else entry["spec"]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _dependency_fields(channel: Channel) -> dict[str, str]:
    """The Dependency check form as the channel stands: one spec, one URL a line."""
    return {
        "must_install": "\n".join(must_install_line(e) for e in channel.must_install or ()),
        "also_available": "\n".join(shown_url(url) or url for url in channel.also_available or ()),
        "on_unsolvable": channel.on_unsolvable,
    }


def _dependency_changes(form: FormData) -> tuple[dict[str, str], dict[str, Any]]:
    """The Dependency check form as sent, and the changes it makes (the whole set: an empty box
    clears what was stored)."""
    fields = {
        key: str(form.get(key, "")) for key in ("must_install", "also_available", "on_unsolvable")
    }
    entries = [must_install_entry(line) for line in _lines(fields["must_install"])]
    changes = {
        "must_install": entries or None,
        "also_available": _lines(fields["also_available"]) or None,
        "on_unsolvable": fields["on_unsolvable"].strip() or None,
    }
    return fields, changes


def _settings_page(
    request: Request,
    allowed: Allowed,
    *,
    error: str | None = None,
    filter_error: str | None = None,
    role_error: str | None = None,
    dependency_error: str | None = None,
    filters: dict[str, Any] | None = None,
    dependencies: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = channel_context(request, allowed)
    channel = context["channel"]
    assert isinstance(channel, Channel)
    with resources_of(request).db.reading() as session:
        granted = role_service.list_roles(session, allowed.channel)
    context.update(
        tab="settings",
        privacies=[privacy.value for privacy in Privacy],
        roles=[role.value for role in ChannelRoleName],
        granted=granted,
        error=error,
        filter_error=filter_error,
        role_error=role_error,
        dependency_error=dependency_error,
        filters=filters if filters is not None else channel.filters.to_json(),
        dependencies=dependencies if dependencies is not None else _dependency_fields(channel),
        platforms=PLATFORMS,
        **filter_context(),
    )
    return render(
        request,
        "channel/settings.html",
        context,
        identity=allowed.identity,
        status_code=status_code,
    )


@router.get("/channels/{channel}/settings")
def settings_tab(
    request: Request, allowed: Allowed = requires(Action.edit_channel)
) -> HTMLResponse:
    return _settings_page(request, allowed)


@router.post("/channels/{channel}/settings")
def save_settings(request: Request, allowed: Allowed = requires(Action.edit_channel)) -> Response:
    """The Channel form (description, privacy), or with `section=dependencies` the Dependency
    check form (must_install, also_available, on_unsolvable)."""
    form = submitted(request)
    resources = resources_of(request)
    dependencies = str(form.get("section", "")) == "dependencies"
    sent: dict[str, str] | None = None
    if dependencies:
        sent, changes = _dependency_changes(form)
    else:
        changes = {
            "description": str(form.get("description", "")),
            "privacy": str(form.get("privacy", "")),
        }
    try:
        with resources.db.writing() as session:
            channel_service.update_channel(
                session,
                allowed.channel,
                changes,
                actor=allowed.actor,
                allowlist=resources.policy.allowlist,
            )
    except HeadwaterError as error:
        if dependencies:
            return _settings_page(
                request,
                allowed,
                dependency_error=error.message,
                dependencies=sent,
                status_code=error.status_code,
            )
        return _settings_page(request, allowed, error=error.message, status_code=error.status_code)
    if dependencies:
        return redirect(
            f"/channels/{allowed.channel.name}/settings",
            "Dependency check saved; it applies from each mirror's next run.",
        )
    return redirect(f"/channels/{allowed.channel.name}/settings", "Channel saved.")


@router.post("/channels/{channel}/filters")
def save_filters(request: Request, allowed: Allowed = requires(Action.edit_channel)) -> Response:
    """The channel's whole filter set, as the form shows it."""
    form = submitted(request)
    filters = filters_from_form(form)
    try:
        with resources_of(request).db.writing() as session:
            channel_service.update_channel(
                session, allowed.channel, {"filters": filters}, actor=allowed.actor
            )
    except HeadwaterError as error:
        shown = {key: value for key, value in filters.items() if value is not None}
        return _settings_page(
            request,
            allowed,
            filter_error=error.message,
            filters=shown,
            status_code=error.status_code,
        )
    return redirect(
        f"/channels/{allowed.channel.name}/settings",
        "Filters saved; they apply from each mirror's next run.",
    )


@router.post("/channels/{channel}/roles")
def grant_role(request: Request, allowed: Allowed = requires(Action.edit_channel)) -> Response:
    """Give a user or a group (organization/group) a role on the channel."""
    form = submitted(request)
    kind = str(form.get("kind", "user"))
    name = str(form.get("name", "")).strip()
    role = str(form.get("role", ""))
    try:
        with resources_of(request).db.writing() as session:
            role_service.grant_role(
                session,
                allowed.channel,
                kind,
                name,
                role,
                actor=allowed.actor,
                granter=allowed.user,
            )
    except HeadwaterError as error:
        return _settings_page(
            request, allowed, role_error=error.message, status_code=error.status_code
        )
    return redirect(
        f"/channels/{allowed.channel.name}/settings", f"{name} now holds the {role} role."
    )


@router.post("/channels/{channel}/roles/remove")
def revoke_role(request: Request, allowed: Allowed = requires(Action.edit_channel)) -> Response:
    form = submitted(request)
    kind = str(form.get("kind", "user"))
    name = str(form.get("name", ""))
    try:
        with resources_of(request).db.writing() as session:
            role_service.revoke_role(session, allowed.channel, kind, name, actor=allowed.actor)
    except HeadwaterError as error:
        return _settings_page(
            request, allowed, role_error=error.message, status_code=error.status_code
        )
    return redirect(f"/channels/{allowed.channel.name}/settings", f"{name}'s role removed.")


@router.post("/channels/{channel}/delete")
def delete_channel(request: Request, allowed: Allowed = requires(Action.edit_channel)) -> Response:
    resources = resources_of(request)
    with resources.db.writing() as session:
        channel_service.delete_channel(session, allowed.channel, actor=allowed.actor)
    return redirect("/channels", f"Channel {allowed.channel.name} deleted.")
