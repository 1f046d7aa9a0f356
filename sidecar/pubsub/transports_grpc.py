"""The gRPC delivery transport: daprd 1.16 `postman/grpc`. A CloudEvent becomes a `TopicEventRequest` as
`GRPCEnvelopeFromSubscriptionMessage` builds it; the app answers SUCCESS, RETRY or DROP, UNIMPLEMENTED
(no handler) drops the event without dead-lettering, and any other error status is retried.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any

import grpc
from dapr.proto.runtime.v1 import appcallback_pb2 as callback_pb2
from google.protobuf import struct_pb2

from sidecar import gojson
from sidecar.appchannel_grpc import AppCallError, GrpcAppChannel
from sidecar.pubsub.cloudevents import CLOUDEVENT_CONTENT_TYPE
from sidecar.pubsub.delivery import Outcome, trace_headers
from sidecar.pubsub.subscriptions import Subscription
from sidecar.pubsub.transports import (
    BULK_EVENT_TYPE,
    RAW_CONTENT_TYPE,
    BulkReply,
    EventTransport,
    message_metadata,
)

__all__ = ["GrpcTransport", "TopicEventTransport", "reply_outcome", "topic_event_request"]

_Status = callback_pb2.TopicEventResponse.TopicEventResponseStatus
_STATUS_NAMES = {_Status.SUCCESS: "SUCCESS", _Status.RETRY: "RETRY", _Status.DROP: "DROP"}

# the CloudEvent attributes a TopicEventRequest carries as fields; every other one is an extension
_ENVELOPE_KEYS = frozenset({"id", "source", "datacontenttype", "type", "specversion", "data", "data_base64"})


class EnvelopeError(ValueError):
    """An event daprd cannot put in a gRPC envelope (a retriable failure there)."""


def _is_type(content_type: str, expected: str) -> bool:
    """dapr/kit `isContentType`: the media type, case-insensitive, parameters ignored."""
    return content_type.lower().split(";", 1)[0] == expected


def _is_string_type(content_type: str) -> bool:
    return content_type.lower().startswith("text/") or _is_type(content_type, "application/xml")


def _prop(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    return value if isinstance(value, str) else ""


def _data(event: Mapping[str, Any], content_type: str) -> bytes:
    """The event's `data` as daprd puts it in the envelope: `data_base64` decoded, a string for a text
    type, JSON for a JSON or CloudEvent type, else nothing."""
    b64 = event.get("data_base64")
    if b64 is not None:
        if not isinstance(b64, str):
            raise EnvelopeError("unexpected data type encountered in envelope")
        try:
            return base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise EnvelopeError(f"unable to base64 decode cloudEvent field data_base64: {exc}") from None
    data = event.get("data")
    if data is None:
        return b""
    if _is_string_type(content_type):
        if not isinstance(data, str):
            raise EnvelopeError("unexpected data type encountered in envelope")
        return data.encode()
    if _is_type(content_type, "application/json") or _is_type(content_type, CLOUDEVENT_CONTENT_TYPE):
        return gojson.dumps(data)
    return b""


def _extensions(event: Mapping[str, Any]) -> struct_pb2.Struct:
    extensions = struct_pb2.Struct()
    extensions.update({k: gojson.as_float64(v) for k, v in event.items() if k not in _ENVELOPE_KEYS})
    return extensions


def topic_event_request(event: Mapping[str, Any], *, topic: str, pubsub: str, path: str) -> Any:
    """daprd's `TopicEventRequest` for one CloudEvent; raises EnvelopeError."""
    content_type = _prop(event, "datacontenttype")
    return callback_pb2.TopicEventRequest(
        id=_prop(event, "id"),
        source=_prop(event, "source"),
        type=_prop(event, "type"),
        spec_version=_prop(event, "specversion"),
        data_content_type=content_type,
        data=_data(event, content_type),
        topic=topic,
        pubsub_name=pubsub,
        path=path,
        extensions=_extensions(event),
    )


def reply_outcome(status: int, event_id: Any) -> tuple[Outcome, str]:
    """A `TopicEventResponse` status as daprd reads it (from `OnTopicEvent` or a streaming subscriber)."""
    if status == _Status.SUCCESS:
        return Outcome.SUCCESS, "SUCCESS"
    if status == _Status.RETRY:
        return Outcome.RETRY, f"RETRY status returned from app while processing pub/sub event {event_id}"
    if status == _Status.DROP:
        return Outcome.DROP, "DROP status returned from app"
    return Outcome.RETRY, f"unknown status returned from app while processing pub/sub event {event_id}"


