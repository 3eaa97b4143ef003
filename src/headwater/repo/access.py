"""Who may read a channel through the repository URLs, and which channel that is."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from headwater.credentials import repository_token
from headwater.errors import NotAuthenticatedError
from headwater.models import Privacy
from headwater.resources import Resources
from headwater.services.access import can_read, managed_channel, readable_channel
from headwater.services.auth import Identity, identify
from headwater.services.channels import find_channel


@dataclass(frozen=True)
class ChannelAccess:
    channel_id: int
    name: str
    public: bool
    simple_revision: int

    def cache_control(self, policy: str) -> str:
        """Shared caches may keep what anyone may read, and nothing else."""
        return f"{'public' if self.public else 'private'}, {policy}"


def open_channel(
    resources: Resources, request: Request, path_token: str | None, name: str
) -> ChannelAccess:
    token = repository_token(request, path_token)
    if token is None:
        resources.public_channels.forget(name)
    with resources.db.reading() as session:
        identity = identify(session, token) if token else None
        if token and identity is None:
            raise NotAuthenticatedError("the token is unknown or has expired")
        channel = readable_channel(session, name, identity)
        access = ChannelAccess(
            channel_id=channel.id,
            name=channel.name,
            public=channel.privacy == Privacy.public,
            simple_revision=channel.simple_revision,
        )
    if token is None and access.public:
        resources.public_channels.remember(name, access.channel_id, access.simple_revision)
    return access


def refresh_public_channel(resources: Resources, name: str) -> None:
    """Read again what anonymous readers may see of a channel, for the fast path."""
    try:
        with resources.db.reading() as session:
            channel = find_channel(session, name)
            if channel is not None and can_read(None, channel):
                resources.public_channels.remember(name, channel.id, channel.simple_revision)
            else:
                resources.public_channels.forget(name)
    finally:
        resources.public_channels.refreshed(name)


def upload_identity(
    resources: Resources, request: Request, path_token: str | None, name: str
) -> Identity:
    """Who is uploading to the channel's repository URL; they must be able to change it."""
    token = repository_token(request, path_token)
    with resources.db.reading() as session:
        identity = identify(session, token) if token else None
        if identity is None:
            raise NotAuthenticatedError(
                "uploading needs a token: user = the token and password = x-auth-token, or "
                "user = __token__ and password = the token"
            )
        managed_channel(session, name, identity)
        return identity
