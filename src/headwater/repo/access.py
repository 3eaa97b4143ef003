"""What the repository URLs share about the channel they serve: who may cache it, and what
the fast path may answer for anonymous readers of public channels."""

from __future__ import annotations

from headwater.models import Privacy
from headwater.resources import Resources
from headwater.services.access.decisions import ChannelRef
from headwater.services.channels import find_channel


def cache_control(channel: ChannelRef, policy: str) -> str:
    """Shared caches may keep what anyone may read, and nothing else."""
    return f"{'public' if channel.public else 'private'}, {policy}"


def remember_public(resources: Resources, channel: ChannelRef, anonymous: bool) -> None:
    """After an anonymous reader was let into a public channel, the fast path may answer the
    next ones from cache (repo/fast_path.py)."""
    if anonymous and channel.public:
        resources.public_channels.remember(channel.name, channel.id, channel.simple_revision)


def refresh_public_channel(resources: Resources, name: str) -> None:
    """Read again what anonymous readers may see of a channel, for the fast path."""
    try:
        with resources.db.reading() as session:
            channel = find_channel(session, name)
            if channel is not None and channel.privacy == Privacy.public:
                resources.public_channels.remember(name, channel.id, channel.simple_revision)
            else:
                resources.public_channels.forget(name)
    finally:
        resources.public_channels.refreshed(name)
