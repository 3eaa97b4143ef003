"""Organizations, their members and groups: who channels are owned by and granted to."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from headwater.db import NEVER_REUSE_IDS, Base, created_at, intpk


class OrganizationRole(StrEnum):
    owner = "owner"  # manages the organization and every channel it owns
    member = "member"


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(default="")
    created_at: Mapped[created_at]


class Membership(Base):
    __tablename__ = "memberships"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[OrganizationRole] = mapped_column(String(16))
    created_at: Mapped[created_at]


class Group(Base):
    """A named set of an organization's members that channel roles can be granted to.

    `sso_group` names the identity provider's group whose members are this group's: at each
    single sign-on, the user joins or leaves it by what the provider says."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("organization_id", "name"), NEVER_REUSE_IDS)

    id: Mapped[intpk]
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    sso_group: Mapped[str | None] = mapped_column(String(256), index=True)
    created_at: Mapped[created_at]


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # Set by single sign-on (and taken away by it); false when an owner added the member.
    from_sso: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[created_at]
