"""What the repository URLs share about the channel they serve: who may cache it, and what
the fast path may answer for anonymous readers of public channels."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Response

from headwater.models import Privacy
from headwater.repo.responses import IMMUTABLE_CACHE_CONTROL
from headwater.resources import Resources
from headwater.services.access.decisions import ChannelRef
from headwater.services.channels import find_channel


def cache_control(channel: ChannelRef, policy: str) -> str:
    """Shared caches may keep what anyone may read, and nothing else."""
    return f"{'public' if channel.public else 'private'}, {policy}"


@dataclass(frozen=True)
class Served:
    """What a repository URL serves: a channel at its head, or pinned at one revision
    (`/api/repo/<channel>@<revision>/`)."""

    channel: ChannelRef
    number: int  # the revision served
    pinned: bool = False
    segment: str = ""  # the URL's channel segment as asked, `name` or `name@revision`

    @property
    def name(self) -> str:
        return self.channel.name

    @property
    def revision(self) -> int | None:
        """The revision file lookups name: None for the head (whatever it is by then)."""
        return self.number if self.pinned else None

    def index_cache_control(self, policy: str) -> str:
        """A pinned revision never changes; the head is revalidated."""
        return cache_control(self.channel, IMMUTABLE_CACHE_CONTROL if self.pinned else policy)

    def label(self, response: Response) -> Response:
        response.headers[REVISION_HEADER] = str(self.number)
        return response


REVISION_HEADER = "X-Headwater-Revision"


def remember_public(resources: Resources, channel: ChannelRef, anonymous: bool) -> None:
    """After an anonymous reader was let into a public channel, the fast path may answer the
    next ones from cache (repo/fast_path.py)."""
    if anonymous and channel.public:
        resources.public_channels.remember(channel.name, channel.id, channel.head)


def refresh_public_channel(resources: Resources, name: str) -> None:
    """Read again what anonymous readers may see of a channel, for the fast path."""
    try:
        with resources.db.reading() as session:
            channel = find_channel(session, name)
            if channel is not None and channel.privacy == Privacy.public:
                resources.public_channels.remember(name, channel.id, channel.head)
            else:
                resources.public_channels.forget(name)
    finally:
        resources.public_channels.refreshed(name)
