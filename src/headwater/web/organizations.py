"""Organization pages: the list, and one organization's members, groups and channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.errors import HeadwaterError
from headwater.models import Channel, OrganizationRole
from headwater.params import Offset
from headwater.requires import Allowed, requires
from headwater.services.access import organizations as service
from headwater.services.access.identities import channels_where
from headwater.services.access.rules import Action
from headwater.web.listing import PAGE_SIZE, Sort, sorting
from headwater.web.session import redirect, render, resources_of, submitted

router = APIRouter(include_in_schema=False)


@router.get("/organizations")
def organization_list(
    request: Request,
    offset: Offset = 0,
    sort: Sort = Depends(sorting(*service.ORGANIZATION_SORTS, default="name")),
    allowed: Allowed = requires(Action.list_organizations),
) -> HTMLResponse:
    return _list_page(request, allowed, offset=offset, sort=sort)


def _list_page(
    request: Request,
    allowed: Allowed,
    *,
    error: str | None = None,
    offset: int = 0,
    sort: Sort = Sort("name"),
    status_code: int = 200,
) -> HTMLResponse:
    with resources_of(request).db.reading() as session:
        found, total = service.list_organizations(
            session, allowed.user, offset=offset, limit=PAGE_SIZE, sort=sort
        )
    context = {
        "organizations": found,
        "error": error,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "sort": sort,
    }
    return render(
        request,
        "organization/list.html",
        context,
        identity=allowed.identity,
        status_code=status_code,
    )


@router.post("/organizations")
def create_organization(
    request: Request, allowed: Allowed = requires(Action.create_organization)
) -> Response:
    form = submitted(request)
    name = str(form.get("name", "")).strip()
    try:
        with resources_of(request).db.writing() as session:
            service.create_organization(
                session, name, str(form.get("description", "")), actor=allowed.actor
            )
    except HeadwaterError as error:
        return _list_page(request, allowed, error=error.message, status_code=error.status_code)
    return redirect(f"/organizations/{name}", f"Organization {name} created.")


def _organization_page(
    request: Request, allowed: Allowed, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    identity = allowed.user
    ref = allowed.organization
    with resources_of(request).db.reading() as session:
        organization = service.get_organization(session, ref)
        members = service.list_members(session, ref)
        groups = service.list_groups(session, ref)
        channels = list(
            session.scalars(
                select(Channel.name)
                .where(
                    Channel.owner_org_id == ref.id,
                    channels_where(identity, Action.read_channel),
                )
                .order_by(Channel.name)
            )
        )
    manages = identity.is_admin or identity.organizations.get(ref.id) == OrganizationRole.owner
    context: dict[str, Any] = {
        "organization": organization,
        "members": members,
        "groups": groups,
        "channels": channels,
        "manages": manages,
        "roles": [role.value for role in OrganizationRole],
        "error": error,
    }
    return render(
        request,
        "organization/detail.html",
        context,
        identity=identity,
        status_code=status_code,
    )


@router.get("/organizations/{organization}")
def organization_page(
    request: Request, allowed: Allowed = requires(Action.read_organization)
) -> HTMLResponse:
    return _organization_page(request, allowed)


def _change(request: Request, allowed: Allowed, change: Callable[[Session], str]) -> Response:
    """Make a change to the organization and come back to its page saying what was done, or
    show the page again with the reason it was refused."""
    try:
        with resources_of(request).db.writing() as session:
            message = change(session)
    except HeadwaterError as error:
        return _organization_page(
            request, allowed, error=error.message, status_code=error.status_code
        )
    return redirect(f"/organizations/{allowed.organization.name}", message)


@router.post("/organizations/{organization}/members")
def set_member(
    request: Request, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    form = submitted(request)
    username = str(form.get("username", "")).strip()
    role = str(form.get("role", "member"))

    def change(session: Session) -> str:
        service.set_member(session, allowed.organization, username, role, actor=allowed.actor)
        return f"{username} is now {role} of {allowed.organization.name}."

    return _change(request, allowed, change)


@router.post("/organizations/{organization}/members/remove")
def remove_member(
    request: Request, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    username = str(submitted(request).get("username", ""))

    def change(session: Session) -> str:
        service.remove_member(session, allowed.organization, username, actor=allowed.actor)
        return f"{username} left {allowed.organization.name}."

    return _change(request, allowed, change)


@router.post("/organizations/{organization}/groups")
def create_group(
    request: Request, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    form = submitted(request)
    name = str(form.get("name", "")).strip()
    sso_group = str(form.get("sso_group", "")).strip() or None

    def change(session: Session) -> str:
        service.create_group(session, allowed.organization, name, sso_group, actor=allowed.actor)
        return f"Group {name} created."

    return _change(request, allowed, change)


@router.post("/organizations/{organization}/groups/remove")
def delete_group(
    request: Request, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    name = str(submitted(request).get("group", ""))

    def change(session: Session) -> str:
        service.delete_group(session, allowed.organization, name, actor=allowed.actor)
        return f"Group {name} deleted."

    return _change(request, allowed, change)


@router.post("/organizations/{organization}/groups/members")
def add_group_member(
    request: Request, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    form = submitted(request)
    group, username = str(form.get("group", "")), str(form.get("username", "")).strip()

    def change(session: Session) -> str:
        service.add_group_member(
            session, allowed.organization, group, username, actor=allowed.actor
        )
        return f"{username} joined group {group}."

    return _change(request, allowed, change)


@router.post("/organizations/{organization}/groups/members/remove")
def remove_group_member(
    request: Request, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    form = submitted(request)
    group, username = str(form.get("group", "")), str(form.get("username", ""))

    def change(session: Session) -> str:
        service.remove_group_member(
            session, allowed.organization, group, username, actor=allowed.actor
        )
        return f"{username} left group {group}."

    return _change(request, allowed, change)
