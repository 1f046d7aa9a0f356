"""Serial delivery of one subscription's messages with daprd's app response contract (1.16 postman/http),
plus the queue, triage and give-up pieces the bulk worker (`bulk_delivery`) shares.

Deliberate deviation: daprd without a resiliency policy dead-letters on the first failure, or, with no
dead-letter topic, the in-memory component re-invokes 10 times at 100 ms (1.14-1.16) or drops (1.17+).
We retry retriable failures per `RetryPolicy` (5 attempts, 100 ms doubling to 2 s, real time), then
dead-letter, or drop with an error log. Deterministic failures (bad envelope, rule error) are not retried.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sidecar import gojson
from sidecar.appchannel import AppChannel
from sidecar.clock import Clock
from sidecar.pubsub.cloudevents import (
    CLOUDEVENT_CONTENT_TYPE,
    TRACEPARENT,
    has_expired,
    is_raw_payload,
    raw_payload_envelope,
)
from sidecar.pubsub.routing import CelEvalError, select_path
from sidecar.pubsub.subscriptions import Subscription

__all__ = [
    "CHANNEL_ERRORS",
    "DeadLetter",
    "DeliveryWorker",
    "Outcome",
    "RetryPolicy",
    "SubscriptionWorker",
    "classify_reply",
    "trace_headers",
]

log = logging.getLogger("sidecar.pubsub.delivery")

DeadLetter = Callable[[str, bytes], Awaitable[None]]

# what the app channel raises when the app cannot be reached: a retriable failure
CHANNEL_ERRORS = (OSError, TimeoutError)

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SKIPPED_HEADERS = frozenset({"content-type", "content-length", "pubsubname"})


@dataclass(frozen=True)
class RetryPolicy:
    """Delivery attempts for retriable failures: `attempts` in all, sleeping `initial` seconds after
    the first failure, multiplied by `factor` up to `maximum`."""

    attempts: int = 5
    initial: float = 0.1
    maximum: float = 2.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        for _ in range(self.attempts - 1):
            yield min(delay, self.maximum)
            delay *= self.factor


class Outcome(enum.Enum):
    SUCCESS = "success"
    RETRY = "retry"
    DROP = "drop"  # the app said DROP: dead-letter if configured
    NOT_FOUND = "not-found"  # 404: drop without dead-lettering


def classify_reply(status: int, body: bytes) -> tuple[Outcome, str]:
    """The app's reply as daprd reads it (Go decodes `{"status": ...}` case-insensitively by key)."""
    if 200 <= status <= 299:
        try:
            reply = gojson.decode_first(body)
        except ValueError:
            return Outcome.SUCCESS, "no status in reply"
        reply_status = ""
        if isinstance(reply, dict):
            for key, value in reply.items():
                if key.lower() != "status" or value is None:
                    continue
                if not isinstance(value, str):  # a Go decode error: status check skipped
                    return Outcome.SUCCESS, "unparseable status"
                reply_status = value
        if reply_status in ("", "SUCCESS"):
            return Outcome.SUCCESS, "SUCCESS"
        if reply_status == "DROP":
            return Outcome.DROP, "DROP status returned from app"
        if reply_status == "RETRY":
            return Outcome.RETRY, "RETRY status returned from app"
        return Outcome.RETRY, f"unknown status returned from app: {reply_status}"
    if status == 404:
        return Outcome.NOT_FOUND, f"non-retriable error returned from app: {body[:200]!r} (404)"
    return Outcome.RETRY, f"retriable error returned from app: {body[:200]!r} ({status})"


def trace_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """`traceparent` (else `traceid`) and `tracestate` of a CloudEvent, when valid, as request headers."""
    trace = event.get("traceparent") if event.get("traceparent") is not None else event.get("traceid")
    if not isinstance(trace, str) or not TRACEPARENT.fullmatch(trace):
        return {}
    headers = {"traceparent": trace}
    state = event.get("tracestate")
    if isinstance(state, str) and state and state.isascii() and state.isprintable():
        headers["tracestate"] = state
    return headers


