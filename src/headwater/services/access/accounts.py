"""A signed-in user's own account: what they belong to, and their tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.errors import PermissionDeniedError
from headwater.models import ApiToken, Channel, Group, GroupMember, Membership, Organization, User
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import require_channel
from headwater.services.access.rules import Action, Identity, Role
from headwater.services.access.tokens import TokenRequest, issue_personal, revoke_token


@dataclass(frozen=True)
class Account:
    user: User
    organizations: list[tuple[str, str]]  # (organization, role)
    groups: list[str]  # organization/group


def account(session: Session, identity: Identity) -> Account:
    user = session.get_one(User, identity.user_id)
    organizations = [
        (name, str(role))
        for name, role in session.execute(
            select(Organization.name, Membership.role)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(Membership.user_id == identity.user_id)
            .order_by(Organization.name)
        )
    ]
    groups = [
        f"{organization}/{group}"
        for organization, group in session.execute(
            select(Organization.name, Group.name)
            .join(Group, Group.organization_id == Organization.id)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.user_id == identity.user_id)
            .order_by(Organization.name, Group.name)
        )
    ]
    return Account(user, organizations, groups)


def create_token(
    session: Session,
    identity: Identity,
    name: str,
    expires_at: object,
    scopes: list[str] | None,
    resources: list[tuple[str, str]] | None,
    *,
    actor: Actor,
    default_days: int,
    max_days: int,
) -> tuple[ApiToken, str]:
    """A personal token. Each resource names a channel the user can see, with a role no higher
    than their own there (a token never carries more than its user has)."""
    resolved = []
    for channel_name, role_name in resources or ():
        channel = require_channel(session, identity, Action.read_channel, channel_name)
        wanted = Role[role_name] if role_name in Role.__members__ else Role.none
        if wanted > channel.role:
            raise PermissionDeniedError(
                f"you hold the {channel.role.name} role on channel {channel_name!r}; a token "
                f"cannot carry {role_name}"
            )
        resolved.append((channel.id, role_name))
    request = TokenRequest(
        name=name,
        expires_at=expires_at,  # type: ignore[arg-type]
        scopes=scopes,
        resources=resolved if resources is not None else None,
    )
    user = session.get_one(User, identity.user_id)
    row, token = issue_personal(
        session, user, request, default_days=default_days, max_days=max_days
    )
    record(
        session,
        actor,
        "token.create",
        identity.username,
        token_id=row.id,
        name=row.name,
        scopes=row.scopes,
        resources=[[channel, role] for channel, role in resources or ()],
        expires_at=row.expires_at.isoformat(),
    )
    return row, token


def remove_token(session: Session, identity: Identity, token_id: int, *, actor: Actor) -> None:
    row = revoke_token(session, identity.user_id, token_id)
    record(session, actor, "token.revoke", identity.username, token_id=token_id, name=row.name)


def channel_names(session: Session, tokens: list[ApiToken]) -> dict[int, str]:
    ids = {resource.channel_id for token in tokens for resource in token.channels}
    if not ids:
        return {}
    return dict(session.execute(select(Channel.id, Channel.name).where(Channel.id.in_(ids))).all())
