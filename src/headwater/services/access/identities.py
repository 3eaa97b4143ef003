"""The facts access is decided on, read from the database: who a token stands for and what it
carries, a caller's role on a channel, and the channels a caller may act on, as a query."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from headwater.db import utcnow
from headwater.models import (
    ApiToken,
    Channel,
    ChannelRole,
    GroupMember,
    Membership,
    OrganizationRole,
    Privacy,
    TokenKind,
)
from headwater.services.access.rules import (
    ROLE_SCOPES,
    RULES,
    SESSION,
    Action,
    ChannelFacts,
    Grant,
    Identity,
    Role,
    Scope,
)
from headwater.services.access.tokens import token_digest


def identify(session: Session, token: str | None) -> Identity | None:
    """The identity behind a token; None when there is no token, or it is unknown, expired or
    its user disabled."""
    if not token:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token)))
    if row is None or row.expires_at <= utcnow() or row.user.disabled:
        return None
    organizations = {
        organization_id: OrganizationRole(role)
        for organization_id, role in session.execute(
            select(Membership.organization_id, Membership.role).where(
                Membership.user_id == row.user_id
            )
        )
    }
    groups = frozenset(
        session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == row.user_id))
    )
    return Identity(
        user_id=row.user.id,
        username=row.user.username,
        is_admin=row.user.is_admin,
        organizations=organizations,
        groups=groups,
        grant=_grant(row),
        token_id=row.id,
    )


def _grant(row: ApiToken) -> Grant:
    if row.kind == TokenKind.session:
        return SESSION
    channels = {resource.channel_id: Role[resource.role] for resource in row.channels} or None
    if row.scopes is not None:
        scopes = frozenset(Scope(scope) for scope in row.scopes)
    else:  # resources only: the scopes their roles imply
        scopes = frozenset().union(*(ROLE_SCOPES[role] for role in (channels or {}).values()))
    return Grant(scopes=scopes, channels=channels)


def _granted(session: Session, channel_id: int, identity: Identity | None) -> Role:
    """The highest role granted on the channel to the caller or one of their groups. The query
    runs whether the channel exists or not (channel_id -1), so that the answer for a channel
    nobody may see takes as long as for one that does not exist."""
    if identity is None:
        return Role.none
    grantee = ChannelRole.user_id == identity.user_id
    if identity.groups:
        grantee = or_(grantee, ChannelRole.group_id.in_(identity.groups))
    roles = session.scalars(
        select(ChannelRole.role).where(ChannelRole.channel_id == channel_id, grantee)
    )
    return max((Role.named(role) for role in roles), default=Role.none)


def channel_facts(
    session: Session, identity: Identity | None, *, name: str | None = None, id: int | None = None
) -> tuple[Channel | None, ChannelFacts | None]:
    """The channel named (or with that id), and what the rules need to know of it for this
    caller; (None, None) when there is no such channel."""
    condition = Channel.name == name if name is not None else Channel.id == id
    channel = session.scalar(select(Channel).where(condition))
    granted = _granted(session, channel.id if channel is not None else -1, identity)
    if channel is None:
        return None, None
    return channel, ChannelFacts(
        id=channel.id,
        name=channel.name,
        privacy=Privacy(channel.privacy),
        owner_user_id=channel.owner_user_id,
        owner_org_id=channel.owner_org_id,
        granted=granted,
    )


def channels_where(identity: Identity | None, action: Action) -> ColumnElement[bool]:
    """The channels on which the caller may do `action`, as a query condition: the same
    answer `rules.decide_channel` gives one channel at a time."""
    rule = RULES[action]
    anyone = Channel.privacy == Privacy.public if rule.role <= Role.read else false()
    if identity is None or not identity.grant.allows(rule):
        return anyone
    held = _held_condition(identity, rule.role)
    carried = identity.grant.channels
    if carried is not None:
        within = [channel for channel, role in carried.items() if role >= rule.role]
        held = held & Channel.id.in_(within) if within else false()
    return or_(anyone, held)


def _held_condition(identity: Identity, needed: Role) -> ColumnElement[bool]:
    if identity.is_admin:
        return true()
    owned = [org for org, role in identity.organizations.items() if role == OrganizationRole.owner]
    enough = [role.name for role in Role if role >= needed and role > Role.none]
    grantee = ChannelRole.user_id == identity.user_id
    if identity.groups:
        grantee = or_(grantee, ChannelRole.group_id.in_(identity.groups))
    granted = select(ChannelRole.channel_id).where(grantee, ChannelRole.role.in_(enough))
    conditions = [Channel.owner_user_id == identity.user_id, Channel.id.in_(granted)]
    if owned:
        conditions.append(Channel.owner_org_id.in_(owned))
    if needed <= Role.read:
        conditions.append(Channel.privacy != Privacy.private)
    return or_(*conditions)


def channel_ids_where(session: Session, identity: Identity | None, action: Action) -> list[int]:
    return list(session.scalars(select(Channel.id).where(channels_where(identity, action))))
