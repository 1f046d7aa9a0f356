"""How a delivery reaches the app: the HTTP transport (1.16 `postman/http`) and the gRPC one
(`postman/grpc`, `OnTopicEvent` / `OnBulkTopicEvent`). The workers (`worker`, `delivery`, `bulk_delivery`)
own the contract (routing, retries, dead letters, durable acks); a transport only sends and reads the answer.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sidecar import gojson
from sidecar.appchannel import AppChannel, ChannelBase
from sidecar.pubsub.cloudevents import CLOUDEVENT_CONTENT_TYPE
from sidecar.pubsub.delivery import Outcome, classify_reply, trace_headers
from sidecar.pubsub.subscriptions import Subscription

__all__ = ["BULK_EVENT_TYPE", "BulkReply", "EventTransport", "HttpTransport", "transport_for"]

BULK_EVENT_TYPE = "com.dapr.event.sent.bulk"
RAW_CONTENT_TYPE = "application/octet-stream"

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SKIPPED_HEADERS = frozenset({"content-type", "content-length", "pubsubname"})


@dataclass(frozen=True)
class BulkReply:
    """The app's answer to one bulk request: `(entryId, status)` pairs as sent (status names
    SUCCESS/RETRY/DROP, anything else retried); or, when it sent none, `dropped` (every entry is done, none
    dead-lettered: HTTP 404, gRPC UNIMPLEMENTED) or the `error` that makes every entry retriable."""

    statuses: list[tuple[str, str]] | None = None
    dropped: bool = False
    error: str = ""


def message_metadata(sub: Subscription) -> dict[str, str]:
    """The broker message metadata daprd sends with each event: for in-memory, the subscription's
    metadata (valid header names and printable ASCII values only), then `pubsubname`."""
    md = {
        k: v
        for k, v in sub.metadata.items()
        if _HEADER_NAME.fullmatch(k) and k.lower() not in _SKIPPED_HEADERS and v.isprintable() and v.isascii()
    }
    md["pubsubname"] = sub.pubsubname
    return md


class EventTransport:
    """Sends one subscription's events to the app. `deliver` and `deliver_bulk` raise the channel's
    connection errors and TimeoutError (see `retry.CHANNEL_ERRORS`); every answer is an outcome."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    async def deliver(self, path: str, body: bytes, event: dict[str, Any]) -> tuple[Outcome, str]:
        """One event (`body` is its JSON, `event` the decoded object) to `path`."""
        raise NotImplementedError

    def bulk_entry(self, entry_id: str, data: bytes, parsed: dict[str, Any] | None, exact: bool) -> Any:
        """A bulk entry for the broker bytes `data` (decoded as `parsed`; None with rawPayload; `exact`:
        `gojson.loads_float64_exact`'s flag). Built once: a retry resends it."""
        raise NotImplementedError

    async def deliver_bulk(self, path: str, entries: list[Any], trace: Mapping[str, str]) -> BulkReply:
        raise NotImplementedError


