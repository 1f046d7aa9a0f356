"""Time for the sidecar: every deadline goes through a `Clock`, so tests can move a month in a second.

`SystemClock` is wall time. `ManualClock` is wall time plus an offset that only grows: time still flows
(retries and backoffs behave normally) and `advance()` jumps it forward, waking every waiter whose deadline
passed. Nothing in the sidecar reads `time.time()` directly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]

# A waiter re-checks its deadline at least this often, so wall-time flow is noticed without an advance().
_MAX_NAP = 0.25


class Clock(Protocol):
    """Source of the current instant (UTC epoch seconds) and of deadline waits."""

    def now(self) -> float: ...

    async def wait_until(self, deadline: float) -> None:
        """Return once `now() >= deadline`; never earlier."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    async def wait_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - self.now()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 60.0))


class ManualClock:
    """Wall time plus a forward-only offset that `advance()` grows; thread-safe.

    Waiters live on any event loop; `advance()` may be called from any thread.
    """

    def __init__(self, start_offset: float = 0.0) -> None:
        self._offset = start_offset
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._waiters: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds` (>= 0) and wake waiters now due. Returns the new now()."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
            now = self.now()
            due: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
            while self._waiters and self._waiters[0][0] <= now:
                _, _, loop, fut = heapq.heappop(self._waiters)
                due.append((loop, fut))
        for loop, fut in due:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)
        return now

    async def wait_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            remaining = deadline - self.now()
            if remaining <= 0:
                return
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                heapq.heappush(self._waiters, (deadline, next(self._seq), loop, fut))
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout=min(remaining, _MAX_NAP))
            except TimeoutError:
                pass
            finally:
                if not fut.done():
                    fut.cancel()
                self._forget_cancelled()

    def _forget_cancelled(self) -> None:
        with self._lock:
            if len(self._waiters) > 64 and sum(w[3].done() for w in self._waiters) > len(self._waiters) // 2:
                self._waiters = [w for w in self._waiters if not w[3].done()]
                heapq.heapify(self._waiters)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