class TopicEventTransport(EventTransport):
    """Delivers each event as daprd's `TopicEventRequest`; a subclass sends it and reads the answer."""

    async def deliver(self, path: str, body: bytes, event: dict[str, Any]) -> tuple[Outcome, str]:
        try:
            request = topic_event_request(event, topic=self.sub.topic, pubsub=self.sub.pubsubname, path=path)
        except (EnvelopeError, ValueError) as exc:
            event_id = event.get("id")
            return Outcome.RETRY, f"error returned from app while processing pub/sub event {event_id}: {exc}"
        return await self.send(request, event)

    async def send(self, request: Any, event: dict[str, Any]) -> tuple[Outcome, str]:
        raise NotImplementedError


class GrpcTransport(TopicEventTransport):
    """`OnTopicEvent` / `OnBulkTopicEvent` on the app's `AppCallback` service."""

    def __init__(self, channel: GrpcAppChannel, sub: Subscription) -> None:
        super().__init__(sub)
        self._channel = channel
        self._metadata = message_metadata(sub)
        self._entry_metadata = dict(sub.metadata)

    async def send(self, request: Any, event: dict[str, Any]) -> tuple[Outcome, str]:
        event_id = event.get("id")
        try:
            reply = await self._channel.on_topic_event(request, {**self._metadata, **trace_headers(event)})
        except AppCallError as exc:
            if exc.code == grpc.StatusCode.UNIMPLEMENTED:
                return Outcome.NOT_FOUND, f"non-retriable error returned from app: {exc}"
            return Outcome.RETRY, f"error returned from app while processing pub/sub event {event_id}: {exc}"
        return reply_outcome(reply.status, event_id)

    def bulk_entry(self, entry_id: str, data: bytes, parsed: dict[str, Any] | None, exact: bool) -> Any:
        """daprd's `FetchEntry`: the raw bytes, or the CloudEvent as a `TopicEventCERequest`. An event that
        cannot be enveloped is kept as its error, and retried like a RETRY status."""
        entry = callback_pb2.TopicEventBulkRequestEntry(
            entry_id=entry_id,
            content_type=RAW_CONTENT_TYPE if parsed is None else CLOUDEVENT_CONTENT_TYPE,
            metadata=self._entry_metadata,
        )
        if parsed is None:
            entry.bytes = data
            return entry
        content_type = _prop(parsed, "datacontenttype")
        try:
            payload = b"" if "data_base64" in parsed else _data(parsed, content_type)
        except EnvelopeError as exc:
            return exc
        entry.cloud_event.CopyFrom(
            callback_pb2.TopicEventCERequest(
                id=_prop(parsed, "id"),
                source=_prop(parsed, "source"),
                type=_prop(parsed, "type"),
                spec_version=_prop(parsed, "specversion"),
                data_content_type=content_type,
                data=payload,
                extensions=_extensions(parsed),
            )
        )
        return entry

    async def deliver_bulk(self, path: str, entries: list[Any], trace: Mapping[str, str]) -> BulkReply:
        request = callback_pb2.TopicEventBulkRequest(
            id=str(uuid.uuid4()),
            entries=[e for e in entries if not isinstance(e, Exception)],
            metadata={"pubsubName": self.sub.pubsubname},
            topic=self.sub.topic,
            pubsub_name=self.sub.pubsubname,
            type=BULK_EVENT_TYPE,
            path=path,
        )
        try:
            reply = await self._channel.on_bulk_topic_event(request, {**self._metadata, **trace})
        except AppCallError as exc:
            if exc.code == grpc.StatusCode.UNIMPLEMENTED:
                return BulkReply(dropped=True, error=str(exc))
            return BulkReply(error=f"error returned from app while processing bulk pub/sub event: {exc}")
        # an entry that could not be enveloped was not sent: it gets no status, so it is retried
        return BulkReply(
            statuses=[(s.entry_id, _STATUS_NAMES.get(s.status, str(s.status))) for s in reply.statuses]
        )
