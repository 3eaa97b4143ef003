"""Signing in under limits: attempts per address and failures per account are counted (the
`limits` library), and passwords are hashed a few at a time, off the threads that serve
packages, so that a flood of guesses neither succeeds nor slows anyone else down."""

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
from headwater.models import User
from headwater.services.auth import (
    Identity,
    check_credentials,
    check_password,
    get_user,
    hash_password,
    issue_token,
    replace_password,
    verify_password,
)


@dataclass(frozen=True)
class SignInLimits:
    per_account: str = "10 per 5 minutes"  # failed attempts for one username
    per_address: str = "60 per minute"  # attempts from one client address, whatever the name
    storage: str = "async+memory://"  # limits' storage URI: async+redis://… for several replicas
    hashing: int = 1  # passwords hashed at once


class SignInGuard:
    """One per process. Every edge that takes a password (REST, the UI) signs in through it."""

    def __init__(self, limits: SignInLimits) -> None:
        self.per_account: RateLimitItem = parse(limits.per_account)
        self.per_address: RateLimitItem = parse(limits.per_address)
        self.limiter = MovingWindowRateLimiter(storage_from_string(limits.storage))
        self.hashing = anyio.CapacityLimiter(limits.hashing)

    async def sign_in(
        self, db: Database, username: str, password: str, address: str, *, ttl_days: int
    ) -> str:
        """A new token, NotAuthenticatedError for wrong credentials, TooManyRequestsError
        when the address or the account has used up its attempts (the right password
        included: a guesser learns nothing from a refusal)."""
        return await self._attempt(
            username, address, partial(_sign_in, db, username, password, ttl_days)
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
            partial(_change_password, db, identity.username, current, new, ttl_days),
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


def _sign_in(db: Database, username: str, password: str, ttl_days: int) -> str:
    """The password is checked in a read, so no write lock is held while it is hashed."""
    with db.reading() as session:
        user_id = check_credentials(session, username, password).id
    with db.writing() as session:
        return issue_token(
            session, session.get_one(User, user_id), ttl_days=ttl_days, description="login"
        )


def _change_password(db: Database, username: str, current: str, new: str, ttl_days: int) -> str:
    with db.reading() as session:
        user = get_user(session, username)
        if not verify_password(current, user.password_hash):
            raise NotAuthenticatedError("the current password is wrong")
    new_hash = hash_password(check_password(new))
    with db.writing() as session:
        user = get_user(session, username)
        replace_password(session, user, new_hash)
        return issue_token(session, user, ttl_days=ttl_days, description="password change")
