"""Rendered pages kept in memory, one cache per running app (see Resources)."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

_PAGES = 4096  # rendered pages kept per app


class PageCache:
    """Rendered simple pages, keyed by the channel's simple revision: a publish bumps the
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
