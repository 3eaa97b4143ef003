"""Tokens: sessions made by signing in, personal tokens with scopes and resources, their
revocation, and when each was last used."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from headwater.db import Database, utcnow
from headwater.errors import InvalidInputError, NotFoundError
from headwater.inputs import check_text
from headwater.models import ApiToken, ApiTokenChannel, TokenKind, User
from headwater.services.access.rules import Role, Scope

MAX_TOKEN_NAME_LENGTH = 100
MAX_RESOURCES = 100


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    """32 random bytes, URL-safe, never starting with `-`: given on a command line (`twine
    upload -p <token>`), such a token would be read as an option."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def _new(
    session: Session, user: User, kind: TokenKind, name: str, expires_at: dt.datetime
) -> tuple[ApiToken, str]:
    token = new_secret()
    row = ApiToken(
        user_id=user.id,
        token_sha256=token_digest(token),
        kind=kind,
        name=name,
        expires_at=expires_at,
    )
    session.add(row)
    return row, token


def issue_session(session: Session, user: User, *, ttl_days: int, name: str) -> str:
    """A session for a user who just signed in: all of their rights, for `ttl_days`."""
    _, token = _new(session, user, TokenKind.session, name, utcnow() + dt.timedelta(days=ttl_days))
    return token


@dataclass(frozen=True)
class TokenRequest:
    """A personal token as asked for: at least one scope or one resource."""

    name: str
    expires_at: dt.datetime | None
    scopes: Sequence[str] | None
    resources: Sequence[tuple[int, str]] | None  # (channel id, role name), channels resolved


def issue_personal(
    session: Session, user: User, request: TokenRequest, *, default_days: int, max_days: int
) -> tuple[ApiToken, str]:
    name = check_text(request.name, "name", max_length=MAX_TOKEN_NAME_LENGTH).strip()
    if not name:
        raise InvalidInputError("a token needs a name, to tell it from your others")
    scopes = _scopes(request.scopes)
    resources = _resources(request.resources)
    if not scopes and not resources:
        raise InvalidInputError(
            "a token needs scopes or resources: say what it may do, e.g. "
            '"scopes": ["artifact:view"] or "resources": [{"channel": "c", "role": "read"}]'
        )
    expires_at = _expiry(request.expires_at, default_days=default_days, max_days=max_days)
    row, token = _new(session, user, TokenKind.personal, name, expires_at)
    row.scopes = sorted(scopes) if scopes else None
    row.channels = [
        ApiTokenChannel(channel_id=channel_id, role=role.name) for channel_id, role in resources
    ]
    session.flush()
    return row, token


def _scopes(requested: Sequence[str] | None) -> set[str]:
    chosen = set()
    for value in requested or ():
        try:
            chosen.add(Scope(value).value)
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise InvalidInputError(f"scope {value!r} is not one of {known}") from None
    return chosen


def _resources(requested: Sequence[tuple[int, str]] | None) -> list[tuple[int, Role]]:
    if requested is not None and len(requested) > MAX_RESOURCES:
        raise InvalidInputError(f"a token names at most {MAX_RESOURCES} channels")
    chosen: dict[int, Role] = {}
    for channel_id, role_name in requested or ():
        if role_name not in ("read", "write", "manage"):
            raise InvalidInputError(f"role {role_name!r} is not one of read, write, manage")
        chosen[channel_id] = max(chosen.get(channel_id, Role.none), Role[role_name])
    return sorted(chosen.items())


def _expiry(requested: dt.datetime | None, *, default_days: int, max_days: int) -> dt.datetime:
    now = utcnow()
    if requested is None:
        return now + dt.timedelta(days=min(default_days, max_days))
    if requested.tzinfo is None:
        raise InvalidInputError("expires_at needs a time zone, e.g. 2027-01-31T00:00:00Z")
    if requested <= now:
        raise InvalidInputError("expires_at is in the past")
    if requested > now + dt.timedelta(days=max_days):
        raise InvalidInputError(f"a token lasts at most {max_days} days")
    return requested.astimezone(dt.UTC)


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    """The user's personal tokens and sessions, newest first, expired ones left out."""
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.expires_at > utcnow())
            .order_by(ApiToken.id.desc())
        )
    )


def get_token(session: Session, user_id: int, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        raise NotFoundError(f"you have no token {token_id}")
    return row


def revoke_token(session: Session, user_id: int, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens: it stops working at once (it is deleted)."""
    row = get_token(session, user_id, token_id)
    session.delete(row)
    session.flush()
    return row


def end_session(session: Session, token: str) -> None:
    """Signing out: the session's token is revoked."""
    session.execute(delete(ApiToken).where(ApiToken.token_sha256 == token_digest(token)))


def revoke_all_tokens(session: Session, user: User) -> None:
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))


class TokenUses:
    """When each token was last used, collected in memory by the requests that use them and
    written in one update every few seconds (`flush`), so that reading with a token never
    waits for the database's write lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, dt.datetime] = {}

    def used(self, token_id: int) -> None:
        with self._lock:
            self._seen[token_id] = utcnow()

    def flush(self, db: Database) -> int:
        with self._lock:
            seen, self._seen = self._seen, {}
        if not seen:
            return 0
        try:
            with db.writing() as session:
                for token_id, moment in seen.items():
                    session.execute(
                        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=moment)
                    )
        except Exception:
            with self._lock:  # kept for the next flush, unless newer uses came meanwhile
                self._seen = {**seen, **self._seen}
            raise
        return len(seen)
