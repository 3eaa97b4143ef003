"""Whether a token may read a channel, as the fast path asks it: decided by the access rules
(services/access/, what `requires(Action.read_channel)` asks) in a worker thread the first time,
then remembered for `seconds` (HEADWATER_TOKEN_CACHE_SECONDS).

So a token revoked or expired, a role taken away or a channel made private reaches that
token's holders within that window, not at once. Refusals are remembered too, and the request
goes on to the application, which refuses it with the usual 401, 403 or 404. Tokens are kept as
their sha256, a bounded number of them: a flood of made-up tokens pushes real ones out, it does
not grow the memory.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy.engine import URL
from starlette.concurrency import run_in_threadpool

from headwater.db import Database
from headwater.errors import HeadwaterError
from headwater.page_cache import Recent
from headwater.repo.changes import Changes, listen
from headwater.repo.loads import Loads
from headwater.services.access.decisions import require_channel
from headwater.services.access.identities import identify
from headwater.services.access.rules import Action

_KEPT = 16_384  # (token, channel) decisions kept


@dataclass(frozen=True)
class ReadGrant:
    allowed: bool
    channel_id: int | None = None  # the channel decided on: a channel of the same name made
    token_id: int | None = None  # later is another one
    decided_at: float = 0.0


def decide_read(db: Database, token: str, channel: str) -> ReadGrant:
    """Blocks: run it in a thread."""
    now = time.monotonic()
    with db.reading() as session:
        identity = identify(session, token)
        if identity is None:  # unknown, expired, revoked, or its user disabled
            return ReadGrant(False, decided_at=now)
        try:
            found = require_channel(session, identity, Action.read_channel, channel)
        except HeadwaterError:
            return ReadGrant(False, decided_at=now)
    return ReadGrant(True, found.id, identity.token_id, now)


class ReadGrants:
    """Used from the event loop. A change of access this process commits (a token revoked,
    a role granted, a channel's privacy) drops every decision at once (repo/changes.py)."""

    def __init__(self, db: Database, seconds: float, kept: int = _KEPT) -> None:
        self.db = db
        self.seconds = seconds
        self._grants: Recent[tuple[bytes, str], ReadGrant] = Recent(kept)
        self._loads = Loads()
        self._changed_at = 0.0  # when this process last committed a change of access
        listen(self)

    def changed(self, database: URL, changes: Changes) -> None:
        if changes.access and database == self.db.engine.url:
            self._changed_at = time.monotonic()

    async def grant(self, token: str, channel: str) -> ReadGrant:
        key = (hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest(), channel)
        found = self._grants.get(key)
        if (
            found is not None
            and found.decided_at > self._changed_at
            and time.monotonic() - found.decided_at <= self.seconds
        ):
            return found
        return await self._loads.run(key, lambda: self._decide(key, token, channel))

    async def _decide(self, key: tuple[bytes, str], token: str, channel: str) -> ReadGrant:
        decided = await run_in_threadpool(decide_read, self.db, token, channel)
        if self.seconds > 0:
            self._grants.put(key, decided)
        return decided
