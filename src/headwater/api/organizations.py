"""REST for organizations: their members and groups."""

from __future__ import annotations

from fastapi import APIRouter, Response

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.api.pagination import Page, PagingDep
from headwater.requires import Allowed, requires
from headwater.schemas.access import (
    GroupChange,
    GroupCreate,
    GroupOut,
    MemberIn,
    MemberOut,
    OrganizationChange,
    OrganizationCreate,
    OrganizationOut,
)
from headwater.services.access import organizations as service
from headwater.services.access.rules import Action

router = APIRouter(prefix="/api/organizations", tags=["organizations"], route_class=StrictJsonRoute)


@router.get("")
def list_organizations(
    resources: ResourcesDep,
    page: PagingDep,
    allowed: Allowed = requires(Action.list_organizations),
) -> Page[OrganizationOut]:
    """The caller's organizations (every one, for an administrator)."""
    with resources.db.reading() as session:
        found, total = service.list_organizations(
            session, allowed.user, offset=page.offset, limit=page.limit
        )
        return Page(items=[OrganizationOut.of(o) for o in found], total_count=total)


@router.post("", status_code=201)
def create_organization(
    body: OrganizationCreate,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.create_organization),
) -> OrganizationOut:
    with resources.db.writing() as session:
        created = service.create_organization(
            session, body.name, body.description, actor=allowed.actor
        )
        return OrganizationOut.of(created)


@router.get("/{organization}")
def show_organization(
    resources: ResourcesDep, allowed: Allowed = requires(Action.read_organization)
) -> OrganizationOut:
    with resources.db.reading() as session:
        return OrganizationOut.of(service.get_organization(session, allowed.organization))


@router.patch("/{organization}")
def update_organization(
    body: OrganizationChange,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_organization),
) -> OrganizationOut:
    with resources.db.writing() as session:
        changed = service.update_organization(
            session, allowed.organization, body.description, actor=allowed.actor
        )
        return OrganizationOut.of(changed)


@router.delete("/{organization}", status_code=204)
def delete_organization(
    resources: ResourcesDep, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    """Delete an organization that owns no channel; its groups and memberships go with it."""
    with resources.db.writing() as session:
        service.delete_organization(session, allowed.organization, actor=allowed.actor)
    return Response(status_code=204)


@router.get("/{organization}/members")
def list_members(
    resources: ResourcesDep, allowed: Allowed = requires(Action.read_organization)
) -> Page[MemberOut]:
    with resources.db.reading() as session:
        members = service.list_members(session, allowed.organization)
    items = [MemberOut(username=m.username, role=m.role, groups=m.groups) for m in members]
    return Page(items=items, total_count=len(items))


@router.put("/{organization}/members/{username}")
def set_member(
    username: str,
    body: MemberIn,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_organization),
) -> MemberOut:
    """Add a member (`role`: owner or member), or change their role."""
    with resources.db.writing() as session:
        service.set_member(session, allowed.organization, username, body.role, actor=allowed.actor)
        member = next(
            m for m in service.list_members(session, allowed.organization) if m.username == username
        )
    return MemberOut(username=member.username, role=member.role, groups=member.groups)


@router.delete("/{organization}/members/{username}", status_code=204)
def remove_member(
    username: str,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_organization),
) -> Response:
    """Take a member out of the organization and of its groups."""
    with resources.db.writing() as session:
        service.remove_member(session, allowed.organization, username, actor=allowed.actor)
    return Response(status_code=204)


def _group_out(summary: service.GroupSummary) -> GroupOut:
    group = summary.group
    return GroupOut(name=group.name, sso_group=group.sso_group, members=summary.members)


def _summary(session: object, allowed: Allowed, name: str) -> GroupOut:
    groups = service.list_groups(session, allowed.organization)  # type: ignore[arg-type]
    return _group_out(next(g for g in groups if g.group.name == name))


@router.get("/{organization}/groups")
def list_groups(
    resources: ResourcesDep, allowed: Allowed = requires(Action.read_organization)
) -> Page[GroupOut]:
    with resources.db.reading() as session:
        items = [_group_out(g) for g in service.list_groups(session, allowed.organization)]
    return Page(items=items, total_count=len(items))


@router.post("/{organization}/groups", status_code=201)
def create_group(
    body: GroupCreate,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_organization),
) -> GroupOut:
    """A group of the organization's members; with `sso_group`, its members are those the
    identity provider says are in that group, kept in step at each of their sign-ins."""
    with resources.db.writing() as session:
        service.create_group(
            session, allowed.organization, body.name, body.sso_group, actor=allowed.actor
        )
        return _summary(session, allowed, body.name)


@router.patch("/{organization}/groups/{group}")
def update_group(
    group: str,
    body: GroupChange,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_organization),
) -> GroupOut:
    with resources.db.writing() as session:
        service.update_group(
            session, allowed.organization, group, body.sso_group, actor=allowed.actor
        )
        return _summary(session, allowed, group)


@router.delete("/{organization}/groups/{group}", status_code=204)
def delete_group(
    group: str, resources: ResourcesDep, allowed: Allowed = requires(Action.manage_organization)
) -> Response:
    with resources.db.writing() as session:
        service.delete_group(session, allowed.organization, group, actor=allowed.actor)
    return Response(status_code=204)


@router.put("/{organization}/groups/{group}/members/{username}")
def add_group_member(
    group: str,
    username: str,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_organization),
) -> GroupOut:
    """Put a user in the group (and in the organization, as a member, if they were not)."""
    with resources.db.writing() as session:
        service.add_group_member(
            session, allowed.organization, group, username, actor=allowed.actor
        )
        return _summary(session, allowed, group)


@router.delete("/{organization}/groups/{group}/members/{username}", status_code=204)
def remove_group_member(
    group: str,
    username: str,
    resources: ResourcesDep,
    allowed: Allowed = requires(Action.manage_organization),
) -> Response:
    with resources.db.writing() as session:
        service.remove_group_member(
            session, allowed.organization, group, username, actor=allowed.actor
        )
    return Response(status_code=204)