def _headers(sub: Subscription, event: dict[str, Any]) -> dict[str, str]:
    # daprd sends the broker message metadata as headers: for in-memory, the subscription's metadata
    headers = {
        k: v
        for k, v in sub.metadata.items()
        if _HEADER_NAME.fullmatch(k) and k.lower() not in _SKIPPED_HEADERS and v.isprintable() and v.isascii()
    }
    headers["pubsubname"] = sub.pubsubname
    headers["Content-Type"] = CLOUDEVENT_CONTENT_TYPE
    headers.update(trace_headers(event))
    return headers


class DeliveryWorker:
    """A queue plus one task delivering one subscription's messages, and the steps every delivery
    shares: reading `rawPayload`, expiration, routing, dead-lettering. Subclasses implement `_run`."""

    def __init__(
        self,
        sub: Subscription,
        *,
        channel: AppChannel,
        clock: Clock,
        dead_letter: DeadLetter,
        retry: RetryPolicy,
        queue_size: int = 10_000,
    ) -> None:
        self.sub = sub
        self.topic = sub.topic
        self._channel = channel
        self._clock = clock
        self._dead_letter = dead_letter
        self._retry = retry
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.pending = 0  # enqueued or being delivered
        # daprd parses `rawPayload` for every message; its value cannot change, so once is enough
        self._raw = False
        self._metadata_error = ""
        try:
            self._raw = is_raw_payload(sub.metadata)
        except ValueError as exc:
            self._metadata_error = f"error deserializing pubsub metadata: {exc}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pubsub:{self.sub.pubsubname}/{self.topic}")

    async def enqueue(self, data: bytes, *, wait: bool) -> None:
        if self._closing.is_set():
            return
        self.pending += 1
        try:
            if wait:
                await self._queue.put(data)
            else:
                self._queue.put_nowait(data)
        except BaseException:
            self.pending -= 1
            raise

    async def idle(self) -> None:
        await self._queue.join()

    async def stop(self, grace: float) -> None:
        """Finish the in-flight delivery (up to `grace` s, no further retries), drop queued ones."""
        self._closing.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        dropped = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            dropped += 1
        self.pending = 0
        if dropped:
            log.warning("dropped %d undelivered message(s) on %s at shutdown", dropped, self.topic)

    async def _run(self) -> None:
        raise NotImplementedError

    async def _next(self, timeout: float | None = None) -> bytes | None:
        """The next queued message; None when closing or after `timeout` seconds without one."""
        getter = asyncio.ensure_future(self._queue.get())
        closing = asyncio.ensure_future(self._closing.wait())
        await asyncio.wait({getter, closing}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if not getter.done():
            getter.cancel()
            return None
        return getter.result()

    def _settled(self, count: int) -> None:
        """`count` messages taken with `_next` are handled, whatever the outcome."""
        self.pending -= count
        for _ in range(count):
            self._queue.task_done()

    async def _retry_wait(self, delays: Iterator[float]) -> bool:
        """Sleep before the next attempt; False when there is none or the sidecar is shutting down
        (daprd does not dead-letter on shutdown either)."""
        delay = next(delays, None)
        if delay is None:
            return False
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except TimeoutError:
            return True
        return False

    async def _give_up(self, data: bytes, event_id: Any, reason: str) -> None:
        """Dead-letter when configured (daprd publishes the original bytes), else drop and log."""
        dlq = self.sub.dead_letter_topic
        if dlq:
            log.warning(
                "sending pub/sub event %s on topic %s to dead letter topic %s: %s",
                event_id,
                self.topic,
                dlq,
                reason,
            )
            try:
                await self._dead_letter(dlq, data)
            except Exception as exc:
                log.error(
                    "error sending message to dead letter, origin topic: %s dead letter topic %s err: %s",
                    self.topic,
                    dlq,
                    exc,
                )
            return
        log.error("dropping pub/sub event %s on topic %s: %s", event_id, self.topic, reason)

    async def _dropped(self, data: bytes, event_id: Any, reason: str) -> None:
        """A message daprd skips on purpose (expired, no route, DROP): dead-lettered only if configured."""
        if self.sub.dead_letter_topic:
            await self._give_up(data, event_id, reason)

    async def _cloud_event(self, data: bytes, parsed: Any, error: str) -> bool:
        """Whether `parsed` is a CloudEvent object; if not, the message is given up."""
        if isinstance(parsed, dict):
            return True
        reason = f"error deserializing cloud event in pubsub {self.sub.pubsubname}: {error}"
        await self._give_up(data, None, reason)
        return False

    async def _route(
        self, data: bytes, event: Any, event_id: Any, expiration: Mapping[str, Any]
    ) -> str | None:
        """The path for `event`, or None when it expired, matched no rule or broke one (all handled)."""
        if has_expired(expiration, self._clock.now()):
            log.warning(
                "dropping expired pub/sub event %s on topic %s as of %s",
                event_id,
                self.topic,
                expiration.get("expiration"),
            )
            await self._dropped(data, event_id, "expired")
            return None
        try:
            path = select_path(self.sub.rules, event)
        except CelEvalError as exc:
            await self._give_up(data, event_id, f"error finding matching route: {exc}")
            return None
        if path is None:
            log.debug("no matching route for event %s on topic %s; skipping", event_id, self.topic)
            await self._dropped(data, event_id, "no matching route")
        return path


class SubscriptionWorker(DeliveryWorker):
    """Delivers one subscription's messages one at a time, in order."""

    async def _run(self) -> None:
        while not self._closing.is_set():
            data = await self._next()
            if data is None:
                return
            try:
                await self._process(data)
            except Exception:
                log.exception("unexpected error delivering a message on topic %s", self.topic)
            finally:
                self._settled(1)

    async def _process(self, data: bytes) -> None:
        sub = self.sub
        if self._metadata_error:
            await self._give_up(data, None, self._metadata_error)
            return
        if self._raw:
            event = raw_payload_envelope(data, pubsub=sub.pubsubname, topic=self.topic)
            body = gojson.dumps(event)
        else:
            try:
                parsed = gojson.loads_float64(data)
            except ValueError as exc:
                parsed, error = None, str(exc)
            else:
                error = "the message is not a JSON object"
            if not await self._cloud_event(data, parsed, error):
                return
            event, body = parsed, data
        event_id = event.get("id")
        path = await self._route(data, event, event_id, event)
        if path is not None:
            await self._deliver(path, body, data, event)

    async def _deliver(self, path: str, body: bytes, data: bytes, event: dict[str, Any]) -> None:
        headers = _headers(self.sub, event)
        event_id = event.get("id")
        delays = self._retry.delays()
        reason = ""
        for attempt in range(1, self._retry.attempts + 1):
            try:
                resp = await self._channel.request("POST", path, body=body, headers=headers)
                outcome, reason = classify_reply(resp.status, resp.body)
            except CHANNEL_ERRORS as exc:
                outcome, reason = Outcome.RETRY, f"error from app channel: {type(exc).__name__}: {exc}"
            if outcome is Outcome.SUCCESS:
                return
            if outcome is Outcome.NOT_FOUND:
                log.error("pub/sub event %s on topic %s: %s", event_id, self.topic, reason)
                return
            if outcome is Outcome.DROP:
                log.warning("DROP status returned from app while processing pub/sub event %s", event_id)
                await self._dropped(data, event_id, reason)
                return
            log.warning(
                "retriable failure %d/%d delivering pub/sub event %s on topic %s: %s",
                attempt,
                self._retry.attempts,
                event_id,
                self.topic,
                reason,
            )
            if not await self._retry_wait(delays):
                if self._closing.is_set():
                    return  # shutting down: daprd does not dead-letter on shutdown either
                break
        await self._give_up(data, event_id, f"{self._retry.attempts} attempts failed; last: {reason}")
