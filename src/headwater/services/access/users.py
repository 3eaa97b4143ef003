"""Users: creating them, their passwords, disabling them, making administrators, and the
users single sign-on brings."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import SQLColumnExpression, func, select
from sqlalchemy.orm import Session

from headwater.db import add_unique, utcnow
from headwater.errors import (
    ConflictError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
)
from headwater.inputs import check_name, check_text
from headwater.models import User, UserSource
from headwater.services.access.audit import Actor, record
from headwater.services.access.passwords import (
    MAX_PASSWORD_LENGTH,
    hash_password,
    stand_in_hash,
    verify_password,
)
from headwater.services.access.tokens import revoke_all_tokens
from headwater.sorting import Sort

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


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


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFoundError(f"user {username!r} does not exist")
    return user


# What the Users page sorts by, in its words.
USER_SORTS: dict[str, SQLColumnExpression[Any]] = {
    "username": User.username,
    "source": User.source,
    "admin": User.is_admin,
    "state": User.disabled,
    "signed-in": User.last_sign_in_at,
}


def list_users(
    session: Session, *, offset: int, limit: int, sort: Sort = Sort("username")
) -> tuple[list[User], int]:
    """Users by name unless told."""
    total = session.scalar(select(func.count(User.id))) or 0
    order = sort.order_by({sort.key: USER_SORTS[sort.key], "username": User.username})
    users = session.scalars(select(User).order_by(*order).offset(offset).limit(limit))
    return list(users), total


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


def add_user(
    session: Session, username: str, password: str, *, is_admin: bool, actor: Actor
) -> User:
    check_username(username)
    user = User(
        username=username,
        password_hash=hash_password(check_password(password)),
        is_admin=is_admin,
    )
    add_unique(session, user, ConflictError(f"user {username!r} already exists"))
    record(session, actor, "user.create", username, is_admin=is_admin)
    return user


def check_credentials(session: Session, username: str, password: str) -> tuple[User, str | None]:
    """The local user these credentials are right for (and a new hash for their password, when
    the stored one is of an older kind), or NotAuthenticatedError. A read: it holds no write
    lock while the password is hashed.

    Unknown users cost the same password check as known ones; a disabled user is told so only
    once the password was right."""
    user = find_user(session, username)
    if user is None or user.source != UserSource.local:
        verify_password(password, stand_in_hash())
        raise NotAuthenticatedError("wrong username or password")
    right, rehashed = verify_password(password, user.password_hash)
    if not right:
        raise NotAuthenticatedError("wrong username or password")
    if user.disabled:
        raise NotAuthenticatedError("this account is disabled; an administrator can enable it")
    return user, rehashed


def signed_in(session: Session, user: User, rehashed: str | None) -> None:
    """Note a sign-in, storing the upgraded password hash if there is one."""
    user.last_sign_in_at = utcnow()
    if rehashed is not None:
        user.password_hash = rehashed


def set_password(session: Session, username: str, password: str, *, actor: Actor) -> User:
    """A new password; every token the user had is revoked, so whoever held one must sign in
    again with the new password."""
    user = get_user(session, username)
    if user.source != UserSource.local:
        raise ConflictError(
            f"{username} signs in through {user.source.upper()}: their password is set there"
        )
    replace_password(session, user, hash_password(check_password(password)))
    record(session, actor, "user.password", username)
    return user


def replace_password(session: Session, user: User, password_hash: str) -> None:
    """Store a password hashed before the write began, and revoke every token of the user."""
    user.password_hash = password_hash
    revoke_all_tokens(session, user)


def set_disabled(session: Session, username: str, disabled: bool, *, actor: Actor) -> User:
    """Disable a user (their tokens are revoked at once) or enable them again."""
    user = get_user(session, username)
    if disabled and user.id == actor.user_id:
        raise ConflictError("administrators cannot disable themselves")
    if user.disabled != disabled:
        user.disabled = disabled
        if disabled:
            revoke_all_tokens(session, user)
        record(session, actor, "user.disable" if disabled else "user.enable", username)
    session.flush()
    return user


def set_admin(session: Session, username: str, is_admin: bool, *, actor: Actor) -> User:
    user = get_user(session, username)
    if not is_admin and user.id == actor.user_id:
        raise ConflictError("administrators cannot take their own administrator role away")
    if user.is_admin != is_admin:
        user.is_admin = is_admin
        record(session, actor, "user.admin" if is_admin else "user.unadmin", username)
    session.flush()
    return user


def provision_sso_user(
    session: Session, source: UserSource, external_id: str, username: str, email: str | None
) -> User:
    """The user a provider vouched for: found by the provider's own id for them, else created
    (named as the provider names them) at this first sign-in. A name already taken by a user of
    another source is refused, so that no provider can sign in as a local account."""
    user = session.scalar(
        select(User).where(User.source == source, User.external_id == external_id)
    )
    if user is None:
        check_username(username)
        taken = find_user(session, username)
        if taken is not None:
            raise NotAuthenticatedError(
                f"the name {username!r} belongs to another account here; an administrator "
                "must rename one of them"
            )
        user = User(
            username=username,
            password_hash=None,
            is_admin=False,
            source=source,
            external_id=external_id,
        )
        add_unique(session, user, NotAuthenticatedError(f"the name {username!r} is taken"))
        record(
            session,
            Actor(user_id=None, username=f"({source.value})", address=""),
            "user.create",
            username,
            source=source.value,
        )
    if user.disabled:
        raise NotAuthenticatedError("this account is disabled; an administrator can enable it")
    if email is not None:
        user.email = email[:320]
    user.last_sign_in_at = utcnow()
    session.flush()
    return user
