"""A per-user token bucket in memory: cheap, and enough for one process (replicas each limit on their own).

Time comes from an injected monotonic source, so tests can move it and nothing reads the wall clock.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """`rate` tokens per second, up to `burst`; `take(user)` returns 0 when allowed, else seconds to wait.

    At most `max_users` buckets are kept (least recently used dropped first), so memory stays bounded
    whatever the number of users; a dropped bucket starts full again, which only errs on the lenient side.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_users: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._now = monotonic
        self._max_users = max_users
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, user: str, cost: int = 1) -> int:
        """Take `cost` tokens (at most `burst`, so any cost can pass once the bucket is full)."""
        need = float(min(max(cost, 1), self.burst))
        now = self._now()
        tokens, last = self._buckets.pop(user, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0
        if tokens >= need:
            tokens -= need
        else:
            wait = max(1, math.ceil((need - tokens) / self.rate))
        self._buckets[user] = (tokens, now)
        if len(self._buckets) > self._max_users:
            self._buckets.popitem(last=False)
        return wait
