"""Streaming subscriptions (gRPC `SubscribeTopicEventsAlpha1`, daprd 1.16 `pkg/api/grpc/subscribe.go` and
`pkg/runtime/pubsub/streamer`): the stream is one more delivery transport for the usual subscription
worker, so routing, retries, dead letters and durable acks are those of every other delivery. Several
streams may share a topic, as in daprd 1.16: on `pubsub.in-memory` each gets every message; a durable group
has one consumer, so a second stream on it is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from dapr.proto.runtime.v1 import pubsub_pb2

from sidecar.errors import DaprError
from sidecar.gojson import go_quote
from sidecar.pubsub.delivery import Outcome
from sidecar.pubsub.routing import Rule
from sidecar.pubsub.subscriptions import Subscription
from sidecar.pubsub.transports import EventTransport
from sidecar.pubsub.transports_grpc import TopicEventTransport, reply_outcome
from sidecar.pubsub.worker import DeliveryWorker

if TYPE_CHECKING:
    from sidecar.pubsub.engine import Broker

__all__ = ["StreamRefused", "StreamTransport", "Streams", "serve_stream"]

log = logging.getLogger("sidecar.pubsub.streaming")

_REQUEST_TYPE = "subscribe_topic_events_request_type"
# daprd routes every streamed event to the default path "/" (the subscription it builds for the stream)
_ROUTE = "/"


class StreamRefused(Exception):
    """daprd refuses a streaming subscription with a plain error (gRPC UNKNOWN) with this text."""


class StreamEnded(ConnectionError):
    """The stream closed before the subscriber answered: the message is not acknowledged."""


class StreamTransport(TopicEventTransport):
    """Sends each event as a `TopicEventRequest` on the stream and waits for the subscriber's
    `event_processed` with its id, as daprd's streamer does (no timeout: only the stream's end stops it)."""

    def __init__(self, sub: Subscription, write: Callable[[Any], Awaitable[None]]) -> None:
        super().__init__(sub)
        self._write = write
        self._answers: dict[str, asyncio.Future[int]] = {}
        self.ended = asyncio.Event()

    async def send(self, request: Any, event: dict[str, Any]) -> tuple[Outcome, str]:
        event_id = event.get("id")
        if self.ended.is_set():
            raise StreamEnded("stream closed")
        answer = asyncio.get_running_loop().create_future()
        self._answers[request.id] = answer
        try:
            try:
                await self._write(pubsub_pb2.SubscribeTopicEventsResponseAlpha1(event_message=request))
            except Exception as exc:
                raise StreamEnded(f"cannot send pub/sub event {event_id} on the stream: {exc}") from exc
            status = await answer
        finally:
            self._answers.pop(request.id, None)
        return reply_outcome(status, event_id)

    def processed(self, reply: Any) -> None:
        """The subscriber's `event_processed` for one event."""
        answer = self._answers.get(reply.id)
        if answer is None or answer.done():
            log.error("no client stream expecting publish response for id %s", reply.id)
            return
        answer.set_result(reply.status.status)

    def end(self) -> None:
        """The stream is over: a delivery waiting for its answer fails (unacknowledged)."""
        self.ended.set()
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(StreamEnded("stream closed"))