class HttpTransport(EventTransport):
    """POST to the route path, as daprd's HTTP app channel does."""

    def __init__(self, channel: AppChannel, sub: Subscription) -> None:
        super().__init__(sub)
        self._channel = channel
        self._headers = {**message_metadata(sub), "Content-Type": CLOUDEVENT_CONTENT_TYPE}
        # constant per subscription: an entry's tail after its event, the envelope's tail after its id
        metadata = b"null" if sub.metadata_null else gojson.dumps(dict(sub.metadata))
        self._entry_tails = {
            raw: b'"metadata":' + metadata + b',"contentType":' + gojson.dumps(content_type) + b"}"
            for raw, content_type in ((True, RAW_CONTENT_TYPE), (False, CLOUDEVENT_CONTENT_TYPE))
        }
        pubsub = gojson.dumps(sub.pubsubname)
        self._envelope_tail = b"".join(
            (
                b'"metadata":{"pubsubName":',
                pubsub,
                b'},"pubsubname":',
                pubsub,
                b',"topic":',
                gojson.dumps(sub.topic),
                b',"type":',
                gojson.dumps(BULK_EVENT_TYPE),
                b"}",
            )
        )
        # daprd sends the bulk message metadata as headers: only `pubsubName`, lowercased on the wire
        self._bulk_headers = {"pubsubname": sub.pubsubname, "Content-Type": "application/json"}

    async def deliver(self, path: str, body: bytes, event: dict[str, Any]) -> tuple[Outcome, str]:
        headers = {**self._headers, **trace_headers(event)}
        resp = await self._channel.request("POST", path, body=body, headers=headers)
        return classify_reply(resp.status, resp.body)

    def bulk_entry(self, entry_id: str, data: bytes, parsed: dict[str, Any] | None, exact: bool) -> bytes:
        if parsed is None:  # daprd sends raw bytes as base64
            event = b'"' + base64.b64encode(data) + b'"'
        else:  # daprd re-encodes the event it decoded into a map (float64 numbers, sorted keys)
            event = gojson.dumps_exact(parsed) if exact else gojson.dumps(parsed)
        return b"".join(
            (
                b'{"entryId":"',
                entry_id.encode(),
                b'","event":',
                event,
                b",",
                self._entry_tails[parsed is None],
            )
        )

    async def deliver_bulk(self, path: str, entries: list[Any], trace: Mapping[str, str]) -> BulkReply:
        body = b"".join(
            (
                b'{"entries":[',
                b",".join(entries),
                b'],"id":"',
                str(uuid.uuid4()).encode(),
                b'",',
                self._envelope_tail,
            )
        )
        headers = {**self._bulk_headers, **trace} if trace else self._bulk_headers
        resp = await self._channel.request("POST", path, body=body, headers=headers)
        if 200 <= resp.status <= 299:
            try:
                return BulkReply(statuses=read_bulk_statuses(gojson.decode_first(resp.body)))
            except ValueError as exc:
                return BulkReply(error=f"failed unmarshalling app response for bulk subscribe: {exc}")
        if resp.status == 404:
            return BulkReply(dropped=True, error=f"status code 404 from {path}")
        return BulkReply(error=f"retriable error returned from app: {resp.body[:200]!r} ({resp.status})")


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"json: cannot unmarshal {value!r} into Go struct field {where} of type string")
    return value


def read_bulk_statuses(reply: Any) -> list[tuple[str, str]]:
    """`(entryId, status)` pairs of a decoded bulk reply, as Go decodes `AppBulkResponse`: keys fold case,
    null is empty, a later duplicate key wins. Raises ValueError where Go reports a type error."""
    if reply is None:
        return []
    if not isinstance(reply, dict):
        raise ValueError("json: cannot unmarshal a non-object into Go value of type AppBulkResponse")
    items: Any = None
    for key, value in reply.items():
        if key.lower() == "statuses":
            items = value
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError("json: cannot unmarshal a non-array into Go struct field statuses")
    pairs = []
    for item in items:
        if item is not None and not isinstance(item, dict):
            raise ValueError("json: cannot unmarshal a non-object into a statuses entry")
        entry_id = status = ""
        for key, value in (item or {}).items():
            folded = key.lower()
            if folded == "entryid":
                entry_id = _string(value, "entryId")
            elif folded == "status":
                status = _string(value, "status")
        pairs.append((entry_id, status))
    return pairs


def transport_for(channel: ChannelBase, sub: Subscription) -> EventTransport:
    """The transport of the app channel's protocol."""
    if isinstance(channel, AppChannel):
        return HttpTransport(channel, sub)
    # imported here: the gRPC transport builds on this module
    from sidecar.appchannel_grpc import GrpcAppChannel
    from sidecar.pubsub.transports_grpc import GrpcTransport

    if isinstance(channel, GrpcAppChannel):
        return GrpcTransport(channel, sub)
    raise ValueError(f"no pub/sub transport for app protocol {channel.protocol!r}")
