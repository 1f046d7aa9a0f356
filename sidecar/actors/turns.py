"""Turn-based concurrency: one FIFO lock per actor id, shared by method calls, reminders, timers and
deactivation. The SDK has no lock of its own, so serializing an actor's turns is entirely the sidecar's job.

With reentrancy on, a call carrying the `Dapr-Reentrancy-Id` of the turn in flight enters without waiting
(up to `maxStackDepth` nested calls), as daprd's `lock.go` does.
"""

from __future__ import annotations

import asyncio
from collections import deque

from sidecar.errors import error

__all__ = ["TurnLock"]


class TurnLock:
    """A strictly FIFO asyncio lock with optional reentrancy by request id.

    The waiter queue exists only while someone waits: most of a host's actors are idle, and an empty
    deque costs 600 bytes each.
    """

    __slots__ = ("_depth", "_locked", "_owner", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._owner: str | None = None
        self._depth = 0
        self._waiters: deque[asyncio.Future[None]] | None = None

    @property
    def busy(self) -> bool:
        return self._locked or bool(self._waiters)

    @property
    def has_waiters(self) -> bool:
        return self._waiters is not None and any(not f.done() for f in self._waiters)

    async def acquire(self, reentrancy_id: str | None = None, max_depth: int = 32) -> None:
        if self._locked and reentrancy_id is not None and reentrancy_id == self._owner:
            if self._depth >= max_depth:
                raise error("ERR_ACTOR_STACK_DEPTH", "maximum stack depth exceeded")
            self._depth += 1
            return
        if not self._locked and not self._waiters:
            self._take(reentrancy_id)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = deque()
        self._waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                # We were handed the lock but are going away: pass it on.
                self._release_one()
            elif self._waiters is not None and fut in self._waiters:  # a release may have popped it
                self._waiters.remove(fut)
            raise
        self._take(reentrancy_id)

    def _take(self, reentrancy_id: str | None) -> None:
        self._locked = True
        self._owner = reentrancy_id
        self._depth = 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        self._release_one()

    def _release_one(self) -> None:
        self._owner = None
        self._depth = 0
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                # Hand over directly: the lock stays taken, so no newcomer can barge in (FIFO).
                fut.set_result(None)
                return
        self._waiters = None
        self._locked = False
