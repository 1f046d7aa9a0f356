"""One resolved resiliency policy and its runner, in daprd's order: a timeout per attempt, inside the
circuit breaker, inside the retries (pkg/resiliency/policy.go `NewRunnerWithOptions`).

A reply the caller classifies as failed (daprd's `CodeError`: an app's status outside 2xx/3xx) counts
against the breaker and is retried when the retry's `matching` allows its status; once retries run out the
last such reply goes back as it is. Waits are on wall time: they pace a transport, not the app's domain
time, so the dev clock does not move them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sidecar.resiliency.breaker import CircuitBreaker, CircuitOpen

__all__ = ["FAILED", "Permanent", "Policy", "RetryPolicy", "run_outbound"]

log = logging.getLogger("sidecar.resiliency")

T = TypeVar("T")

# What `failed` returns for a failed reply that carries no status to match (daprd: an error that is not a
# `CodeError`): always retried.
FAILED = -1


class Permanent(Exception):
    """Raised by an attempt for a failure that must not be retried (backoff.Permanent); the runner raises
    its `error` after the breaker has counted it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class RetryPolicy:
    """dapr/kit's retry.Config (defaults as its DefaultConfig) with daprd's status-code matching."""

    policy: str = "constant"
    duration: float = 5.0
    initial_interval: float = 0.5
    randomization: float = 0.5
    multiplier: float = 1.5
    max_interval: float = 60.0
    max_elapsed: float = 15 * 60.0
    max_retries: int = -1
    http_codes: tuple[tuple[int, int], ...] | None = None  # None: every status is retried
    grpc_codes: tuple[tuple[int, int], ...] | None = None

    def delays(self) -> Iterable[float]:
        """The waits before each retry (cenkalti/backoff's constant and exponential back-offs)."""
        count, elapsed, interval = 0, 0.0, self.initial_interval
        while self.max_retries < 0 or count < self.max_retries:
            if self.policy == "exponential":
                delta = self.randomization * interval
                delay = random.uniform(interval - delta, interval + delta)
                interval = min(interval * self.multiplier, self.max_interval)
                if elapsed + delay > self.max_elapsed > 0:
                    return
            else:
                delay = self.duration
            count += 1
            elapsed += delay
            yield delay

    def retries_status(self, status: int) -> bool:
        """daprd's `statusCodeNeedRetry`: 0-16 is a gRPC code, 100-599 an HTTP status."""
        ranges = self.grpc_codes if 0 <= status <= 16 else self.http_codes if 100 <= status <= 599 else ()
        return ranges is None or any(lo <= status <= hi for lo, hi in ranges)


@dataclass(frozen=True)
class Policy:
    """What applies to one call: `name` is daprd's operation name in its retry log line."""

    name: str
    timeout: float | None = None
    retry: RetryPolicy | None = None
    breaker: CircuitBreaker | None = None

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        failed: Callable[[T], int | None] = lambda _: None,
    ) -> T:
        """Run `attempt` under the policy. `failed(reply)` is None for a successful reply, else its status
        (matched against the retry's codes) or FAILED. Exceptions are failures and retried, except
        `CircuitOpen` and `Permanent` (whose error is raised); a timed-out last attempt raises
        `TimeoutError`."""
        delays = iter(self.retry.delays()) if self.retry is not None else iter(())
        while True:
            error: Exception | None = None
            retriable = True
            try:
                reply = await self._once(attempt, failed)
            except CircuitOpen:
                raise
            except Permanent as exc:
                raise exc.error from None
            except Exception as exc:  # every other failure (a timeout too) is retried, as daprd's runner does
                error = exc
            else:
                code = failed(reply)
                if code is None:
                    return reply
                retriable = self.retry is not None and (code == FAILED or self.retry.retries_status(code))
            delay = next(delays, None) if retriable else None
            if delay is None:
                if error is not None:
                    raise error
                return reply
            log.warning("Error processing operation %s. Retrying in %.3fs…", self.name, delay)
            await asyncio.sleep(delay)

    async def _once(self, attempt: Callable[[], Awaitable[T]], failed: Callable[[T], int | None]) -> T:
        generation = self.breaker.before() if self.breaker is not None else 0
        try:
            if self.timeout is None:
                reply = await attempt()
            else:
                async with asyncio.timeout(self.timeout):  # no task per attempt, as wait_for makes
                    reply = await attempt()
        except asyncio.CancelledError:
            raise
        except BaseException:
            if self.breaker is not None:
                self.breaker.after(generation, False)
            raise
        if self.breaker is not None:
            self.breaker.after(generation, failed(reply) is None)
        return reply


async def run_outbound(
    policy: Policy | None, operation: Callable[[], Awaitable[T]], failure: type[Exception]
) -> T:
    """Run one component operation under `policy`; a timeout or an open breaker is raised as `failure`
    (the component's own error type) with daprd's text, so each API maps it as it maps the component's."""
    if policy is None:
        return await operation()
    try:
        return await policy.run(operation)
    except TimeoutError:
        raise failure("context deadline exceeded") from None
    except CircuitOpen as exc:
        raise failure(str(exc)) from None
