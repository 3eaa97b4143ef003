"""Users and the API tokens they sign in with."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from headwater.db import NEVER_REUSE_IDS, Base, created_at, intpk


class User(Base):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str]
    is_admin: Mapped[bool] = mapped_column(default=False)
    # A disabled user cannot sign in, and their tokens were revoked when it was disabled.
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[created_at]


class ApiToken(Base):
    """A bearer token. Only its sha256 is kept, so a leaked database leaks no usable token."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(default="")
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(lazy="joined")
