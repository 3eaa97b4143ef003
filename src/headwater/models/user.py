"""Users, the credentials they sign in with, and what each credential carries."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from headwater.db import NEVER_REUSE_IDS, Base, created_at, intpk


class UserSource(StrEnum):
    """Where a user's password is checked: here, or at the identity provider."""

    local = "local"
    oidc = "oidc"
    ldap = "ldap"


class TokenKind(StrEnum):
    session = "session"  # from signing in: carries all of its user's rights
    personal = "personal"  # made on the Account page: carries its scopes and resources only


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("source", "external_id"), NEVER_REUSE_IDS)

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # None for users of an identity provider: they have no password here.
    password_hash: Mapped[str | None]
    is_admin: Mapped[bool] = mapped_column(default=False)
    # A disabled user cannot sign in, and their tokens were revoked when it was disabled.
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    source: Mapped[UserSource] = mapped_column(
        String(16), default=UserSource.local, server_default=UserSource.local.value
    )
    # The provider's stable name for the user (OIDC issuer + subject, LDAP DN).
    external_id: Mapped[str | None] = mapped_column(String(512))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[created_at]
    last_sign_in_at: Mapped[dt.datetime | None]


class ApiToken(Base):
    """A bearer token. Only its sha256 is kept, so a leaked database leaks no usable token."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[TokenKind] = mapped_column(
        String(16), default=TokenKind.session, server_default=TokenKind.session.value
    )
    name: Mapped[str] = mapped_column(String(100), default="")
    # The scopes of a personal token (None for a session: everything its user may do).
    scopes: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(lazy="joined")
    channels: Mapped[list[ApiTokenChannel]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )


class ApiTokenChannel(Base):
    """A resource of a personal token: on this channel it carries at most `role`, and on
    channels it does not list, nothing beyond what anyone may do."""

    __tablename__ = "api_token_channels"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
