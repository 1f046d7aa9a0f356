"""What the public API and the app channel of one process share: a change signal, the actors' clock,
which user owns which list, and the metrics registry both count into.

The channel appends events to a user's feed and rings the signal; open SSE streams wake at once instead
of waiting for their next poll. The dev clock follows the sidecar's manual clock (its offset from wall
time), so the actors compute `now` exactly as the sidecar's scheduler does. Task events name a list but
not its owner; the API records owners as it serves them, so the channel rarely has to ask the list actor
(and still knows the owner when the list was just deleted). All are thread-safe: in tests the two apps run
on different threads and loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from api.metrics import ApiMetrics
from todo_actors.sidecar_http import SidecarHttp

__all__ = ["FeedSignal", "OffsetClock", "OwnerCache", "Shared", "Watch"]


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


class OffsetClock:
    """Wall time plus a forward-only offset: mirrors the sidecar's dev clock (`/v1.0-dev/clock`).

    Without `--dev-clock` the offset stays 0 and this is the wall clock.
    """

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._offset = 0.0

    @property
    def offset(self) -> float:
        return self._offset

    def follow(self, offset_seconds: float) -> None:
        """Adopt the sidecar's offset; never moves backwards."""
        self._offset = max(self._offset, offset_seconds)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._wall() + self._offset, dt.UTC)


class OwnerCache:
    """list id -> owner, the `size` most recently used (owners never change)."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._owners: OrderedDict[str, str] = OrderedDict()

    def record(self, list_id: str, owner: str) -> None:
        with self._lock:
            self._owners[list_id] = owner
            self._owners.move_to_end(list_id)
            if len(self._owners) > self._size:
                self._owners.popitem(last=False)

    def get(self, list_id: str) -> str | None:
        with self._lock:
            return self._owners.get(list_id)


@dataclass
class Shared:
    """One per process; pass the same instance to `create_app` and `create_channel_app`."""

    signal: FeedSignal = field(default_factory=FeedSignal)
    clock: OffsetClock = field(default_factory=OffsetClock)
    owners: OwnerCache = field(default_factory=OwnerCache)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    sidecar: SidecarHttp | None = None  # made by the first lifespan (`api.sidecar_link.sidecar_http`)
