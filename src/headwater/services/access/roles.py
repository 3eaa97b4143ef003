"""Roles on a channel granted to users and groups: listing, granting, taking back."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.errors import InvalidInputError, NotFoundError
from headwater.models import (
    ChannelRole,
    ChannelRoleName,
    Group,
    Organization,
    User,
)
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import ChannelRef
from headwater.services.access.rules import Identity
from headwater.services.access.users import get_user


@dataclass(frozen=True)
class Grantee:
    """`user` is a username; `group` is `organization/group`."""

    kind: str  # "user" or "group"
    name: str
    role: ChannelRoleName


def parse_channel_role(value: str) -> ChannelRoleName:
    try:
        return ChannelRoleName(value)
    except ValueError:
        raise InvalidInputError(f"role {value!r} is not one of read, write, manage") from None


def list_roles(session: Session, channel: ChannelRef) -> list[Grantee]:
    users = session.execute(
        select(User.username, ChannelRole.role)
        .join(ChannelRole, ChannelRole.user_id == User.id)
        .where(ChannelRole.channel_id == channel.id)
        .order_by(User.username)
    )
    groups = session.execute(
        select(Organization.name, Group.name, ChannelRole.role)
        .join(Group, Group.organization_id == Organization.id)
        .join(ChannelRole, ChannelRole.group_id == Group.id)
        .where(ChannelRole.channel_id == channel.id)
        .order_by(Organization.name, Group.name)
    )
    return [Grantee("user", name, ChannelRoleName(role)) for name, role in users] + [
        Grantee("group", f"{organization}/{group}", ChannelRoleName(role))
        for organization, group, role in groups
    ]


def find_group_by_path(session: Session, path: str, seen_by: Identity | None = None) -> Group:
    """A group named `organization/group`; with `seen_by`, only one of an organization that
    caller belongs to (administrators see every one): to anyone else, a group of another
    organization does not exist, as the organization itself does not."""
    organization, _, name = path.partition("/")
    group = session.scalar(
        select(Group)
        .join(Organization, Organization.id == Group.organization_id)
        .where(Organization.name == organization, Group.name == name)
    )
    hidden = (
        seen_by is not None
        and group is not None
        and not seen_by.is_admin
        and group.organization_id not in seen_by.organizations
    )
    if group is None or hidden:
        raise NotFoundError(f"group {path!r} does not exist (name it organization/group)")
    return group


def grant_role(
    session: Session,
    channel: ChannelRef,
    kind: str,
    name: str,
    role: str,
    *,
    actor: Actor,
    granter: Identity,
) -> Grantee:
    """Give a user (`kind` "user") or a group (`kind` "group", `name` organization/group) a
    role on the channel, replacing the one they had. Groups are those of the granter's
    organizations. (Taking a role back needs no such thing: whoever manages the channel sees
    every role on it.)"""
    chosen = parse_channel_role(role)
    group = find_group_by_path(session, name, seen_by=granter) if kind == "group" else None
    row = _find(session, channel, kind, name)
    if row is None:
        row = ChannelRole(channel_id=channel.id, role=chosen)
        if group is not None:
            row.group_id = group.id
        else:
            row.user_id = get_user(session, name).id
        session.add(row)
    row.role = chosen
    record(session, actor, "channel.role", channel.name, **{kind: name, "role": chosen.value})
    session.flush()
    return Grantee(kind, name, chosen)


def revoke_role(
    session: Session, channel: ChannelRef, kind: str, name: str, *, actor: Actor
) -> None:
    row = _held(session, channel, name) if kind == "group" else _find(session, channel, kind, name)
    if row is None:
        raise NotFoundError(f"{kind} {name} has no role on channel {channel.name!r}")
    session.delete(row)
    record(session, actor, "channel.role_remove", channel.name, **{kind: name})
    session.flush()


def _held(session: Session, channel: ChannelRef, path: str) -> ChannelRole | None:
    """The role on the channel of the group named `organization/group`, among the roles the
    channel's managers see: a group of another organization that has none answers as one
    that does not exist."""
    organization, _, name = path.partition("/")
    return session.scalar(
        select(ChannelRole)
        .join(Group, Group.id == ChannelRole.group_id)
        .join(Organization, Organization.id == Group.organization_id)
        .where(
            ChannelRole.channel_id == channel.id,
            Organization.name == organization,
            Group.name == name,
        )
    )


def _find(session: Session, channel: ChannelRef, kind: str, name: str) -> ChannelRole | None:
    if kind == "user":
        grantee = ChannelRole.user_id == get_user(session, name).id
    elif kind == "group":
        grantee = ChannelRole.group_id == find_group_by_path(session, name).id
    else:
        raise InvalidInputError(f"roles are granted to a user or a group, not a {kind!r}")
    return session.scalar(select(ChannelRole).where(ChannelRole.channel_id == channel.id, grantee))
