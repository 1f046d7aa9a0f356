"""When a delivery is tried again: the retry policy for failures the app answered or caused, and, for a
durable broker, the endless backoff while the app cannot be reached at all (no attempt is used up then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["CHANNEL_DOWN_MAX_DELAY", "CHANNEL_ERRORS", "RetryPolicy", "app_unreachable"]

T = TypeVar("T")

# what the app channel raises when the app cannot be reached: a retriable failure
# the wire client's errors are OSErrors (ConnectionError when the app cannot be reached)
CHANNEL_ERRORS = (OSError, TimeoutError)

# the longest wait between tries while the app channel is down and a durable broker keeps the message
CHANNEL_DOWN_MAX_DELAY = 2.0


def app_unreachable(exc: BaseException) -> bool:
    """A connection failure (app down or restarting), not an app that took too long to answer."""
    down = isinstance(exc, ConnectionError)
    return down and not isinstance(exc, TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    """Delivery attempts for retriable failures: `attempts` in all, sleeping `initial` seconds after
    the first failure, multiplied by `factor` up to `maximum`."""

    attempts: int = 5
    initial: float = 0.1
    maximum: float = 2.0
    factor: float = 2.0
    timeout: float | None = None  # per attempt: a pub/sub component's inbound resiliency policy sets one

    async def bounded(self, attempt: Awaitable[T]) -> T:
        """Await one delivery attempt within `timeout` (a TimeoutError is a retriable channel error)."""
        return await (attempt if self.timeout is None else asyncio.wait_for(attempt, self.timeout))

    def delays(self) -> Iterator[float]:
        delay = self.initial
        for _ in range(self.attempts - 1):
            yield min(delay, self.maximum)
            delay *= self.factor

    def down_delays(self) -> Iterator[float]:
        """Waits between tries while the app is unreachable: from `initial`, growing by `factor` up
        to CHANNEL_DOWN_MAX_DELAY, without end."""
        delay = self.initial
        while True:
            yield min(delay, CHANNEL_DOWN_MAX_DELAY)
            delay = min(delay * self.factor, CHANNEL_DOWN_MAX_DELAY)
