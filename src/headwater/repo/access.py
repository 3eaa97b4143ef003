"""Who may read a channel through the repository URLs, and which channel that is."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from headwater.credentials import repository_token
from headwater.errors import NotAuthenticatedError
from headwater.models import Privacy
from headwater.resources import Resources
from headwater.services.access import readable_channel
from headwater.services.auth import identify


@dataclass(frozen=True)
class ChannelAccess:
    channel_id: int
    name: str
    public: bool

    def cache_control(self, policy: str) -> str:
        """Shared caches may keep what anyone may read, and nothing else."""
        return f"{'public' if self.public else 'private'}, {policy}"


def open_channel(
    resources: Resources, request: Request, path_token: str | None, name: str
) -> ChannelAccess:
    token = repository_token(request, path_token)
    with resources.db.reading() as session:
        identity = identify(session, token) if token else None
        if token and identity is None:
            raise NotAuthenticatedError("the token is unknown or has expired")
        channel = readable_channel(session, name, identity)
        return ChannelAccess(
            channel_id=channel.id, name=channel.name, public=channel.privacy == Privacy.public
        )
