"""Signing in with a username and password, under limits: attempts per address and failures
per account are counted (the `limits` library), and passwords are checked a few at a time, off
the threads that serve packages, so that a flood of guesses neither succeeds nor slows anyone
else down. Local users are checked here; with an LDAP directory set, its users are bound there
(`ldap.py`)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import anyio
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from headwater.db import Database
from headwater.errors import NotAuthenticatedError, TooManyRequestsError
from headwater.models import User, UserSource
from headwater.services.access.audit import Actor, record
from headwater.services.access.ldap import Directory
from headwater.services.access.organizations import sync_sso_groups
from headwater.services.access.passwords import hash_password, verify_password
from headwater.services.access.rules import Identity
from headwater.services.access.tokens import issue_session
from headwater.services.access.users import (
    check_credentials,
    check_password,
    find_user,
    get_user,
    provision_sso_user,
    replace_password,
    signed_in,
)


@dataclass(frozen=True)
class SignInLimits:
    per_account: str = "10 per 5 minutes"  # failed attempts for one username
    per_address: str = "60 per minute"  # attempts from one client address, whatever the name
    storage: str = "async+memory://"  # limits' storage URI: async+redis://… for several replicas
    hashing: int = 1  # passwords hashed at once


class SignInGuard:
    """One per process. Every edge that takes a password (REST, the UI) signs in through it."""

    def __init__(self, limits: SignInLimits, directory: Directory | None = None) -> None:
        self.per_account: RateLimitItem = parse(limits.per_account)
        self.per_address: RateLimitItem = parse(limits.per_address)
        self.limiter = MovingWindowRateLimiter(storage_from_string(limits.storage))
        self.hashing = anyio.CapacityLimiter(limits.hashing)
        self.directory = directory

    async def sign_in(
        self, db: Database, username: str, password: str, address: str, *, ttl_days: int
    ) -> str:
        """A new token, NotAuthenticatedError for wrong credentials, TooManyRequestsError
        when the address or the account has used up its attempts (the right password
        included: a guesser learns nothing from a refusal)."""
        return await self._attempt(
            username,
            address,
            partial(_sign_in, db, self.directory, username, password, address, ttl_days),
        )

    async def change_password(
        self,
        db: Database,
        identity: Identity,
        current: str,
        new: str,
        address: str,
        *,
        ttl_days: int,
    ) -> str:
        """A signed-in user's own password change, under the same limits as signing in (the
        current password is a password to guess); returns the caller's new token."""
        return await self._attempt(
            identity.username,
            address,
            partial(_change_password, db, identity, current, new, address, ttl_days),
        )

    async def _attempt(self, username: str, address: str, check: Callable[[], str]) -> str:
        # A name of any length and any characters keys the count by its digest.
        account = hashlib.sha256(username.lower().encode()).hexdigest()
        if not await self.limiter.hit(self.per_address, "address", address):
            raise await self._refusal(self.per_address, "address", address)
        async with self.hashing:
            # Asked once the turn to hash has come: attempts that queued together are counted
            # one after another, so a burst cannot get past the account's limit.
            if not await self.limiter.test(self.per_account, "account", account):
                raise await self._refusal(self.per_account, "account", account)
            try:
                return await anyio.to_thread.run_sync(check)
            except NotAuthenticatedError:
                await self.limiter.hit(self.per_account, "account", account)
                raise

    async def _refusal(self, item: RateLimitItem, *keys: str) -> TooManyRequestsError:
        stats = await self.limiter.get_window_stats(item, *keys)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return TooManyRequestsError(
            f"too many sign-in attempts ({item}); try again in {wait} seconds", retry_after=wait
        )


def _sign_in(
    db: Database,
    directory: Directory | None,
    username: str,
    password: str,
    address: str,
    ttl_days: int,
) -> str:
    """A local user's password is checked in a read, so no write lock is held while it is
    hashed; anyone else is a directory user when there is a directory."""
    with db.reading() as session:
        known = find_user(session, username)
        local = known is not None and known.source == UserSource.local
        if local or directory is None:
            user, rehashed = check_credentials(session, username, password)
            user_id = user.id
    if not (local or directory is None):
        return _directory_sign_in(db, directory, username, password, ttl_days)
    with db.writing() as session:
        user = session.get_one(User, user_id)
        signed_in(session, user, rehashed)
        return issue_session(session, user, ttl_days=ttl_days, name=f"sign-in from {address}")


def _directory_sign_in(
    db: Database, directory: Directory, username: str, password: str, ttl_days: int
) -> str:
    found = directory.authenticate(username, password)  # NotAuthenticatedError if wrong
    vouched = Vouched(UserSource.ldap, found.dn, found.username, found.email, found.groups)
    return provider_session(db, vouched, ttl_days=ttl_days)


@dataclass(frozen=True)
class Vouched:
    """A user an identity provider vouched for: its name for them, and their groups."""

    source: UserSource
    external_id: str
    username: str
    email: str | None
    groups: list[str]


def provider_session(db: Database, vouched: Vouched, *, ttl_days: int) -> str:
    """A session for a user an identity provider (OpenID Connect, LDAP) signed in: created at
    their first sign-in, in the groups mapped to the provider's groups they are in."""
    with db.writing() as session:
        user = provision_sso_user(
            session, vouched.source, vouched.external_id, vouched.username, vouched.email
        )
        sync_sso_groups(session, user, vouched.groups)
        name = f"sign-in through {vouched.source.upper()}"
        return issue_session(session, user, ttl_days=ttl_days, name=name)


def _change_password(
    db: Database, identity: Identity, current: str, new: str, address: str, ttl_days: int
) -> str:
    with db.reading() as session:
        user = get_user(session, identity.username)
        if user.source != UserSource.local:
            raise NotAuthenticatedError(
                f"your password is kept by {user.source.upper()}; change it there"
            )
        right, _ = verify_password(current, user.password_hash)
        if not right:
            raise NotAuthenticatedError("the current password is wrong")
    new_hash = hash_password(check_password(new))
    with db.writing() as session:
        user = get_user(session, identity.username)
        replace_password(session, user, new_hash)
        actor = Actor(identity.user_id, identity.username, address)
        record(session, actor, "user.password", user.username)
        return issue_session(session, user, ttl_days=ttl_days, name="password change")
