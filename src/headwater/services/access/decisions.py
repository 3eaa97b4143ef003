"""The one place access is decided: a caller, an action, and what the action is on (a
channel, the channel of a run or of a CVE match, an organization, the instance). Every edge
asks here, through the dependency each route declares (`requires.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.errors import CveMatchNotFoundError, HeadwaterError, RunNotFoundError
from headwater.models import Channel, CveMatch, Mirror, Organization, PackageFile, Privacy, Run
from headwater.services.access.identities import channel_facts
from headwater.services.access.rules import (
    Action,
    Identity,
    Role,
    decide_channel,
    decide_instance,
    decide_organization,
)


@dataclass(frozen=True)
class ChannelRef:
    """A channel the caller was allowed to act on, and the role they act with. Services take
    this, not a name: whatever they do, access was decided before."""

    id: int
    name: str
    privacy: Privacy
    owner_user_id: int | None
    owner_org_id: int | None
    head: int  # the revision clients get at the plain URL
    role: Role

    @property
    def public(self) -> bool:
        return self.privacy == Privacy.public


@dataclass(frozen=True)
class OrganizationRef:
    id: int
    name: str


def _ref(channel: Channel, role: Role) -> ChannelRef:
    return ChannelRef(
        id=channel.id,
        name=channel.name,
        privacy=Privacy(channel.privacy),
        owner_user_id=channel.owner_user_id,
        owner_org_id=channel.owner_org_id,
        head=channel.head,
        role=role,
    )


def require(identity: Identity | None, action: Action) -> None:
    """An action on the instance (create a channel, import advisories, manage users...)."""
    decide_instance(identity, action)


def require_channel(
    session: Session, identity: Identity | None, action: Action, name: str
) -> ChannelRef:
    channel, facts = channel_facts(session, identity, name=name)
    role = decide_channel(identity, action, facts, f"channel {name!r}")
    assert channel is not None
    return _ref(channel, role)


def require_channel_of(
    session: Session,
    identity: Identity | None,
    action: Action,
    channel_id: int,
    what: str,
    unknown: HeadwaterError,
) -> ChannelRef:
    """An action on something of a channel's (`what`: "run 7"), refused as `unknown` when the
    caller may not see that channel, exactly as when the thing does not exist."""
    channel, facts = channel_facts(session, identity, id=channel_id)
    role = decide_channel(identity, action, facts, what, unknown)
    assert channel is not None
    return _ref(channel, role)


def require_run_channel(
    session: Session, identity: Identity | None, action: Action, run_id: int
) -> ChannelRef:
    channel_id = session.scalar(
        select(Mirror.channel_id).join(Run, Run.mirror_id == Mirror.id).where(Run.id == run_id)
    )
    unknown = RunNotFoundError(f"run {run_id} does not exist")
    return require_channel_of(session, identity, action, channel_id or -1, f"run {run_id}", unknown)


def require_match_channel(
    session: Session, identity: Identity | None, action: Action, match_id: int
) -> ChannelRef:
    channel_id = session.scalar(
        select(PackageFile.channel_id)
        .join(CveMatch, CveMatch.file_id == PackageFile.id)
        .where(CveMatch.id == match_id)
    )
    unknown = CveMatchNotFoundError(f"CVE match {match_id} does not exist")
    what = f"CVE match {match_id}"
    return require_channel_of(session, identity, action, channel_id or -1, what, unknown)


def require_organization(
    session: Session, identity: Identity | None, action: Action, name: str
) -> OrganizationRef:
    organization = session.scalar(select(Organization).where(Organization.name == name))
    decide_organization(identity, action, organization.id if organization else None, name)
    assert organization is not None
    return OrganizationRef(id=organization.id, name=organization.name)
