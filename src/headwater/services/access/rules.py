"""The rules of access, pure: roles, scopes, actions, and the decision for one caller.

Nothing here reads the database: `identities.py` gathers the facts (who the caller is, what
their credential carries, their role on the target) and `decisions.py` asks these rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from headwater.errors import (
    ChannelNotFoundError,
    HeadwaterError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
)
from headwater.models import ChannelRoleName, OrganizationRole, Privacy


class Role(IntEnum):
    """A role on a channel; each includes the ones below it."""

    none = 0
    read = 1
    write = 2
    manage = 3

    @classmethod
    def named(cls, name: ChannelRoleName | str) -> Role:
        return cls[ChannelRoleName(name).value]


class Scope(StrEnum):
    artifact_view = "artifact:view"
    artifact_create = "artifact:create"
    channel_edit = "channel:edit"
    mirror_edit = "mirror:edit"
    cve_manage = "cve:manage"
    admin = "admin"  # everything its user may do, as a session


# The scopes a token's resource grants on its channel, by the role it names.
ROLE_SCOPES = {
    Role.read: frozenset({Scope.artifact_view}),
    Role.write: frozenset({Scope.artifact_view, Scope.artifact_create}),
    Role.manage: frozenset(
        {
            Scope.artifact_view,
            Scope.artifact_create,
            Scope.channel_edit,
            Scope.mirror_edit,
            Scope.cve_manage,
        }
    ),
}


class Target(StrEnum):
    anyone = "anyone"  # no caller needed: sign-in pages, the login endpoint
    instance = "instance"
    channel = "channel"
    organization = "organization"


@dataclass(frozen=True)
class Rule:
    """What an action needs: on a channel, a role; on an organization, membership or
    ownership; on the instance, a signed-in caller or an administrator. And of a personal
    token, one of `scopes` (None: any credential of a signed-in user will do)."""

    target: Target
    doing: str  # "change its mirrors": how refusals name the action
    role: Role = Role.none
    owner: bool = False  # organization actions: its owners only (else any member)
    admin: bool = False  # instance actions: administrators only
    anonymous: bool = False  # instance actions anyone may do (a credential, if sent, must work)
    scopes: frozenset[Scope] | None = None


def _scopes(*scopes: Scope) -> frozenset[Scope]:
    return frozenset(scopes)


class Action(StrEnum):
    anyone = "anyone"
    read_channel = "channel:read"
    upload_file = "file:upload"
    delete_file = "file:delete"
    edit_channel = "channel:edit"
    read_mirrors = "mirror:read"
    edit_mirrors = "mirror:edit"
    curate_cves = "cve:curate"
    create_channel = "channel:create"
    list_channels = "channel:list"
    list_mirrors = "mirror:list"
    read_cves = "cve:read"
    import_cves = "cve:import"
    read_account = "account:read"
    manage_account = "account:manage"
    administer_users = "user:admin"
    create_organization = "organization:create"
    list_organizations = "organization:list"
    read_organization = "organization:read"
    manage_organization = "organization:manage"
    read_audit = "audit:read"
    read_jobs = "job:read"
    stop_jobs = "job:stop"
    run_jobs = "job:run"
    read_storage = "storage:read"


RULES: Mapping[Action, Rule] = {
    Action.anyone: Rule(Target.anyone, "use this page"),
    # on a channel
    Action.read_channel: Rule(
        Target.channel, "read its packages", Role.read, scopes=_scopes(Scope.artifact_view)
    ),
    Action.upload_file: Rule(
        Target.channel, "upload files to it", Role.write, scopes=_scopes(Scope.artifact_create)
    ),
    Action.delete_file: Rule(
        Target.channel, "delete its files", Role.write, scopes=_scopes(Scope.artifact_create)
    ),
    Action.edit_channel: Rule(
        Target.channel,
        "change its settings, filters or roles",
        Role.manage,
        scopes=_scopes(Scope.channel_edit),
    ),
    Action.read_mirrors: Rule(
        Target.channel,
        "see its mirrors and their history",
        Role.manage,
        scopes=_scopes(Scope.mirror_edit, Scope.channel_edit),
    ),
    Action.edit_mirrors: Rule(
        Target.channel,
        "change, run or stop its mirrors",
        Role.manage,
        scopes=_scopes(Scope.mirror_edit),
    ),
    Action.curate_cves: Rule(
        Target.channel, "curate its CVE matches", Role.manage, scopes=_scopes(Scope.cve_manage)
    ),
    # on the instance; lists show what the matching channel action allows
    Action.create_channel: Rule(
        Target.instance, "create channels", scopes=_scopes(Scope.channel_edit)
    ),
    Action.list_channels: Rule(Target.instance, "list channels", anonymous=True),
    Action.list_mirrors: Rule(Target.instance, "list mirrors"),
    Action.read_cves: Rule(
        Target.instance, "read the CVE database", scopes=_scopes(Scope.artifact_view)
    ),
    Action.import_cves: Rule(
        Target.instance, "import advisories", admin=True, scopes=_scopes(Scope.cve_manage)
    ),
    Action.read_account: Rule(Target.instance, "see your account"),
    Action.manage_account: Rule(
        Target.instance, "manage your password and tokens", scopes=_scopes(Scope.admin)
    ),
    Action.administer_users: Rule(
        Target.instance, "manage users", admin=True, scopes=_scopes(Scope.admin)
    ),
    Action.create_organization: Rule(
        Target.instance, "create organizations", admin=True, scopes=_scopes(Scope.admin)
    ),
    Action.list_organizations: Rule(Target.instance, "list organizations"),
    Action.read_audit: Rule(
        Target.instance, "read the audit log", admin=True, scopes=_scopes(Scope.admin)
    ),
    Action.read_jobs: Rule(
        Target.instance, "see the deployment's jobs", admin=True, scopes=_scopes(Scope.admin)
    ),
    Action.stop_jobs: Rule(
        Target.instance, "stop the deployment's jobs", admin=True, scopes=_scopes(Scope.admin)
    ),
    Action.run_jobs: Rule(
        Target.instance, "run the deployment's jobs", admin=True, scopes=_scopes(Scope.admin)
    ),
    Action.read_storage: Rule(
        Target.instance, "see the blob store's usage", admin=True, scopes=_scopes(Scope.admin)
    ),
    # on an organization
    Action.read_organization: Rule(Target.organization, "see it"),
    Action.manage_organization: Rule(
        Target.organization,
        "manage its members, groups and channels",
        owner=True,
        scopes=_scopes(Scope.admin),
    ),
}


@dataclass(frozen=True)
class Grant:
    """What a credential carries of its user's rights: `scopes` (None: all, as a session),
    and `channels` (None: every channel; else the most it carries on each one listed)."""

    scopes: frozenset[Scope] | None = None
    channels: Mapping[int, Role] | None = None

    def allows(self, rule: Rule) -> bool:
        if self.scopes is None or rule.scopes is None or Scope.admin in self.scopes:
            return True
        return bool(self.scopes & rule.scopes)

    def cap(self, channel_id: int, role: Role) -> Role:
        if self.channels is None:
            return role
        return min(role, self.channels.get(channel_id, Role.none))


SESSION = Grant()


@dataclass(frozen=True)
class Identity:
    """The signed-in user a request acts for, and what its credential carries."""

    user_id: int
    username: str
    is_admin: bool
    organizations: Mapping[int, OrganizationRole] = field(default_factory=dict)
    groups: frozenset[int] = frozenset()
    grant: Grant = SESSION
    token_id: int | None = None


@dataclass(frozen=True)
class ChannelFacts:
    """What the rules need to know of a channel: its privacy, its owner, and the roles granted
    on it to the caller and to the caller's groups."""

    id: int
    name: str
    privacy: Privacy
    owner_user_id: int | None
    owner_org_id: int | None
    granted: Role = Role.none


