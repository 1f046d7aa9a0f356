"""Resiliency policies for service invocation targets (`kind: Resiliency`, `spec.targets.apps`): a timeout
per attempt and constant or exponential retries, as daprd's pkg/resiliency runs them around an invocation.

A reply outside 2xx/3xx counts as a failure to retry when the retry's `matching` allows its status (all
statuses when no `matching` is given); once retries run out, that last reply goes back to the caller as it
is. Circuit breakers and the `actors`/`components` targets are not applied by the embedded sidecar: loading
a resource that sets them logs a warning naming them. Waits are on wall time: they pace a transport, not
the app's domain time, so the dev clock does not move them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.actors.timefmt import parse_go_duration
from sidecar.resources import ComponentError, resource_documents

__all__ = ["AppResiliency", "RetryPolicy", "load_app_resiliency"]

log = logging.getLogger("sidecar.invoke.resiliency")

_API = "dapr.io/v1alpha1"


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
        if self.http_codes is None:
            return True
        return any(lo <= status <= hi for lo, hi in self.http_codes)


@dataclass(frozen=True)
class AppResiliency:
    """The policy of one `apps` target."""

    timeout: float | None = None
    retry: RetryPolicy | None = None

    async def run(self, attempt: Callable[[], Awaitable[Any]], status: Callable[[Any], int]) -> Any:
        """Run `attempt` under the timeout, retrying failures (exceptions, or a reply whose `status` is
        outside 2xx/3xx and matched) until the retry policy runs out; then the last outcome stands (a
        timed-out last attempt raises `TimeoutError`)."""
        delays = iter(self.retry.delays()) if self.retry is not None else iter(())
        while True:
            try:
                if self.timeout is None:
                    reply = await attempt()
                else:
                    reply = await asyncio.wait_for(attempt(), self.timeout)
            except Exception as exc:  # every failure (a timeout too) is retried, as daprd's runner does
                error: Exception | None = exc
                reply = None
            else:
                code = status(reply)
                if 200 <= code <= 399 or self.retry is None or not self.retry.retries_status(code):
                    return reply
                error = None
            delay = next(delays, None)
            if delay is None:
                if error is not None:
                    raise error
                return reply
            log.warning("Error processing operation app invocation. Retrying in %.3fs…", delay)
            await asyncio.sleep(delay)


def load_app_resiliency(paths: Iterable[Path | str], app_id: str) -> dict[str, AppResiliency]:
    """The `apps` targets of every Resiliency resource in `paths` scoped to `app_id`."""
    targets: dict[str, AppResiliency] = {}
    for file, doc in resource_documents(paths, "Resiliency"):
        scopes = doc.get("scopes") or []
        if doc.get("apiVersion") != _API or (scopes and app_id not in scopes):
            continue
        try:
            targets.update(_decode(doc.get("spec") or {}))
        except (ValueError, TypeError, KeyError) as exc:
            raise ComponentError(f"{file}: Resiliency {_name(doc)!r}: {exc}") from None
        _warn_unapplied(file, doc)
    return targets


def _name(doc: Mapping[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name") or "")


def _decode(spec: Mapping[str, Any]) -> dict[str, AppResiliency]:
    policies = spec.get("policies") or {}
    timeouts = {str(k): parse_go_duration(str(v)) for k, v in (policies.get("timeouts") or {}).items()}
    retries = {str(k): _retry(v) for k, v in (policies.get("retries") or {}).items()}
    out: dict[str, AppResiliency] = {}
    for app, target in ((spec.get("targets") or {}).get("apps") or {}).items():
        timeout, retry = target.get("timeout"), target.get("retry")
        if timeout is not None and timeout not in timeouts:
            raise ValueError(f"app {app}: no timeout policy {timeout!r}")
        if retry is not None and retry not in retries:
            raise ValueError(f"app {app}: no retry policy {retry!r}")
        out[str(app)] = AppResiliency(
            timeouts[timeout] if timeout is not None else None,
            retries[retry] if retry is not None else None,
        )
    return out


def _retry(raw: Mapping[str, Any]) -> RetryPolicy:
    policy = str(raw.get("policy") or "constant").lower()
    if policy not in ("constant", "exponential"):
        raise ValueError(f"retry policy {policy!r} is neither constant nor exponential")
    base = RetryPolicy()
    matching = raw.get("matching") or {}
    return RetryPolicy(
        policy=policy,
        duration=_seconds(raw.get("duration"), base.duration),
        initial_interval=_seconds(raw.get("initialInterval"), base.initial_interval),
        max_interval=_seconds(raw.get("maxInterval"), base.max_interval),
        max_retries=int(raw["maxRetries"]) if raw.get("maxRetries") is not None else base.max_retries,
        http_codes=_codes(str(matching["httpStatusCodes"])) if matching.get("httpStatusCodes") else None,
    )


def _seconds(value: Any, default: float) -> float:
    return default if value is None else parse_go_duration(str(value))


def _codes(patterns: str) -> tuple[tuple[int, int], ...]:
    """daprd's `parsePatterns`: `429,500-599`, each within 100-599."""
    ranges = []
    for part in patterns.split(","):
        lo, _, hi = part.strip().partition("-")
        start, end = int(lo), int(hi or lo)
        if not 100 <= start <= end <= 599:
            raise ValueError(f"invalid HTTP status code range {part.strip()!r}")
        ranges.append((start, end))
    return tuple(ranges)


def _warn_unapplied(file: Path, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec") or {}
    unapplied = [f"policies.{k}" for k in (spec.get("policies") or {}) if k not in ("timeouts", "retries")]
    unapplied += [f"targets.{k}" for k in (spec.get("targets") or {}) if k != "apps"]
    if unapplied:
        log.warning(
            "%s: Resiliency %r: %s not applied by the embedded sidecar (only apps targets' timeouts and "
            "retries are)",
            file,
            _name(doc),
            ", ".join(unapplied),
        )
