"""A subscription's delivery worker: its queue and task, and the steps serial (`delivery`) and bulk
(`bulk_delivery`) delivery share: `rawPayload`, expiration, routing, health pauses, giving up, durable acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sidecar.clock import Clock
from sidecar.pubsub.cloudevents import has_expired, is_raw_payload
from sidecar.pubsub.retry import RetryPolicy
from sidecar.pubsub.routing import CelEvalError, select_path
from sidecar.pubsub.subscriptions import Subscription

if TYPE_CHECKING:
    from sidecar.pubsub.transports import EventTransport

__all__ = ["DeadLetter", "DeliveryWorker", "HealthGate", "Message", "Settled"]

log = logging.getLogger("sidecar.pubsub.worker")

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
            log.info("%d undelivered message(s) on %s kept for a later delivery", dropped, self.topic)
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


def _release(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)