class Streams:
    """The sidecar's open streaming subscriptions, one per (pubsub, topic) as daprd 1.14/1.15 allow (1.16+
    accepts several; a durable component's consumer group has one consumer here)."""

    def __init__(
        self,
        resolve: Callable[[str, str], Broker],
        make_worker: Callable[[Broker, Subscription, EventTransport], DeliveryWorker],
        grace: float,
    ) -> None:
        """`resolve` raises DaprError for an unknown pubsub; `make_worker` builds a subscription's worker;
        `grace`: how long a closed stream's worker may finish its delivery."""
        self._resolve = resolve
        self._make_worker = make_worker
        self._grace = grace
        # every open stream by its worker: several may share a pubsub and topic, as in daprd 1.16
        self._open: dict[DeliveryWorker, tuple[StreamTransport, Broker]] = {}
        self._stopped = False

    def open(self, sub: Subscription, transport: StreamTransport) -> DeliveryWorker:
        """Attach the stream's worker (not started: the caller starts it once the stream's initial
        response is sent). Raises DaprError for an unknown pubsub, StreamRefused otherwise."""
        if self._stopped:
            raise StreamRefused("subscriber is closed")
        broker = self._resolve(sub.pubsubname, sub.topic)

        if not broker.scopes.may_subscribe(sub.topic):
            raise StreamRefused(
                f"failed to create subscription for {sub.pubsubname}: subscription to topic '{sub.topic}' "
                f"on pubsub '{sub.pubsubname}' is not allowed"
            )
        worker = self._make_worker(broker, sub, transport)
        try:
            attached = broker.attach(worker)
        except ValueError as exc:  # a durable group has a consumer already: another stream, or the app
            if any(w.sub.pubsubname == sub.pubsubname and w.topic == sub.topic for w in self._open):
                pubsub, topic = go_quote(sub.pubsubname), go_quote(sub.topic)
                raise StreamRefused(
                    f"streamer already subscribed to pubsub {pubsub} topic {topic}: pubsub.embedded.sqlite "
                    "has one consumer per app and topic (several streams on one topic work on "
                    "pubsub.in-memory, each getting every message)"
                ) from exc
            raise StreamRefused(
                f"streaming subscription to topic '{sub.topic}' on pubsub '{sub.pubsubname}' is not "
                "supported by the embedded sidecar while the app subscribes to that topic too: "
                "pubsub.embedded.sqlite has one consumer per app and topic"
            ) from exc
        if not attached:
            raise StreamRefused(
                f"streaming subscription to topic '{sub.topic}' on pubsub '{sub.pubsubname}' refused: "
                "another sidecar process of this app id consumes it from the shared file"
            )
        self._open[worker] = (transport, broker)
        log.info("Subscribing to pubsub '%s' topic '%s'", sub.pubsubname, sub.topic)
        return worker

    async def close(self, worker: DeliveryWorker) -> None:
        """The stream ended: stop its worker; a durable component keeps what was not acknowledged."""
        entry = self._open.pop(worker, None)
        if entry is None:
            return  # the engine stopped it
        transport, broker = entry
        transport.end()
        await worker.stop(self._grace)
        await broker.detach(worker)
        log.info("Unsubscribed from pubsub '%s' topic '%s'", worker.sub.pubsubname, worker.topic)

    def end_all(self) -> list[DeliveryWorker]:
        """The sidecar stops: end every stream; returns their workers for the engine to stop."""
        self._stopped = True
        entries, self._open = self._open, {}
        for transport, _ in entries.values():
            transport.end()
        return list(entries)

    def subscriptions(self) -> list[Subscription]:
        return [worker.sub for worker in self._open]


def stream_subscription(initial: Any) -> Subscription:
    """The subscription daprd makes of an initial request: default route "/", type STREAMING."""
    return Subscription(
        pubsubname=initial.pubsub_name,
        topic=initial.topic,
        rules=(Rule(match="", path=_ROUTE),),
        dead_letter_topic=initial.dead_letter_topic,
        metadata=dict(initial.metadata),
        kind="STREAMING",
        name=f"___{initial.pubsub_name}||{initial.topic}",
        metadata_null=not initial.metadata,
    )


async def _fail(context: grpc.aio.ServicerContext, message: str) -> NoReturn:
    """daprd returns a plain Go error: status UNKNOWN with its text."""
    await context.abort(grpc.StatusCode.UNKNOWN, message)
    raise AssertionError("grpc's abort raises")  # pragma: no cover


async def serve_stream(
    streams: Streams, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
) -> None:
    """One `SubscribeTopicEventsAlpha1` call, from the initial request to the stream's end."""
    try:
        first = await anext(requests)
    except StopAsyncIteration:
        await _fail(context, "EOF")
    if first.WhichOneof(_REQUEST_TYPE) != "initial_request":
        await _fail(context, "initial request is required")
    initial = first.initial_request
    if not initial.pubsub_name:
        await _fail(context, "pubsubName is required")
    if not initial.topic:
        await _fail(context, "topic is required")
    sub = stream_subscription(initial)
    transport = StreamTransport(sub, context.write)
    try:
        worker = streams.open(sub, transport)
    except DaprError as exc:
        await context.abort(exc.grpc_status, exc.message, trailing_metadata=exc.grpc_trailer())
    except StreamRefused as exc:
        await _fail(context, str(exc))
    try:
        initial_response = pubsub_pb2.SubscribeTopicEventsResponseInitialAlpha1()
        await context.write(pubsub_pb2.SubscribeTopicEventsResponseAlpha1(initial_response=initial_response))
        worker.start()
        failure = await _pump(requests, transport)
    finally:
        # also when the client cancelled the call (this task is cancelled): the worker must stop
        await asyncio.shield(streams.close(worker))
    if failure:
        await _fail(context, failure)


async def _pump(requests: AsyncIterator[Any], transport: StreamTransport) -> str:
    """Hand the subscriber's answers to the transport until the stream ends; daprd's error text if it
    must end with one ("" when the subscriber closed its side)."""
    reader = asyncio.ensure_future(_read(requests, transport))
    ended = asyncio.ensure_future(transport.ended.wait())
    try:
        await asyncio.wait({reader, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reader.cancel()
        ended.cancel()
    if reader.done() and not reader.cancelled() and reader.exception() is None:
        return reader.result()
    return "stream closed" if transport.ended.is_set() else ""


async def _read(requests: AsyncIterator[Any], transport: StreamTransport) -> str:
    async for request in requests:
        if request.WhichOneof(_REQUEST_TYPE) != "event_processed":
            return "duplicate initial request received"
        transport.processed(request.event_processed)
    return ""
