"""Channels: create, find, edit and delete them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, func, select, true
from sqlalchemy.orm import Session

from headwater.db import add_unique
from headwater.dependencies.settings import MAX_ALSO_AVAILABLE, parse_must_install
from headwater.errors import (
    ChannelExistsError,
    ChannelNotFoundError,
    HeadwaterError,
    InvalidChannelNameError,
    InvalidInputError,
)
from headwater.filters import FilterSet, parse_filter_set
from headwater.inputs import check_text
from headwater.models import (
    Channel,
    Mirror,
    OnUnsolvable,
    Organization,
    PackageFile,
    Privacy,
    User,
)
from headwater.services import blobs
from headwater.services.access.audit import Actor, record
from headwater.services.access.decisions import ChannelRef, OrganizationRef
from headwater.sorting import Sort
from headwater.upstreams.http import check_allowed, normalize_source_root, shown_url

CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_-]*")
# "t" starts the token-in-path URLs: /api/repo/t/<token>/<channel>/...
RESERVED_NAMES = frozenset({"t"})
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 2000


@dataclass(frozen=True)
class ChannelStats:
    file_count: int
    mirror_count: int
    owner: str  # a username, or an organization's name
    owner_kind: str  # "user" or "organization"


def validate_channel_name(name: str) -> str:
    if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidChannelNameError(
            f"channel name {name!r} is not valid: use lowercase letters, digits, '-' and '_', "
            f"starting with a letter, at most {MAX_NAME_LENGTH} characters"
        )
    if name in RESERVED_NAMES:
        raise InvalidChannelNameError(f"channel name {name!r} is reserved")
    return name


def check_description(value: object) -> str:
    """A channel's description: free text of at most MAX_DESCRIPTION_LENGTH characters, shown
    to everyone who may read the channel."""
    return check_text(value, "description", max_length=MAX_DESCRIPTION_LENGTH, multiline=True)


def parse_privacy(value: str) -> Privacy:
    try:
        return Privacy(value)
    except ValueError:
        choices = ", ".join(privacy.value for privacy in Privacy)
        raise InvalidInputError(f"privacy {value!r} is not one of {choices}") from None


def create_channel(
    session: Session,
    name: str,
    *,
    actor: Actor,
    organization: OrganizationRef | None = None,
    description: str = "",
    privacy: str = Privacy.public,
    filters: dict[str, Any] | None = None,
) -> Channel:
    """A channel owned by `organization`, or by the user creating it. (Who may create a
    channel in an organization is decided before: its owners and administrators.)"""
    validate_channel_name(name)
    if session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
        raise ChannelExistsError(f"channel {name!r} already exists")
    channel = Channel(
        name=name,
        owner_user_id=None if organization else actor.user_id,
        owner_org_id=organization.id if organization else None,
        description=check_description(description),
        privacy=parse_privacy(privacy),
        filters=parse_filter_set(filters),
    )
    add_unique(session, channel, ChannelExistsError(f"channel {name!r} already exists"))
    record(
        session,
        actor,
        "channel.create",
        name,
        organization=organization.name if organization else None,
        privacy=channel.privacy,
        filters=channel.filters.to_json(),
    )
    return channel


def load_channel(session: Session, channel: ChannelRef) -> Channel:
    """The row of a channel access was decided on (gone if it was deleted since)."""
    row = session.get(Channel, channel.id)
    if row is None:
        raise ChannelNotFoundError(f"channel {channel.name!r} does not exist")
    return row


def find_channel(session: Session, name: str) -> Channel | None:
    return session.scalar(select(Channel).where(Channel.name == name))


def get_channel(session: Session, name: str) -> Channel:
    channel = find_channel(session, name)
    if channel is None:
        raise ChannelNotFoundError(f"channel {name!r} does not exist")
    return channel


# What the channel list sorts by, in its words.
CHANNEL_SORTS: dict[str, SQLColumnExpression[Any]] = {
    "name": Channel.name,
    "privacy": Channel.privacy,
    "files": select(func.count(PackageFile.id))
    .where(PackageFile.channel_id == Channel.id, PackageFile.in_head())
    .scalar_subquery(),
    "created": Channel.created_at,
}


def list_channels(
    session: Session,
    *,
    offset: int,
    limit: int,
    where: ColumnElement[bool] | None = None,
    sort: Sort = Sort("name"),
) -> tuple[list[Channel], int]:
    """Channels by name unless told; `where` narrows them (to those a user may read, say)."""
    condition = true() if where is None else where
    total = session.scalar(select(func.count(Channel.id)).where(condition)) or 0
    order = sort.order_by({sort.key: CHANNEL_SORTS[sort.key], "name": Channel.name})
    channels = session.scalars(
        select(Channel).where(condition).order_by(*order).offset(offset).limit(limit)
    )
    return list(channels), total


def channel_stats(session: Session, channel_ids: list[int]) -> dict[int, ChannelStats]:
    files = dict(
        session.execute(
            select(PackageFile.channel_id, func.count(PackageFile.id))
            .where(PackageFile.channel_id.in_(channel_ids), PackageFile.in_head())
            .group_by(PackageFile.channel_id)
        ).all()
    )
    mirrors = dict(
        session.execute(
            select(Mirror.channel_id, func.count(Mirror.id))
            .where(Mirror.channel_id.in_(channel_ids))
            .group_by(Mirror.channel_id)
        ).all()
    )
    owners = {
        channel_id: (user or organization or "", "user" if user else "organization")
        for channel_id, user, organization in session.execute(
            select(Channel.id, User.username, Organization.name)
            .outerjoin(User, User.id == Channel.owner_user_id)
            .outerjoin(Organization, Organization.id == Channel.owner_org_id)
            .where(Channel.id.in_(channel_ids))
        )
    }
    return {
        channel_id: ChannelStats(
            file_count=files.get(channel_id, 0),
            mirror_count=mirrors.get(channel_id, 0),
            owner=owners.get(channel_id, ("", "user"))[0],
            owner_kind=owners.get(channel_id, ("", "user"))[1],
        )
        for channel_id in channel_ids
    }


def update_channel(
    session: Session,
    channel: ChannelRef,
    changes: dict[str, Any],
    *,
    actor: Actor,
    allowlist: Sequence[str] = (),
) -> Channel:
    """Apply the fields sent; `filters` merge with the stored ones, a null key removes a rule.
    `also_available` URLs must be under the deployment's upstream `allowlist`."""
    row = load_channel(session, channel)
    changed: dict[str, Any] = {}
    if "description" in changes and changes["description"] is not None:
        description = check_description(changes["description"])
        if description != row.description:
            row.description = changed["description"] = description
    if "privacy" in changes and changes["privacy"] is not None:
        privacy = parse_privacy(changes["privacy"])
        if privacy != row.privacy:
            row.privacy = changed["privacy"] = privacy
    if "revisions_kept" in changes:
        kept = check_revisions_kept(changes["revisions_kept"])
        if kept != row.revisions_kept:
            row.revisions_kept = changed["revisions_kept"] = kept
    if "must_install" in changes:
        specs = parse_must_install(changes["must_install"])
        stored = [spec.to_json() for spec in specs] if specs else None
        if stored != row.must_install:
            row.must_install = changed["must_install"] = stored
    if "also_available" in changes:
        urls = check_also_available(changes["also_available"], allowlist)
        if urls != row.also_available:
            row.also_available = changed["also_available"] = urls
    if "on_unsolvable" in changes and changes["on_unsolvable"] is not None:
        choice = parse_on_unsolvable(changes["on_unsolvable"])
        if choice != row.on_unsolvable:
            row.on_unsolvable = changed["on_unsolvable"] = choice
    if "filters" in changes:
        filters = merge_filters(row.filters, changes["filters"])
        if filters.to_json() != row.filters.to_json():
            row.filters = filters
            record(session, actor, "channel.filters", channel.name, filters=filters.to_json())
    if changed:
        record(session, actor, "channel.update", channel.name, **changed)
    session.flush()
    return row