def privacy_floor(privacy: Privacy, signed_in: bool) -> Role:
    """What anyone gets on a channel: read a public one; signed in, read an authenticated one."""
    if privacy == Privacy.public or (signed_in and privacy == Privacy.authenticated):
        return Role.read
    return Role.none


def held_role(identity: Identity, channel: ChannelFacts) -> Role:
    """The user's own role, whatever their credential carries."""
    if identity.is_admin or channel.owner_user_id == identity.user_id:
        return Role.manage
    owner_org = channel.owner_org_id
    if owner_org is not None and identity.organizations.get(owner_org) == OrganizationRole.owner:
        return Role.manage
    return max(channel.granted, privacy_floor(channel.privacy, signed_in=True))


def channel_role(identity: Identity | None, channel: ChannelFacts, rule: Rule) -> Role:
    """The role the caller acts with on `channel` for an action with `rule`: the user's role
    as far as the credential carries it (its channels, its scopes), and never less than what
    anyone may do."""
    anyone = privacy_floor(channel.privacy, signed_in=False)
    if identity is None:
        return anyone
    carried = identity.grant.cap(channel.id, held_role(identity, channel))
    if not identity.grant.allows(rule):
        carried = Role.none
    return max(anyone, carried)


def visible_role(identity: Identity | None, channel: ChannelFacts) -> Role:
    """The caller's role for telling whether the channel exists for them at all."""
    return channel_role(identity, channel, RULES[Action.anyone])


