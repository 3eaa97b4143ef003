"""Signing in under limits: attempts per address and failures per account are counted (the
`limits` library), and passwords are hashed a few at a time, off the threads that serve
packages, so that a flood of guesses neither succeeds nor slows anyone else down."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

import anyio
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from headwater.db import Database
from headwater.errors import NotAuthenticatedError, TooManyRequestsError
from headwater.services.auth import login


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
        account = username.lower()
        if not await self.limiter.hit(self.per_address, "address", address):
            raise await self._refusal(self.per_address, "address", address)
        if not await self.limiter.test(self.per_account, "account", account):
            raise await self._refusal(self.per_account, "account", account)
        try:
            return await anyio.to_thread.run_sync(
                partial(_login, db, username, password, ttl_days), limiter=self.hashing
            )
        except NotAuthenticatedError:
            await self.limiter.hit(self.per_account, "account", account)
            raise

    async def _refusal(self, item: RateLimitItem, *keys: str) -> TooManyRequestsError:
        stats = await self.limiter.get_window_stats(item, *keys)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return TooManyRequestsError(
            f"too many sign-in attempts ({item}); try again in {wait} seconds", retry_after=wait
        )


def _login(db: Database, username: str, password: str, ttl_days: int) -> str:
    with db.writing() as session:
        return login(session, username, password, ttl_days=ttl_days)