MAX_REVISIONS_KEPT = 100_000


def check_also_available(value: Any, allowlist: Sequence[str]) -> list[str] | None:
    """Channel URLs clients use beside this one, which the dependency check reads: http(s),
    under the upstream allowlist, without credentials (they would be shown)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise InvalidInputError("also_available must be a list of channel URLs")
    if len(value) > MAX_ALSO_AVAILABLE:
        raise InvalidInputError(f"also_available holds at most {MAX_ALSO_AVAILABLE} URLs")
    urls = []
    for url in value:
        try:
            root = normalize_source_root(url)
            check_allowed(root, allowlist)
        except HeadwaterError as error:
            raise InvalidInputError(
                f"also_available: {error.message.replace('source_root', 'the URL')}"
            ) from None
        if "?" in root or "#" in root:
            raise InvalidInputError(
                f"also_available: {shown_url(root)!r} has a query or fragment; a channel URL "
                "has neither"
            )
        if "@" in root.split("://", 1)[1].split("/", 1)[0]:
            raise InvalidInputError(
                f"also_available: {shown_url(root)!r} carries credentials; use a URL without"
            )
        urls.append(root)
    return list(dict.fromkeys(urls)) or None


def parse_on_unsolvable(value: Any) -> OnUnsolvable:
    try:
        return OnUnsolvable(value)
    except ValueError:
        raise InvalidInputError(
            f"on_unsolvable {str(value)[:40]!r} is not one of fail, warn"
        ) from None


def check_revisions_kept(value: Any) -> int | None:
    """A channel's own retention: how many latest revisions stay (None: the deployment's)."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_REVISIONS_KEPT
    ):
        raise InvalidInputError(
            f"revisions_kept must be a whole number from 1 to {MAX_REVISIONS_KEPT}, or null for "
            "the deployment's REVISIONS_KEPT"
        )
    return value


def give_channel(
    session: Session, channel: ChannelRef, organization: OrganizationRef, *, actor: Actor
) -> Channel:
    """Make an organization the channel's owner (its owners then manage it)."""
    row = load_channel(session, channel)
    row.owner_user_id, row.owner_org_id = None, organization.id
    record(session, actor, "channel.owner", channel.name, organization=organization.name)
    session.flush()
    return row


def merge_filters(stored: FilterSet, changes: dict[str, Any] | None) -> FilterSet:
    """The filter set after an edit: null clears every rule, a dict merges key by key."""
    if changes is None:
        return FilterSet()
    return stored.merged(changes)


def delete_channel(session: Session, channel: ChannelRef, *, actor: Actor) -> None:
    """The channel and its rows go now; its blobs, once nothing references them, with the next
    garbage collection after the grace period, which starts now (services/blobs.py)."""
    blobs.touch_files(session, PackageFile.channel_id == channel.id)
    blobs.touch_indexes(session, channel.id, true())
    session.delete(load_channel(session, channel))
    record(session, actor, "channel.delete", channel.name)
    session.flush()


def index_prefix(channel_id: int) -> str:
    """Where a channel's published index artifacts live in the blob store."""
    return f"indexes/{channel_id}/"
