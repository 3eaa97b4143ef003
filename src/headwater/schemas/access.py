"""The JSON shape of accounts, tokens, users, organizations and audit events, shared by the
REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from headwater.models import ApiToken, AuditEvent, Organization, User


class TokenResource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str
    role: str  # read, write or manage


class TokenCreate(BaseModel):
    """`scopes`, `resources`, or both; a token carries at most what its user may do."""

    model_config = ConfigDict(extra="forbid")

    name: str
    expires_at: dt.datetime | None = None
    scopes: list[str] | None = None
    resources: list[TokenResource] | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    kind: str  # session (signing in) or personal
    scopes: list[str] | None
    resources: list[TokenResource]
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    current: bool = False  # the token this request was made with

    @classmethod
    def of(cls, token: ApiToken, channel_names: dict[int, str], current: int | None) -> TokenOut:
        return cls(
            id=token.id,
            name=token.name,
            kind=token.kind,
            scopes=token.scopes,
            resources=[
                TokenResource(channel=channel_names.get(r.channel_id, "?"), role=r.role)
                for r in token.channels
            ],
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            current=token.id == current,
        )


class TokenCreated(TokenOut):
    token: str  # shown this once


class Membership(BaseModel):
    organization: str
    role: str


class AccountOut(BaseModel):
    username: str
    is_admin: bool
    source: str
    email: str | None
    organizations: list[Membership]
    groups: list[str]  # organization/group
    token_kind: str  # what this request was made with: session or personal
    token_scopes: list[str] | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    password: str
    is_admin: bool = False


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    is_admin: bool | None = None
    password: str | None = None


class UserOut(BaseModel):
    username: str
    is_admin: bool
    disabled: bool
    source: str
    email: str | None
    created_at: dt.datetime
    last_sign_in_at: dt.datetime | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            username=user.username,
            is_admin=user.is_admin,
            disabled=user.disabled,
            source=user.source,
            email=user.email,
            created_at=user.created_at,
            last_sign_in_at=user.last_sign_in_at,
        )


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""


class OrganizationChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str


class OrganizationOut(BaseModel):
    name: str
    description: str
    created_at: dt.datetime

    @classmethod
    def of(cls, organization: Organization) -> OrganizationOut:
        return cls(
            name=organization.name,
            description=organization.description,
            created_at=organization.created_at,
        )


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = "member"  # owner or member


class MemberOut(BaseModel):
    username: str
    role: str
    groups: list[str]


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    sso_group: str | None = None  # the identity provider's group whose members are this one's


class GroupChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sso_group: str | None = None


class GroupOut(BaseModel):
    name: str
    sso_group: str | None
    members: list[str]


class AuditEventOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    address: str
    action: str
    target: str
    details: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            at=event.at,
            actor=event.actor,
            address=event.address,
            action=event.action,
            target=event.target,
            details=event.details,
        )
