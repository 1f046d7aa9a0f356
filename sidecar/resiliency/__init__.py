"""Resiliency policies (`kind: Resiliency`): timeouts, retries and circuit breakers around app invocation,
actor calls and component operations, as daprd's pkg/resiliency applies them."""

from __future__ import annotations

from sidecar.resiliency.breaker import BreakerSpec, CircuitBreaker, CircuitOpen
from sidecar.resiliency.policy import FAILED, Permanent, Policy, RetryPolicy, run_outbound
from sidecar.resiliency.provider import Resiliency, load_resiliency

__all__ = [
    "FAILED",
    "BreakerSpec",
    "CircuitBreaker",
    "CircuitOpen",
    "Permanent",
    "Policy",
    "Resiliency",
    "RetryPolicy",
    "load_resiliency",
    "run_outbound",
]
