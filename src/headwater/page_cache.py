"""What one running app keeps in memory to answer repository requests without the database:
rendered pages, the public channels' revisions (see Resources), and immutable bytes."""

from __future__ import annotations

import time
from collections import OrderedDict
from threading import Lock
from typing import Generic, TypeVar

_PAGES = 4096  # rendered pages kept per app
K = TypeVar("K")
V = TypeVar("V")


class PageCache:
    """Rendered simple pages, keyed by the channel's head revision: a publish bumps the
    revision, so a stale page is never served and nothing needs invalidating."""

    def __init__(self, size: int = _PAGES) -> None:
        self.size = size
        self._pages: OrderedDict[tuple[object, ...], tuple[str, bytes]] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[object, ...]) -> tuple[str, bytes] | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: tuple[object, ...], page: tuple[str, bytes]) -> None:
        with self._lock:
            self._pages[key] = page
            if len(self._pages) > self.size:
                self._pages.popitem(last=False)


class PublicChannels:
    """What anonymous readers may see of public channels: each channel's id and simple
    revision as last read from the database, and when.

    It lets the fast path (repo/fast_path.py) answer anonymous requests for cached pages
    without a database query. Past `ttl` seconds an entry is stale: still served, while one
    refresh at a time reads the channel again; past `limit` seconds it is not served at all.
    So a publish, a deletion or a channel turned private shows within about `ttl` seconds.
    """

    def __init__(self, ttl: float = 1.0, limit: float = 10.0) -> None:
        self.ttl = ttl
        self.limit = limit
        self._channels: dict[str, tuple[int, int, float]] = {}
        self._refreshing: set[str] = set()

    def remember(self, name: str, channel_id: int, head: int) -> None:
        self._channels[name] = (channel_id, head, time.monotonic())

    def forget(self, name: str) -> None:
        self._channels.pop(name, None)

    def lookup(self, name: str) -> tuple[int, int, bool] | None:
        """(channel id, head revision, stale) unless unknown or older than `limit`."""
        found = self._channels.get(name)
        if found is None:
            return None
        age = time.monotonic() - found[2]
        if age > self.limit:
            return None
        return found[0], found[1], age > self.ttl

    def claim_refresh(self, name: str) -> bool:
        """True for the one caller that should refresh `name` now; call `refreshed` after."""
        if name in self._refreshing:
            return False
        self._refreshing.add(name)
        return True

    def refreshed(self, name: str) -> None:
        self._refreshing.discard(name)


class BlobCache:
    """Immutable bytes by key (an index artifact's blob key, a shard's pack and digest, a
    package's content key), least recently used first out, bounded by their total size.

    A key names its bytes for ever (content-addressed), so nothing is ever invalidated; a
    value larger than `item_limit` is never kept (it is sent from the store instead). Used from
    the event loop only: no lock.
    """

    def __init__(self, budget: int, item_share: int = 4) -> None:
        self.budget = budget
        self.item_limit = budget // item_share
        self.size = 0
        self._items: OrderedDict[object, bytes] = OrderedDict()

    def get(self, key: object) -> bytes | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def fits(self, size: int) -> bool:
        return 0 < size <= self.item_limit

    def put(self, key: object, data: bytes) -> None:
        if not self.fits(len(data)) or key in self._items:
            return
        self._items[key] = data
        self.size += len(data)
        while self.size > self.budget:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)


class Recent(Generic[K, V]):
    """At most `size` values by key, least recently used first out (from the event loop)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
