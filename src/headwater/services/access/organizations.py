"""Organizations: their members (owners and members), their groups and who is in them,
including the groups single sign-on keeps in step with the identity provider."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import SQLColumnExpression, delete, func, select
from sqlalchemy.orm import Session

from headwater.db import add_unique
from headwater.errors import ConflictError, InvalidInputError, NotFoundError
from headwater.inputs import check_name, check_text
from headwater.models import (
    Channel,
    Group,
    GroupMember,
    Membership,
    Organization,
    OrganizationRole,
    User,
)
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import OrganizationRef
from headwater.services.access.rules import Identity
from headwater.services.access.users import get_user
from headwater.sorting import Sort

NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
NAME_RULE = "1 to 64 lowercase letters, digits, '-' or '_', starting with a letter"
MAX_DESCRIPTION_LENGTH = 2000
MAX_SSO_GROUP_LENGTH = 256


def check_organization_name(name: str) -> str:
    return check_name(name, "organization name", NAME, NAME_RULE)


def check_group_name(name: str) -> str:
    return check_name(name, "group name", NAME, NAME_RULE)


def parse_role(value: str) -> OrganizationRole:
    try:
        return OrganizationRole(value)
    except ValueError:
        raise InvalidInputError(f"role {value!r} is not one of owner, member") from None


def _sso_group(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return check_text(value.strip(), "sso_group", max_length=MAX_SSO_GROUP_LENGTH)


# --- organizations ---------------------------------------------------------------------------


def create_organization(
    session: Session, name: str, description: str, *, actor: Actor
) -> Organization:
    check_organization_name(name)
    organization = Organization(
        name=name,
        description=check_text(
            description, "description", max_length=MAX_DESCRIPTION_LENGTH, multiline=True
        ),
    )
    add_unique(session, organization, ConflictError(f"organization {name!r} already exists"))
    record(session, actor, "organization.create", name)
    return organization


def get_organization(session: Session, organization: OrganizationRef) -> Organization:
    found = session.get(Organization, organization.id)
    if found is None:
        raise NotFoundError(f"organization {organization.name!r} does not exist")
    return found


def find_organization(session: Session, name: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.name == name))


# What the organization list sorts by, in its words.
ORGANIZATION_SORTS: dict[str, SQLColumnExpression[Any]] = {
    "name": Organization.name,
    "created": Organization.created_at,
}


def list_organizations(
    session: Session,
    identity: Identity,
    *,
    offset: int,
    limit: int,
    sort: Sort = Sort("name"),
) -> tuple[list[Organization], int]:
    """Every organization for an administrator; the caller's own for anyone else; by name
    unless told."""
    condition = (
        Organization.id.is_not(None)
        if identity.is_admin
        else Organization.id.in_(list(identity.organizations))
    )
    total = session.scalar(select(func.count(Organization.id)).where(condition)) or 0
    rows = session.scalars(
        select(Organization)
        .where(condition)
        .order_by(
            *sort.order_by({sort.key: ORGANIZATION_SORTS[sort.key], "name": Organization.name})
        )
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total


def update_organization(
    session: Session, organization: OrganizationRef, description: str, *, actor: Actor
) -> Organization:
    found = get_organization(session, organization)
    found.description = check_text(
        description, "description", max_length=MAX_DESCRIPTION_LENGTH, multiline=True
    )
    record(session, actor, "organization.update", organization.name)
    session.flush()
    return found


def delete_organization(session: Session, organization: OrganizationRef, *, actor: Actor) -> None:
    owned = session.scalar(
        select(func.count(Channel.id)).where(Channel.owner_org_id == organization.id)
    )
    if owned:
        raise ConflictError(
            f"organization {organization.name!r} owns {owned} channel(s); delete them or give "
            "them to another owner first"
        )
    session.delete(get_organization(session, organization))
    record(session, actor, "organization.delete", organization.name)
    session.flush()


# --- members ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    username: str
    role: OrganizationRole
    groups: list[str]


def list_members(session: Session, organization: OrganizationRef) -> list[Member]:
    rows = session.execute(
        select(User.id, User.username, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == organization.id)
        .order_by(User.username)
    ).all()
    groups: dict[int, list[str]] = {}
    for user_id, group_name in session.execute(
        select(GroupMember.user_id, Group.name)
        .join(Group, Group.id == GroupMember.group_id)
        .where(Group.organization_id == organization.id)
        .order_by(Group.name)
    ):
        groups.setdefault(user_id, []).append(group_name)
    return [
        Member(username=name, role=OrganizationRole(role), groups=groups.get(user_id, []))
        for user_id, name, role in rows
    ]


def set_member(
    session: Session,
    organization: OrganizationRef,
    username: str,
    role: str,
    *,
    actor: Actor,
) -> Membership:
    """Add a member with `role`, or change their role."""
    user = get_user(session, username)
    chosen = parse_role(role)
    membership = session.get(Membership, (organization.id, user.id))
    if membership is None:
        membership = Membership(organization_id=organization.id, user_id=user.id, role=chosen)
        session.add(membership)
    elif membership.role == chosen:
        return membership
    membership.role = chosen
    record(
        session, actor, "organization.member", organization.name, user=username, role=chosen.value
    )
    session.flush()
    return membership


def remove_member(
    session: Session, organization: OrganizationRef, username: str, *, actor: Actor
) -> None:
    """Take a user out of the organization, and out of each of its groups."""
    user = get_user(session, username)
    membership = session.get(Membership, (organization.id, user.id))
    if membership is None:
        raise NotFoundError(f"{username} is not a member of {organization.name}")
    session.delete(membership)
    _leave_groups(session, user.id, organization.id)
    record(session, actor, "organization.member_remove", organization.name, user=username)
    session.flush()


def _leave_groups(session: Session, user_id: int, organization_id: int) -> None:
    in_organization = select(Group.id).where(Group.organization_id == organization_id)
    session.execute(
        delete(GroupMember).where(
            GroupMember.user_id == user_id, GroupMember.group_id.in_(in_organization)
        )
    )


def _ensure_member(session: Session, organization_id: int, user_id: int) -> None:
    if session.get(Membership, (organization_id, user_id)) is None:
        session.add(
            Membership(
                organization_id=organization_id, user_id=user_id, role=OrganizationRole.member
            )
        )


# --- groups ----------------------------------------------------------------------------------


def find_group(session: Session, organization_id: int, name: str) -> Group | None:
    return session.scalar(
        select(Group).where(Group.organization_id == organization_id, Group.name == name)
    )


def get_group(session: Session, organization: OrganizationRef, name: str) -> Group:
    group = find_group(session, organization.id, name)
    if group is None:
        raise NotFoundError(f"organization {organization.name!r} has no group {name!r}")
    return group


@dataclass(frozen=True)
class GroupSummary:
    group: Group
    members: list[str]


def list_groups(session: Session, organization: OrganizationRef) -> list[GroupSummary]:
    groups = list(
        session.scalars(
            select(Group).where(Group.organization_id == organization.id).order_by(Group.name)
        )
    )
    members: dict[int, list[str]] = {group.id: [] for group in groups}
    for group_id, username in session.execute(
        select(GroupMember.group_id, User.username)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id.in_(list(members)))
        .order_by(User.username)
    ):
        members[group_id].append(username)
    return [GroupSummary(group, members[group.id]) for group in groups]


def create_group(
    session: Session,
    organization: OrganizationRef,
    name: str,
    sso_group: str | None,
    *,
    actor: Actor,
) -> Group:
    check_group_name(name)
    group = Group(organization_id=organization.id, name=name, sso_group=_sso_group(sso_group))
    add_unique(
        session,
        group,
        ConflictError(f"organization {organization.name!r} already has a group {name!r}"),
    )
    record(
        session,
        actor,
        "group.create",
        f"{organization.name}/{name}",
        sso_group=group.sso_group,
    )
    return group


def update_group(
    session: Session,
    organization: OrganizationRef,
    name: str,
    sso_group: str | None,
    *,
    actor: Actor,
) -> Group:
    group = get_group(session, organization, name)
    group.sso_group = _sso_group(sso_group)
    record(session, actor, "group.update", f"{organization.name}/{name}", sso_group=group.sso_group)
    session.flush()
    return group


def delete_group(
    session: Session, organization: OrganizationRef, name: str, *, actor: Actor
) -> None:
    session.delete(get_group(session, organization, name))
    record(session, actor, "group.delete", f"{organization.name}/{name}")
    session.flush()


def add_group_member(
    session: Session, organization: OrganizationRef, name: str, username: str, *, actor: Actor
) -> None:
    """Put a user in a group; they become a member of its organization if they were not."""
    group = get_group(session, organization, name)
    user = get_user(session, username)
    if session.get(GroupMember, (group.id, user.id)) is not None:
        return
    _ensure_member(session, organization.id, user.id)
    session.add(GroupMember(group_id=group.id, user_id=user.id, from_sso=False))
    record(session, actor, "group.member", f"{organization.name}/{name}", user=username)
    session.flush()


def remove_group_member(
    session: Session, organization: OrganizationRef, name: str, username: str, *, actor: Actor
) -> None:
    group = get_group(session, organization, name)
    user = get_user(session, username)
    member = session.get(GroupMember, (group.id, user.id))
    if member is None:
        raise NotFoundError(f"{username} is not in group {organization.name}/{name}")
    session.delete(member)
    record(session, actor, "group.member_remove", f"{organization.name}/{name}", user=username)
    session.flush()


def sync_sso_groups(session: Session, user: User, provider_groups: Iterable[str]) -> list[str]:
    """After a single sign-on: the user is in exactly the groups whose `sso_group` the
    provider reported (joining their organizations as a member where needed), among the
    groups mapped to the provider; groups an owner manages by hand are left alone. Returns the
    groups the user is in now, as `organization/group`."""
    reported = {name for name in provider_groups if name}
    mapped = list(
        session.execute(
            select(Group, Organization.name)
            .join(Organization, Organization.id == Group.organization_id)
            .where(Group.sso_group.is_not(None))
        )
    )
    joined = []
    for group, organization_name in mapped:
        member = session.get(GroupMember, (group.id, user.id))
        if group.sso_group in reported:
            joined.append(f"{organization_name}/{group.name}")
            if member is None:
                _ensure_member(session, group.organization_id, user.id)
                session.add(GroupMember(group_id=group.id, user_id=user.id, from_sso=True))
        elif member is not None and member.from_sso:
            session.delete(member)
    session.flush()
    return sorted(joined)
