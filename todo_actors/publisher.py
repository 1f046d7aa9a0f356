"""How the actors put events on Dapr pub/sub: one lazily created gRPC `DaprClient` per host.

The CloudEvent id and type travel as `cloudevent.*` publish metadata, so a republished event (outbox
replay, duplicate reminder firing) carries the same id and subscribers can drop the copy. So does the
W3C trace context of the turn that published (`cloudevent.traceparent`), so the delivery joins its trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from dapr.aio.clients import DaprClient

__all__ = ["DaprPublisher", "EventPublisher"]

log = logging.getLogger("todo_actors.publisher")


class EventPublisher(Protocol):
    """Publishes one JSON event; raises on any failure (the outbox keeps it and retries)."""

    async def publish(self, pubsub: str, topic: str, event_id: str, event_type: str, data: bytes) -> None: ...


class DaprPublisher:
    """`EventPublisher` over `dapr.aio.clients.DaprClient`, connected on first use.

    The client is created lazily because its constructor probes the sidecar's health synchronously, and
    inside the app's event loop because its gRPC channel belongs to that loop. `aclose()` it in the
    lifespan of the app that hosts the actors.
    """

    def __init__(
        self, address: str | None = None, *, trace_context: Callable[[], Mapping[str, str]] | None = None
    ) -> None:
        self._address = address
        self._client: DaprClient | None = None
        self._trace_context = trace_context  # the caller's `traceparent`/`tracestate` headers, if any

    async def publish(self, pubsub: str, topic: str, event_id: str, event_type: str, data: bytes) -> None:
        client = self._client
        if client is None:
            client = self._client = DaprClient(address=self._address)
            log.debug("connected the publisher's DaprClient")
        metadata = {"cloudevent.id": event_id, "cloudevent.type": event_type}
        if self._trace_context is not None:
            for name, value in self._trace_context().items():
                if name in ("traceparent", "tracestate"):
                    metadata[f"cloudevent.{name}"] = value
        await client.publish_event(
            pubsub_name=pubsub,
            topic_name=topic,
            data=data,
            publish_metadata=metadata,
            data_content_type="application/json",
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]  # untyped in the SDK
