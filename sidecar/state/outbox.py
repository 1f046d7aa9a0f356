"""The transactional outbox of a state component (`outboxPublishPubsub`/`outboxPublishTopic`): the CloudEvent
daprd 1.16 (`pkg/runtime/pubsub/outbox.go`) publishes for each upsert of a transaction, built before commit.

daprd hands events over through an internal pubsub topic plus an `outbox-<uuid>` marker row; the embedded
sidecar commits the finished event in an outbox table of the same store transaction instead (see
`transactions.py`), so the event carries the marker's name as its id exactly as daprd's does.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sidecar import gojson

# Go's `%g`/`%v` of a float64 (cel-go prints doubles the same way); private there, shared here to keep
# one implementation of Go's float formatting.
from sidecar.pubsub.cel import _format_double as go_format_float
from sidecar.pubsub.cloudevents import (
    DEFAULT_DATA_CONTENT_TYPE,
    DEFAULT_TYPE,
    SPEC_VERSION,
    TraceContext,
    format_rfc3339,
    is_binary_content_type,
    is_json_content_type,
)
from sidecar.state.properties import is_truthy
from sidecar.state.store import DeleteOp, OutboxRecord, SetOp

__all__ = [
    "CONTENT_TYPE",
    "PROJECTION",
    "EventPayload",
    "OutboxConfig",
    "build_events",
    "go_sprint",
    "http_payload",
]

log = logging.getLogger("sidecar.state.outbox")

PUBLISH_PUBSUB = "outboxPublishPubsub"
PUBLISH_TOPIC = "outboxPublishTopic"
OUTBOX_PUBSUB = "outboxPubsub"
DISCARD_WHEN_MISSING_STATE = "outboxDiscardWhenMissingState"
PROJECTION = "outbox.projection"
CONTENT_TYPE = "contentType"  # components-contrib `metadata.ContentType`
# Operation metadata that never reaches the event: daprd skips exactly these two keys.
_RESERVED = ("data", "id")


@dataclass(frozen=True)
class OutboxConfig:
    """A state component's outbox settings, read as daprd's `AddOrUpdateOutbox` reads them.

    `outbox_pubsub` (daprd's coordination pubsub) defaults to `publish_pubsub`; the embedded sidecar only
    checks that it exists, since its own hand-off is the outbox table. `discard_when_missing_state`
    cannot apply: the outbox row is the state daprd looks for and it commits atomically with the event.
    """

    publish_pubsub: str
    publish_topic: str
    outbox_pubsub: str
    discard_when_missing_state: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> OutboxConfig | None:
        """None unless both `outboxPublishPubsub` and `outboxPublishTopic` are set (daprd: names are
        matched exactly, an outbox with only one of them is not enabled)."""
        pubsub = metadata.get(PUBLISH_PUBSUB, "")
        topic = metadata.get(PUBLISH_TOPIC, "")
        if not pubsub or not topic:
            if pubsub or topic or metadata.get(OUTBOX_PUBSUB):
                log.warning(
                    "outbox not enabled: %s and %s must both be set (got %r and %r)",
                    PUBLISH_PUBSUB,
                    PUBLISH_TOPIC,
                    pubsub,
                    topic,
                )
            return None
        return cls(
            publish_pubsub=pubsub,
            publish_topic=topic,
            outbox_pubsub=metadata.get(OUTBOX_PUBSUB, "") or pubsub,
            discard_when_missing_state=is_truthy(metadata.get(DISCARD_WHEN_MISSING_STATE, "")),
        )


@dataclass(frozen=True)
class EventPayload:
    """What an upsert publishes: daprd's `ceData` bytes and the content type it found ("" if none)."""

    data: bytes
    content_type: str


def go_sprint(value: Any) -> str:
    """Go's `fmt.Sprintf("%v", v)` of a value `encoding/json` decoded into `any`.

    daprd formats a non-JSON HTTP upsert value this way for the event (`map[a:1 b:x]` for an object).
    """
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return go_format_float(float(value))
    if isinstance(value, list):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    if isinstance(value, dict):  # fmt prints map keys sorted
        return "map[" + " ".join(f"{k}:{go_sprint(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def http_payload(value: Any, content_type: str) -> EventPayload:
    """The event data daprd derives from an HTTP upsert's decoded `value`: JSON when the content type is
    exactly `application/json` (any case), else `%v` text."""
    if content_type.lower() == "application/json":
        return EventPayload(gojson.dumps(value), content_type)
    return EventPayload(go_sprint(value).encode("utf-8"), content_type)


def _data_fields(data: bytes, content_type: str) -> dict[str, Any]:
    """contrib `NewCloudEventsEnvelope`'s data, as it reads after daprd's second JSON round trip
    (numbers become float64 on the way through the internal topic)."""
    if is_json_content_type(content_type):
        try:
            return {"data": gojson.decode_first(data, precise=False)}
        except ValueError:
            pass
    elif is_binary_content_type(content_type):
        return {"data_base64": base64.b64encode(data).decode("ascii")}
    return {"data": data.decode("utf-8", errors="replace")}


def build_events(
    config: OutboxConfig,
    *,
    app_id: str,
    ops: Sequence[SetOp | DeleteOp],
    payloads: Sequence[EventPayload | None],
    trace: TraceContext,
    now: float,
) -> tuple[list[SetOp | DeleteOp], list[OutboxRecord]]:
    """The ops to store (projections removed) and one event per remaining upsert, in order.

    An upsert with metadata `outbox.projection` truthy is not stored; its value is published instead of
    the value of the upserts of the same key (the first projection of a key wins, as daprd's docs say).
    Deletes publish nothing. Every metadata key of the upsert but `data` and `id` becomes an event field.
    """
    projections: dict[str, EventPayload] = {}
    kept: list[tuple[SetOp | DeleteOp, EventPayload | None]] = []
    for op, payload in zip(ops, payloads, strict=True):
        if isinstance(op, SetOp) and is_truthy(op.metadata.get(PROJECTION, "")) and payload is not None:
            projections.setdefault(op.key, payload)
        else:
            kept.append((op, payload))
    events: list[OutboxRecord] = []
    for op, payload in kept:
        if not isinstance(op, SetOp) or payload is None:
            continue
        chosen = projections.get(op.key, payload)
        content_type = chosen.content_type or DEFAULT_DATA_CONTENT_TYPE
        event_id = f"outbox-{uuid.uuid4()}"
        event: dict[str, Any] = {
            "id": event_id,
            "specversion": SPEC_VERSION,
            "datacontenttype": content_type,
            "source": app_id,
            "type": DEFAULT_TYPE,
            "topic": "",
            "pubsubname": config.outbox_pubsub,
            "traceid": trace.traceparent,
            "traceparent": "",
            "tracestate": trace.tracestate,
            "time": format_rfc3339(now),
            **_data_fields(chosen.data, content_type),
        }
        for key, value in op.metadata.items():
            if key not in _RESERVED:
                event[key] = value
        # daprd's second phase re-targets the event at the user topic and publishes it as it is.
        event["topic"] = config.publish_topic
        event["pubsubname"] = config.publish_pubsub
        datacontenttype = event["datacontenttype"]
        events.append(
            OutboxRecord(
                event_id=event_id,
                pubsub=config.publish_pubsub,
                topic=config.publish_topic,
                content_type=datacontenttype if isinstance(datacontenttype, str) else "",
                data=gojson.dumps(event),
            )
        )
    if len(kept) != len(ops) and not events:
        log.warning("outbox projections without an upsert of the same key were dropped")
    return [op for op, _ in kept], events
