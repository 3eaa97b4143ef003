"""Users, passwords and API tokens: who is asking, decided in one place."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import cache

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from headwater.db import add_unique, utcnow
from headwater.errors import (
    ConflictError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
)
from headwater.inputs import check_name, check_text
from headwater.models import ApiToken, User

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class Identity:
    """The signed-in user a request acts for."""

    user_id: int
    username: str
    is_admin: bool


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_admin(session: Session, username: str, password: str | None) -> str | None:
    """Create the first administrator if there is no user yet.

    Returns the password when one had to be generated, so the caller can show it once.
    """
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    session.add(User(username=username, password_hash=hash_password(password), is_admin=True))
    return generated


@cache
def _stand_in_hash() -> str:
    """What an unknown username's password is checked against, so that the answer takes as
    long as for a real one and does not tell which names exist."""
    return hash_password(secrets.token_urlsafe(16))


def check_credentials(session: Session, username: str, password: str) -> User:
    """The user these credentials are right for, or NotAuthenticatedError. A read: it holds no
    write lock while the password is hashed.

    Unknown users cost the same password check as known ones; a disabled user is told so only
    once the password was right."""
    user = session.scalar(select(User).where(User.username == username))
    if len(password) > MAX_PASSWORD_LENGTH:
        raise NotAuthenticatedError("wrong username or password")
    if user is None:
        verify_password(password, _stand_in_hash())
        raise NotAuthenticatedError("wrong username or password")
    if not verify_password(password, user.password_hash):
        raise NotAuthenticatedError("wrong username or password")
    if user.disabled:
        raise NotAuthenticatedError("this account is disabled; an administrator can enable it")
    return user


def login(session: Session, username: str, password: str, *, ttl_days: int) -> str:
    """A new API token for the user, or NotAuthenticatedError if the credentials are wrong."""
    user = check_credentials(session, username, password)
    return issue_token(session, user, ttl_days=ttl_days, description="login")


def issue_token(session: Session, user: User, *, ttl_days: int, description: str) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            token_sha256=token_digest(token),
            description=description,
            expires_at=utcnow() + dt.timedelta(days=ttl_days),
        )
    )
    return token


def identify(session: Session, token: str | None) -> Identity | None:
    """The identity behind a token, or None when there is no token or it is unknown or expired."""
    if not token:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token)))
    if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    if row.user.disabled:
        return None
    return Identity(user_id=row.user.id, username=row.user.username, is_admin=row.user.is_admin)


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token)))
    if row is not None:
        session.delete(row)


def require_identity(identity: Identity | None) -> Identity:
    """Managing channels and mirrors needs a signed-in user; roles come later, here."""
    if identity is None:
        raise NotAuthenticatedError(
            "sign in first: POST /api/auth/login, then send the token in X-Auth "
            "or Authorization: Bearer"
        )
    return identity


def csrf_token(session_token: str) -> str:
    """The value web forms must echo back; derived from the session token, so nothing is kept."""
    return hashlib.sha256(b"headwater-csrf:" + session_token.encode()).hexdigest()


def check_username(username: str) -> str:
    return check_name(
        username,
        "username",
        USERNAME,
        "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
    )


def check_password(password: str) -> str:
    if not password:
        raise InvalidInputError("a password cannot be empty")
    return check_text(password, "password", max_length=MAX_PASSWORD_LENGTH)


def add_user(session: Session, username: str, password: str, *, is_admin: bool) -> User:
    check_username(username)
    user = User(
        username=username, password_hash=hash_password(check_password(password)), is_admin=is_admin
    )
    add_unique(session, user, ConflictError(f"user {username!r} already exists"))
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"user {username!r} does not exist")
    return user


def set_password(session: Session, username: str, password: str) -> None:
    """A new password; every token the user had is revoked, so whoever held one must sign in
    again with the new password."""
    replace_password(session, get_user(session, username), hash_password(check_password(password)))


def replace_password(session: Session, user: User, password_hash: str) -> None:
    """Store a password hashed before the write began, and revoke every token of the user."""
    user.password_hash = password_hash
    revoke_all_tokens(session, user)


def set_disabled(session: Session, username: str, disabled: bool, *, by: str) -> User:
    """Disable a user (their tokens are revoked at once) or enable them again; `by` is the
    administrator doing it."""
    user = get_user(session, username)
    if disabled and user.username == by:
        raise ConflictError("administrators cannot disable themselves")
    user.disabled = disabled
    if disabled:
        revoke_all_tokens(session, user)
    session.flush()
    return user


def revoke_all_tokens(session: Session, user: User) -> None:
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