def decide_channel(
    identity: Identity | None,
    action: Action,
    channel: ChannelFacts | None,
    what: str,
    unknown: HeadwaterError | None = None,
) -> Role:
    """The caller's role on the channel if they may do `action`, else the refusal. `what`
    names what was asked for ("channel 'x'", "run 7"); one the caller may not see is refused
    exactly as one that does not exist: 401 for anonymous callers, else `unknown` (404)."""
    rule = RULES[action]
    assert rule.target is Target.channel, action
    role = channel_role(identity, channel, rule) if channel is not None else Role.none
    if channel is not None and role >= rule.role:
        return role
    seen = visible_role(identity, channel) if channel is not None else Role.none
    if identity is None:
        raise NotAuthenticatedError(
            f"sign in to use {what}: send a token (X-Auth, Authorization: Bearer, or basic "
            "auth with the token as user and x-auth-token as password)"
        )
    if channel is None or seen < Role.read:
        raise unknown or ChannelNotFoundError(f"{what} does not exist")
    raise _denied(identity, rule, what, channel_role_word(identity, channel, rule))


def channel_role_word(identity: Identity, channel: ChannelFacts, rule: Rule) -> str:
    """Why the caller falls short: the role the action needs, or the scope the token lacks."""
    if not identity.grant.allows(rule):
        return _scope_shortfall(rule)
    if identity.grant.cap(channel.id, Role.manage) < rule.role:
        return f"this token carries less than the {rule.role.name} role there"
    return f"it needs the {rule.role.name} role"


def decide_instance(identity: Identity | None, action: Action) -> None:
    rule = RULES[action]
    assert rule.target in (Target.instance, Target.anyone), action
    if rule.target is Target.anyone or (identity is None and rule.anonymous):
        return
    if identity is None:
        raise NotAuthenticatedError(
            f"sign in to {rule.doing}: POST /api/auth/login, then send the token in X-Auth or "
            "Authorization: Bearer"
        )
    if rule.admin and not identity.is_admin:
        raise PermissionDeniedError(f"only administrators may {rule.doing}")
    if not identity.grant.allows(rule):
        raise PermissionDeniedError(f"this token may not {rule.doing}: {_scope_shortfall(rule)}")


def decide_organization(
    identity: Identity | None, action: Action, organization_id: int | None, name: str
) -> None:
    """Members may see their organization, its owners manage it, administrators both; anyone
    else is told it does not exist."""
    rule = RULES[action]
    assert rule.target is Target.organization, action
    if identity is None:
        raise NotAuthenticatedError(f"sign in to see organization {name!r}")
    role = None
    if organization_id is not None:
        role = (
            OrganizationRole.owner
            if identity.is_admin
            else identity.organizations.get(organization_id)
        )
    if role is None:
        raise NotFoundError(f"organization {name!r} does not exist")
    if rule.owner and role != OrganizationRole.owner:
        raise PermissionDeniedError(
            f"only owners of organization {name!r} and administrators may {rule.doing}"
        )
    if not identity.grant.allows(rule):
        raise PermissionDeniedError(f"this token may not {rule.doing}: {_scope_shortfall(rule)}")


def _denied(identity: Identity, rule: Rule, what: str, why: str) -> PermissionDeniedError:
    return PermissionDeniedError(f"{identity.username} may not {rule.doing} ({what}): {why}")


def _scope_shortfall(rule: Rule) -> str:
    assert rule.scopes is not None
    needed = " or ".join(sorted(scope.value for scope in rule.scopes))
    return f"it needs a token with the scope {needed}"


def may_set_proxy(identity: Identity | None) -> bool:
    """A proxy reaches places the allowlist does not see: administrators only."""
    return identity is not None and identity.is_admin
