"""One load per key at a time, shared by every request waiting for it: a hundred clients asking
at once for a channel nobody read yet, or for a 34 MB artifact not in memory yet, cause one
database query or one read, not a hundred."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Loads:
    """Used from the event loop. A load is a coroutine: a read in a worker thread and what
    the loop does with its result."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._running)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._running

    async def run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        # A waiter that goes away (its client hung up) does not cancel the others' load.
        result: T = await asyncio.shield(self._begin(key, load))
        return result

    def start(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> None:
        """Load in the background unless it is loading already; nobody waits for it."""
        if key not in self._running:
            self._begin(key, load).add_done_callback(_retrieved)

    def _begin(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        running = self._running.get(key)
        if running is None:  # registered at once: the next request finds it
            running = asyncio.ensure_future(load())
            self._running[key] = running
            running.add_done_callback(lambda _: self._running.pop(key, None))
        return running


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the load logged it, asyncio need not
