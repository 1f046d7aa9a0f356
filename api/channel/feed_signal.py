"""A change signal: the channel appends events to a user's feed and rings it; open SSE streams of the
public API wake at once instead of waiting for their next poll. Thread-safe: in tests the two apps run on
different threads and loops."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

__all__ = ["FeedSignal", "Watch"]


class FeedSignal:
    """Wake every watcher of a user when that user's feed grows.

    Watch *before* reading the feed, then wait: an append between the read and the wait still wakes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def notify(self, user: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(user, set())
        for fut in waiters:
            loop = fut.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)

    @contextlib.contextmanager
    def watch(self, user: str) -> Iterator[Watch]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.setdefault(user, set()).add(fut)
        try:
            yield Watch(fut)
        finally:
            with self._lock:
                waiters = self._waiters.get(user)
                if waiters is not None:
                    waiters.discard(fut)
                    if not waiters:
                        del self._waiters[user]


class Watch:
    def __init__(self, fut: asyncio.Future[None]) -> None:
        self._fut = fut

    async def wait(self, timeout: float) -> bool:
        """True once notified, False after `timeout` seconds without a notification."""
        try:
            await asyncio.wait_for(asyncio.shield(self._fut), timeout)
            return True
        except TimeoutError:
            return False


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
