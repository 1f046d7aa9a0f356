"""The pub/sub building block: publish APIs in (daprd 1.16 validation order, codes, messages),
deliveries out. Subscriptions start once, in `load_subscriptions()`; earlier messages are dropped by an
in-memory component and kept by a durable one (`pubsub.embedded.sqlite`) until a subscriber acknowledged them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.appchannel import ChannelBase
from sidecar.clock import Clock
from sidecar.errors import DaprError, error
from sidecar.pubsub.broker import SUPPORTED_TYPE as IN_MEMORY_TYPE
from sidecar.pubsub.broker import BrokerClosed, BrokerSpec, InMemoryBroker
from sidecar.pubsub.bulk_delivery import BulkSubscriptionWorker
from sidecar.pubsub.cloudevents import TraceContext, build_envelope, is_raw_payload
from sidecar.pubsub.delivery import SubscriptionWorker
from sidecar.pubsub.durable import DURABLE_TYPE, SqliteBroker
from sidecar.pubsub.retry import RetryPolicy
from sidecar.pubsub.streaming import Streams
from sidecar.pubsub.subscriptions import (
    INIT_RETRY_DELAYS,
    DeclarativeSubscription,
    Subscription,
    SubscriptionError,
    fetch_app_subscriptions,
    from_declarative,
    merge_subscriptions,
)
from sidecar.pubsub.transports import EventTransport, transport_for
from sidecar.pubsub.worker import DeadLetter, DeliveryWorker, HealthGate

__all__ = ["BulkEntry", "PubSubEngine"]

log = logging.getLogger("sidecar.pubsub")

# (pubsub name, one publish) -> that publish's sequence number, run under the component's policy.
PublishGuard = Callable[[str, Callable[[], Awaitable[int]]], Awaitable[int]]

Broker = InMemoryBroker | SqliteBroker
BROKER_TYPES = (DURABLE_TYPE, IN_MEMORY_TYPE)


def open_broker(spec: BrokerSpec, app_id: str, data_dir: Path | None, synchronous: str) -> Broker:
    """The broker of one component; ValueError for a type or setting the embedded sidecar lacks."""
    if spec.type in BROKER_TYPES and spec.version not in ("v1", ""):
        raise ValueError(
            f"pubsub component {spec.name!r}: version {spec.version!r} of {spec.type} does not exist (use v1)"
        )
    if spec.type == DURABLE_TYPE:
        if data_dir is None:
            raise ValueError(f"pubsub component {spec.name!r}: {DURABLE_TYPE} needs the sidecar's data dir")
        return SqliteBroker(spec, app_id, data_dir=data_dir, synchronous=synchronous)
    if spec.type == IN_MEMORY_TYPE:
        return InMemoryBroker(spec, app_id)
    raise ValueError(
        f"pubsub component {spec.name!r} has type {spec.type!r}; the embedded sidecar "
        f"implements only {', '.join(BROKER_TYPES)}"
    )


@dataclass(frozen=True)
class BulkEntry:
    """One bulk publish entry. `metadata=None` means absent: then, as in daprd, the request metadata
    is not merged into the entry (no `cloudevent.*` overrides or ttl for it)."""

    entry_id: str
    event: bytes
    content_type: str | None
    metadata: Mapping[str, str] | None = None


class PubSubEngine:
    """All pubsub components of one sidecar and the app's subscriptions to them."""

    def __init__(
        self,
        brokers: Sequence[BrokerSpec],
        app_id: str,
        channel: ChannelBase,
        clock: Clock,
        *,
        declarative: Sequence[DeclarativeSubscription] = (),
        retry: RetryPolicy | None = None,
        init_retry_delays: Sequence[float] = INIT_RETRY_DELAYS,
        queue_size: int = 10_000,
        stop_grace: float = 5.0,
        data_dir: Path | None = None,
        sqlite_synchronous: str = "FULL",
        health: HealthGate | None = None,
        publish_guard: PublishGuard | None = None,
        delivery_retry: Callable[[str], RetryPolicy | None] | None = None,
    ) -> None:
        """Raises ValueError for an unsupported component and SubscriptionError for a declarative
        subscription with an invalid or unsupported rule or bulk setting. A durable component keeps its
        file under `data_dir`. `publish_guard(pubsub, publish)` runs each publish of the APIs (the
        component's outbound resiliency policy); it raises `BrokerClosed` for a failed one.
        `delivery_retry(pubsub)`: the retries of that component's deliveries (its inbound resiliency
        policy) instead of `retry`, None for `retry`."""
        self._guard = publish_guard
        self._delivery_retry = delivery_retry or (lambda _: None)
        self.app_id = app_id
        self._channel = channel
        self._health = health  # app health checks: deliveries pause while the app is unhealthy
        self._clock = clock
        self._brokers: dict[str, Broker] = {}
        try:
            for spec in brokers:
                if spec.name in self._brokers:
                    raise ValueError(f"duplicate pubsub component name {spec.name!r}")
                self._brokers[spec.name] = open_broker(spec, app_id, data_dir, sqlite_synchronous)
            self._declarative = [s for d in declarative if (s := from_declarative(d, app_id)) is not None]
        except BaseException:
            self._discard()
            raise
        for sub in self._declarative:
            # known before the app is up: a durable component keeps their messages from now on
            durable = self._brokers.get(sub.pubsubname)
            if isinstance(durable, SqliteBroker) and durable.scopes.may_subscribe(sub.topic):
                durable.remember(sub.topic)
        self._programmatic: list[Subscription] = []
        self._retry = retry or RetryPolicy()
        self._init_retry_delays = tuple(init_retry_delays)
        self._queue_size = queue_size
        self._stop_grace = stop_grace
        self._workers: list[DeliveryWorker] = []
        # gRPC `SubscribeTopicEventsAlpha1` subscriptions
        self.streams = Streams(self._resolve, functools.partial(self._worker, streaming=True), stop_grace)
        self._loaded = False

    # --- lifecycle ------------------------------------------------------------------------------

    def _discard(self) -> None:
        """Construction failed: close the files already opened."""
        for broker in self._brokers.values():
            if isinstance(broker, SqliteBroker):
                broker.discard()

    async def start(self) -> None:
        """Ready to publish; deliveries begin with `load_subscriptions()`."""

    async def stop(self) -> None:
        """Close every component, let in-flight deliveries finish (bounded) and drop queued ones
        (a durable component keeps every message not acknowledged yet)."""
        self._loaded = True  # a later load_subscriptions() must not start workers
        for broker in self._brokers.values():
            broker.close()
        workers, self._workers = self._workers + self.streams.end_all(), []
        await asyncio.gather(*(worker.stop(self._stop_grace) for worker in workers))
        await asyncio.gather(*(broker.shutdown() for broker in self._brokers.values()))

    async def idle(self) -> None:
        """Wait until every message of a running subscription (dead letters included) was handled."""
        for broker in self._brokers.values():
            await broker.idle()

    def busy(self) -> bool:
        """Whether any message is not yet acknowledged by its subscriber or is in delivery (cheap)."""
        return any(broker.busy() for broker in self._brokers.values())

    async def load_subscriptions(self) -> None:
        """Read `/dapr/subscribe` once and start delivering, declarative subscriptions included.

        Raises SubscriptionError (after starting the declarative subscriptions) when the app's
        list is malformed or has a rule we cannot evaluate; no programmatic one is started then.
        """
        if self._loaded:
            return
        self._loaded = True
        if not self._brokers:
            return
        if not self._channel.configured:
            log.warning(
                "app channel not initialized, make sure -app-port is specified if pubsub "
                "subscription is required"
            )
            return
        try:
            programmatic = await fetch_app_subscriptions(self._channel, self._init_retry_delays)
        except SubscriptionError as exc:
            log.error("failed to subscribe to topics: %s", exc)
            self._start_workers(self._declarative)
            raise
        self._programmatic = programmatic or []
        for sub in self._programmatic:
            log.info("app is subscribed to topic %s through pubsub=%s", sub.topic, sub.pubsubname)
        self._start_workers(merge_subscriptions(self._declarative, self._programmatic))
        if programmatic is not None:  # the app answered its list: what it no longer has is gone
            for broker in self._brokers.values():
                if isinstance(broker, SqliteBroker):
                    broker.retire_unattached()

    def _start_workers(self, subs: Sequence[Subscription]) -> None:
        for sub in subs:
            broker = self._brokers.get(sub.pubsubname)
            if broker is None:
                log.warning(
                    "subscription to topic %s ignored: pubsub %s is not configured",
                    sub.topic,
                    sub.pubsubname,
                )
                continue
            if not broker.scopes.may_subscribe(sub.topic):
                log.warning(
                    "subscription to topic '%s' on pubsub '%s' is not allowed",
                    sub.topic,
                    sub.pubsubname,
                )
                continue
            worker = self._worker(broker, sub, transport_for(self._channel, sub))
            try:
                broker.attach(worker)
            except ValueError as exc:  # a streaming subscription consumes the durable group already
                log.error(
                    "subscription to topic %s on pubsub %s not started: %s", sub.topic, sub.pubsubname, exc
                )
                continue
            worker.start()
            self._workers.append(worker)

    def _worker(
        self, broker: Broker, sub: Subscription, transport: EventTransport, *, streaming: bool = False
    ) -> DeliveryWorker:
        """`sub`'s worker. A stream waits for its subscriber as a durable broker waits for the app (its
        only channel error is the stream ending); app health checks concern the app channel, not it."""
        worker_type = BulkSubscriptionWorker if sub.bulk_subscribe else SubscriptionWorker
        durable = isinstance(broker, SqliteBroker)
        return worker_type(
            sub,
            transport=transport,
            clock=self._clock,
            dead_letter=self._dead_letter_for(broker),
            retry=self._delivery_retry(broker.name) or self._retry,
            queue_size=0 if durable else self._queue_size,  # the durable broker pages
            settled=broker.acknowledge if isinstance(broker, SqliteBroker) else None,
            wait_for_app=durable or streaming,
            health=None if streaming else self._health,
        )

    def _dead_letter_for(self, broker: Broker) -> DeadLetter:
        async def publish(topic: str, data: bytes) -> None:
            if not broker.scopes.may_publish(topic):
                raise PermissionError(f"topic {topic} is not allowed for app id {self.app_id}")
            if self._guard is None:
                await broker.publish(topic, data, wait=False)
            else:  # daprd republishes a dead letter through its publisher, under the outbound policy
                await self._guard(broker.name, lambda: broker.publish(topic, data, wait=False))

        return publish

    def pending(self) -> dict[tuple[str, str], int]:
        """Messages enqueued or in delivery, by (pubsub, subscription topic): how far subscribers lag
        behind. For a durable component: every message not acknowledged yet, stored backlog included."""
        return {
            (name, topic): count
            for name, broker in self._brokers.items()
            for topic, count in broker.backlog().items()
        }

    def subscriptions(self) -> list[dict[str, Any]]:
        """`subscriptions[]` of the metadata API (daprd's HTTP shape; empty fields omitted)."""
        subs = merge_subscriptions(self._declarative, self._programmatic) + self.streams.subscriptions()
        return [s.describe() for s in subs]

    # --- publishing -----------------------------------------------------------------------------

    def validate(self, pubsub: str, topic: str, metadata: Mapping[str, str]) -> None:
        """The checks daprd makes before it reads a publish body; raises DaprError."""
        self._resolve(pubsub, topic)
        self._raw_payload(metadata)

    def _resolve(self, pubsub: str, topic: str) -> Broker:
        if not pubsub:
            raise error("ERR_PUBSUB_EMPTY", "pubsub name is empty")
        broker = self._brokers.get(pubsub)
        if broker is None:
            raise error("ERR_PUBSUB_NOT_FOUND", f"pubsub {pubsub} is not found")
        if not topic:
            raise error("ERR_TOPIC_NAME_EMPTY", f"topic is empty in pubsub {pubsub}")
        return broker

    @staticmethod
    def _raw_payload(metadata: Mapping[str, str]) -> bool:
        try:
            return is_raw_payload(metadata)
        except ValueError as exc:
            raise error(
                "ERR_PUBSUB_REQUEST_METADATA", f"failed deserializing metadata. Error: {exc}"
            ) from exc

    def _envelope(
        self,
        pubsub: str,
        topic: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str],
        trace: TraceContext,
    ) -> bytes:
        try:
            return build_envelope(
                app_id=self.app_id,
                pubsub=pubsub,
                topic=topic,
                data=data,
                content_type=content_type,
                metadata=metadata,
                now=self._clock.now(),
                trace=trace,
            )
        except ValueError as exc:
            raise error("ERR_PUBSUB_CLOUD_EVENTS_SER", "cannot create cloudevent") from exc

    def _check_publish_allowed(self, broker: Broker, topic: str) -> None:
        if not broker.scopes.may_publish(topic):
            raise error("ERR_PUBSUB_FORBIDDEN", f"topic {topic} is not allowed for app id {self.app_id}")

    async def publish(
        self,
        pubsub: str,
        topic: str,
        data: bytes,
        content_type: str | None,
        metadata: Mapping[str, str],
        *,
        traceparent: str = "",
        tracestate: str = "",
    ) -> None:
        """Publish one event (HTTP `/v1.0/publish`, gRPC `PublishEvent`); raises DaprError."""
        broker = self._resolve(pubsub, topic)
        payload = data
        if not self._raw_payload(metadata):
            trace = TraceContext.parse(traceparent, tracestate)
            payload = self._envelope(pubsub, topic, data, content_type or "", metadata, trace)
        self._check_publish_allowed(broker, topic)
        try:
            await self._publish(pubsub, broker, topic, payload)
        except BrokerClosed as exc:
            raise self._publish_failed(pubsub, topic, exc) from exc

    async def bulk_publish(
        self,
        pubsub: str,
        topic: str,
        entries: Sequence[BulkEntry],
        metadata: Mapping[str, str],
        *,
        traceparent: str = "",
        tracestate: str = "",
    ) -> list[tuple[str, str]]:
        """Publish entries in order; returns the failed ones as (entry id, error).

        Raises DaprError for a bad request (ids missing or duplicated: `ERR_PUBSUB_EVENTS_SER`).
        daprd's gRPC API turns a non-empty result into `ERR_PUBSUB_PUBLISH_MESSAGE`; HTTP into 500
        with `failedEntries`.
        """
        broker = self._resolve(pubsub, topic)
        raw = self._raw_payload(metadata)
        seen: set[str] = set()
        prepared: list[tuple[str, bytes]] = []
        for entry in entries:
            if not entry.entry_id or entry.entry_id in seen:
                raise error(
                    "ERR_PUBSUB_EVENTS_SER",
                    f"error marshaling events to bytes for topic {topic} pubsub {pubsub}. "
                    "error: entryId is duplicated or not present for entry",
                )
            seen.add(entry.entry_id)
            payload = entry.event
            if not raw:
                entry_md = {} if entry.metadata is None else {**metadata, **entry.metadata}
                trace = TraceContext.parse(traceparent, tracestate)
                payload = self._envelope(
                    pubsub, topic, entry.event, entry.content_type or "", entry_md, trace
                )
            prepared.append((entry.entry_id, payload))
        self._check_publish_allowed(broker, topic)
        # started in order, so the entries keep it; a durable component commits them together
        results = await asyncio.gather(
            *(self._publish(pubsub, broker, topic, payload) for _, payload in prepared),
            return_exceptions=True,
        )
        failed: list[tuple[str, str]] = []
        for (entry_id, _), result in zip(prepared, results, strict=True):
            if isinstance(result, BrokerClosed):
                failed.append((entry_id, str(result)))
            elif isinstance(result, BaseException):
                raise result
        return failed

    async def _publish(self, pubsub: str, broker: Broker, topic: str, payload: bytes) -> int:
        if self._guard is None:
            return await broker.publish(topic, payload)
        return await self._guard(pubsub, lambda: broker.publish(topic, payload))

    @staticmethod
    def _publish_failed(pubsub: str, topic: str, exc: Exception) -> DaprError:
        return error(
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            f"error when publishing to topic {topic} in pubsub {pubsub}: {exc}",
        )
