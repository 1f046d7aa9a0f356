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
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sidecar import gojson
from sidecar.clock import Clock
from sidecar.pubsub.cloudevents import (
    TRACEPARENT,
    has_expired,
    is_raw_payload,
    raw_payload_envelope,
)
from sidecar.pubsub.retry import CHANNEL_ERRORS, RetryPolicy, app_unreachable
from sidecar.pubsub.routing import CelEvalError, select_path
from sidecar.pubsub.subscriptions import Subscription

if TYPE_CHECKING:
    from sidecar.pubsub.transports import EventTransport

__all__ = [
    "DeadLetter",
    "DeliveryWorker",
    "HealthGate",
    "Message",
    "Outcome",
    "Settled",
    "SubscriptionWorker",
    "classify_reply",
    "trace_headers",
]

log = logging.getLogger("sidecar.pubsub.delivery")

DeadLetter = Callable[[str, bytes], Awaitable[None]]


class HealthGate(Protocol):
    """App health as deliveries see it (sidecar.health): while unhealthy, nothing is delivered."""

    def is_healthy(self) -> bool: ...

    async def wait_healthy(self) -> None: ...


class Message:
    """One message on its way to a subscriber: the broker bytes and, for a durable broker, its consumer
    group and sequence number (0 in memory)."""

    __slots__ = ("data", "group", "seq")

    def __init__(self, data: bytes, seq: int = 0, group: int = 0) -> None:
        self.data = data
        self.seq = seq
        self.group = group


Settled = Callable[[list[Message]], None]


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


class DeliveryWorker:
    """A queue plus one task delivering one subscription's messages, and the steps every delivery
    shares: reading `rawPayload`, expiration, routing, dead-lettering. Subclasses implement `_run`.

    `settled` (durable brokers) is told which messages reached a final outcome, so they are acknowledged;
    a message abandoned at shutdown is not. `wait_for_app`: an unreachable app channel uses up no
    attempt; the message waits (with backoff) until the app is back instead of being given up. `health`:
    while app health checks report the app unhealthy, no attempt is made; the message waits (daprd stops
    its subscriptions then). `transport` sends to the app over the app channel's protocol.
    """

    def __init__(
        self,
        sub: Subscription,
        *,
        transport: EventTransport,
        clock: Clock,
        dead_letter: DeadLetter,
        retry: RetryPolicy,
        queue_size: int = 10_000,
        settled: Settled | None = None,
        wait_for_app: bool = False,
        health: HealthGate | None = None,
    ) -> None:
        self.sub = sub
        self.topic = sub.topic
        self._transport = transport
        self._health = health
        self._clock = clock
        self._dead_letter = dead_letter
        self._retry = retry
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
        self._on_settled = settled
        self._wait_for_app = wait_for_app
        self._closing = asyncio.Event()
        self._waiting: asyncio.Future[None] | None = None  # `_next` waits on it: a message came, or closing
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
                await self._queue.put(Message(data))
            else:
                self._queue.put_nowait(Message(data))
        except BaseException:
            self.pending -= 1
            raise
        self._wake()

    def feed(self, message: Message) -> bool:
        """Hand over one message a durable broker paged in (the broker bounds the queue); False when
        closing."""
        if self._closing.is_set():
            return False
        self.pending += 1
        self._queue.put_nowait(message)
        self._wake()
        return True

    async def idle(self) -> None:
        await self._queue.join()

    async def stop(self, grace: float) -> None:
        """Finish the in-flight delivery (up to `grace` s, no further retries), drop queued ones (a
        durable broker still has them)."""
        self._closing.set()
        self._wake()
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
        if dropped and self._on_settled is not None:
            log.info("%d undelivered message(s) on %s kept for after a restart", dropped, self.topic)
        elif dropped:
            log.warning("dropped %d undelivered message(s) on %s at shutdown", dropped, self.topic)

    async def _run(self) -> None:
        raise NotImplementedError

    async def _next(self, timeout: float | None = None) -> Message | None:
        """The next queued message; None when closing or after `timeout` seconds without one.

        Called once or twice per delivered batch: one future and a timer, not a task per event source."""
        if self._queue.empty():
            if self._closing.is_set():
                return None
            loop = asyncio.get_running_loop()
            self._waiting = waiting = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _release, waiting)
            try:
                await waiting
            finally:
                self._waiting = None
                if timer is not None:
                    timer.cancel()
            if self._queue.empty():
                return None
        return self._queue.get_nowait()

    def _wake(self) -> None:
        """A message was queued or the worker is closing: end the wait in `_next`."""
        if self._waiting is not None:
            _release(self._waiting)

    def _settled(self, messages: list[Message]) -> None:
        """`messages` taken with `_next` are handled, whatever the outcome; acknowledged unless the
        worker is shutting down (then a durable broker redelivers them after a restart)."""
        if self._on_settled is not None and not self._closing.is_set():
            self._on_settled(messages)
        self.pending -= len(messages)
        for _ in messages:
            self._queue.task_done()

    async def _channel_down(self, down_delays: Iterator[float]) -> bool:
        """After an app-channel error with `wait_for_app`: wait the next of `down_delays` and return
        True to try again; False when shutting down."""
        try:
            await asyncio.wait_for(self._closing.wait(), next(down_delays))
        except TimeoutError:
            return True
        return False

    async def _app_healthy(self) -> bool:
        """Wait while the app is unhealthy; False when shutting down meanwhile."""
        if self._health is None or self._health.is_healthy():
            return True
        log.debug("app unhealthy: delivery on topic %s paused", self.topic)
        healthy = asyncio.ensure_future(self._health.wait_healthy())
        closing = asyncio.ensure_future(self._closing.wait())
        await asyncio.wait({healthy, closing}, return_when=asyncio.FIRST_COMPLETED)
        healthy.cancel()
        closing.cancel()
        return not self._closing.is_set()

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
            message = await self._next()
            if message is None:
                return
            try:
                await self._process(message.data)
            except Exception:
                log.exception("unexpected error delivering a message on topic %s", self.topic)
            finally:
                self._settled([message])

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
        event_id = event.get("id")
        delays = self._retry.delays()
        down_delays = self._retry.down_delays()
        reason = ""
        attempt = 0
        while attempt < self._retry.attempts:
            if not await self._app_healthy():
                return  # shutting down: kept for redelivery
            attempt += 1
            try:
                outcome, reason = await self._transport.deliver(path, body, event)
            except CHANNEL_ERRORS as exc:
                outcome, reason = Outcome.RETRY, f"error from app channel: {type(exc).__name__}: {exc}"
                if self._wait_for_app and app_unreachable(exc):
                    log.debug("app unreachable for pub/sub event %s on %s: %s", event_id, self.topic, reason)
                    attempt -= 1
                    if await self._channel_down(down_delays):
                        continue
                    return  # shutting down: kept for redelivery
            down_delays = self._retry.down_delays()
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


def _release(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)
