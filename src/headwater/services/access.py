"""Who may see and who may change a channel, decided in one place.

Reading a channel's packages: anyone for `public`, any signed-in user for `authenticated`,
the owner and administrators for `private`. Changing a channel, and seeing or changing its
mirrors and their history: the owner and administrators. (Roles and scoped tokens will refine
these predicates; the edges only ever ask these functions.)

A request without a token for a channel it may not read is told to authenticate (401), so
package managers retry with credentials; a signed-in user without access is told the channel
does not exist (404), the same answer as for a name that is free.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from headwater.errors import ChannelNotFoundError, NotAuthenticatedError, PermissionDeniedError
from headwater.models import Channel, Privacy
from headwater.services.auth import Identity
from headwater.services.channels import find_channel


def can_read(identity: Identity | None, channel: Channel) -> bool:
    if channel.privacy == Privacy.public:
        return True
    if identity is None:
        return False
    return channel.privacy == Privacy.authenticated or can_manage(identity, channel)


def can_manage(identity: Identity | None, channel: Channel) -> bool:
    return identity is not None and (identity.is_admin or identity.username == channel.owner)


def may_set_proxy(identity: Identity | None) -> bool:
    """A proxy reaches places the allowlist does not see: administrators only."""
    return identity is not None and identity.is_admin


def readable_condition(identity: Identity | None) -> ColumnElement[bool]:
    """The channels `identity` may read, as a query condition."""
    if identity is not None and identity.is_admin:
        return true()
    if identity is None:
        return Channel.privacy == Privacy.public
    return or_(Channel.privacy != Privacy.private, Channel.owner == identity.username)


def readable_channel_ids(session: Session, identity: Identity | None) -> list[int]:
    return list(session.scalars(select(Channel.id).where(readable_condition(identity))))


def managed_condition(identity: Identity | None) -> ColumnElement[bool]:
    if identity is None:
        return false()
    return true() if identity.is_admin else Channel.owner == identity.username


def readable_channel(session: Session, name: str, identity: Identity | None) -> Channel:
    channel = find_channel(session, name)
    if channel is not None and can_read(identity, channel):
        return channel
    if channel is not None and identity is None:
        raise NotAuthenticatedError(f"channel {name!r} needs a token")
    raise ChannelNotFoundError(f"channel {name!r} does not exist")


def managed_channel(session: Session, name: str, identity: Identity | None) -> Channel:
    channel = readable_channel(session, name, identity)
    if not can_manage(identity, channel):
        raise PermissionDeniedError(
            f"only the owner of channel {name!r} ({channel.owner}) or an administrator can "
            "change it or see its mirrors"
        )
    return channel
