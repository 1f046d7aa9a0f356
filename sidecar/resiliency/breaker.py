"""Circuit breakers as daprd runs them (sony/gobreaker behind pkg/resiliency/breaker): counts per generation,
a CEL `trip` over those counts, open for `timeout`, then `maxRequests` half-open probes. State lives in
memory per sidecar, as in daprd, and moves on wall time: it paces a transport, not the app's domain time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.pubsub.cel import CelError, CelEvalError, Expression, compile_expression

__all__ = ["BreakerSpec", "CircuitBreaker", "CircuitOpen", "Counts"]

log = logging.getLogger("sidecar.resiliency")

# The names daprd's breaker gives the CEL `trip` expression.
_TRIP_VARIABLES = frozenset(
    {"requests", "totalSuccesses", "totalFailures", "consecutiveSuccesses", "consecutiveFailures"}
)


class CircuitOpen(Exception):
    """The breaker refused the call without running it (gobreaker's ErrOpenState or ErrTooManyRequests):
    never retried, as daprd marks both permanent. The text is gobreaker's."""


@dataclass
class Counts:
    """gobreaker's Counts: cleared on every change of state (and each `interval` while closed)."""

    requests: int = 0
    total_successes: int = 0
    total_failures: int = 0
    consecutive_successes: int = 0
    consecutive_failures: int = 0

    def variables(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "totalSuccesses": self.total_successes,
            "totalFailures": self.total_failures,
            "consecutiveSuccesses": self.consecutive_successes,
            "consecutiveFailures": self.consecutive_failures,
        }


@dataclass(frozen=True)
class BreakerSpec:
    """One `policies.circuitBreakers` entry, with gobreaker's defaults: 1 half-open probe, counts never
    cleared while closed (`interval` 0), open for 60 s, trip on `consecutiveFailures > 5`."""

    name: str
    max_requests: int = 1
    interval: float = 0.0
    timeout: float = 60.0
    trip: Expression | None = None

    @staticmethod
    def compile_trip(source: str) -> Expression:
        try:
            return compile_expression(source, _TRIP_VARIABLES)
        except CelError as exc:
            raise ValueError(f"invalid trip expression: {exc}") from None


@dataclass
class CircuitBreaker:
    """One breaker instance (daprd keeps one per app endpoint, actor type or id, component)."""

    name: str
    spec: BreakerSpec
    now: Callable[[], float] = time.monotonic
    state: str = "closed"
    counts: Counts = field(default_factory=Counts)
    _generation: int = 0
    _expiry: float = 0.0  # 0: none (closed without an interval, or half-open)

    def __post_init__(self) -> None:
        self._new_generation(self.now())

    def before(self) -> int:
        """Admit one call or raise `CircuitOpen`; returns the generation to hand to `after`."""
        state = self._current(self.now())
        if state == "open":
            raise CircuitOpen("circuit breaker is open")
        if state == "half-open" and self.counts.requests >= max(self.spec.max_requests, 1):
            raise CircuitOpen("too many requests")
        self.counts.requests += 1
        return self._generation

    def after(self, generation: int, success: bool) -> None:
        """Record the outcome of a call admitted in `generation` (ignored once the state has moved on)."""
        now = self.now()
        state = self._current(now)
        if generation != self._generation:
            return
        c = self.counts
        if success:
            c.total_successes += 1
            c.consecutive_successes += 1
            c.consecutive_failures = 0
            if state == "half-open" and c.consecutive_successes >= max(self.spec.max_requests, 1):
                self._set("closed", now)
            return
        c.total_failures += 1
        c.consecutive_failures += 1
        c.consecutive_successes = 0
        if state == "half-open" or (state == "closed" and self._ready_to_trip()):
            self._set("open", now)

    def _ready_to_trip(self) -> bool:
        if self.spec.trip is None:
            return self.counts.consecutive_failures > 5
        try:
            result = self.spec.trip.value(dict(self.counts.variables()))
        except CelEvalError:
            return False  # daprd: an expression that fails to evaluate never trips
        return result is True

    def _current(self, now: float) -> str:
        if self.state == "closed" and self._expiry and self._expiry < now:
            self._new_generation(now)
        elif self.state == "open" and self._expiry < now:
            self._set("half-open", now)
        return self.state

    def _set(self, state: str, now: float) -> None:
        if state == self.state:
            return
        log.info("Circuit breaker %r changed state from %s to %s", self.name, self.state, state)
        self.state = state
        self._new_generation(now)

    def _new_generation(self, now: float) -> None:
        self._generation += 1
        self.counts = Counts()
        if self.state == "closed":
            self._expiry = now + self.spec.interval if self.spec.interval > 0 else 0.0
        elif self.state == "open":
            self._expiry = now + (self.spec.timeout if self.spec.timeout > 0 else 60.0)
        else:
            self._expiry = 0.0
