"""CloudEvents 1.0 envelopes exactly as daprd 1.16 builds them at publish time (contrib `envelope.go`):
`data` vs `data_base64` by content type, `cloudevent.*` overrides, `ttl` stamps `expiration`.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sidecar import gojson

__all__ = [
    "CLOUDEVENT_CONTENT_TYPE",
    "TRACEPARENT",
    "TraceContext",
    "build_envelope",
    "format_rfc3339",
    "has_expired",
    "is_binary_content_type",
    "is_cloudevent_content_type",
    "is_json_content_type",
    "is_raw_payload",
    "is_string_content_type",
    "parse_go_duration",
    "raw_payload_envelope",
    "ttl_seconds",
]

log = logging.getLogger("sidecar.pubsub.cloudevents")

CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_TYPE = "com.dapr.event.sent"
DEFAULT_SOURCE = "Dapr"
SPEC_VERSION = "1.0"
DEFAULT_DATA_CONTENT_TYPE = "text/plain"

# publish metadata keys that override envelope fields (mapstructure tags of daprd's CloudEvent struct)
_OVERRIDES = ("id", "source", "type", "traceid", "traceparent", "tracestate")


# W3C trace context `traceparent` (version 00 layout; all-zero ids and version ff are invalid)
TRACEPARENT = re.compile(r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


@dataclass(frozen=True)
class TraceContext:
    """W3C trace context of the publish request; empty strings when the request carried none."""

    traceparent: str = ""
    tracestate: str = ""

    @classmethod
    def parse(cls, traceparent: str, tracestate: str) -> TraceContext:
        """An invalid `traceparent` is no span context at all, as for daprd's propagator."""
        if not TRACEPARENT.fullmatch(traceparent):
            return cls()
        return cls(traceparent, tracestate)


def _is_content_type(content_type: str, expected: str) -> bool:
    # contrib `isContentType`: case-insensitive, parameters after ';' ignored, no whitespace trimming
    return content_type.lower().split(";", 1)[0] == expected


def is_json_content_type(content_type: str) -> bool:
    return _is_content_type(content_type, "application/json")


def is_cloudevent_content_type(content_type: str) -> bool:
    return _is_content_type(content_type, CLOUDEVENT_CONTENT_TYPE)


def is_binary_content_type(content_type: str) -> bool:
    return _is_content_type(content_type, "application/octet-stream")


def is_string_content_type(content_type: str) -> bool:
    return content_type.lower().startswith("text/") or _is_content_type(content_type, "application/xml")


def _is_cloudevent_protobuf(content_type: str, data: bytes) -> bool:
    if _is_content_type(content_type, "application/cloudevents+protobuf"):
        return True
    return _is_content_type(content_type, "application/x-protobuf") and _parses_as_ce_proto(data)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _parses_as_ce_proto(data: bytes) -> bool:
    """Approximates `proto.Unmarshal` into `io.cloudevents.v1.CloudEvent`: well-formed wire format whose
    known fields (1-8) are length-delimited, with valid UTF-8 in the string fields (1-4, 7)."""
    i = 0
    try:
        while i < len(data):
            key, i = _varint(data, i)
            field, wire = key >> 3, key & 7
            if field == 0 or (1 <= field <= 8 and wire != 2):
                return False
            if wire == 0:
                _, i = _varint(data, i)
            elif wire in (1, 5):
                i += 8 if wire == 1 else 4
            elif wire == 2:
                length, i = _varint(data, i)
                chunk = data[i : i + length]
                i += length
                if field in (1, 2, 3, 4, 7):
                    chunk.decode("utf-8")
            else:
                return False
            if i > len(data):
                return False
    except ValueError:  # includes UnicodeDecodeError
        return False
    return True


def is_raw_payload(metadata: Mapping[str, str]) -> bool:
    """`rawPayload` metadata as Go's `strconv.ParseBool`; ValueError carries daprd's message."""
    value = metadata.get("rawPayload", "")
    if value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"rawPayload value must be a valid boolean: actual is '{value}'")


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str) -> float:
    """Go's `time.ParseDuration` in seconds ("1h30m", "1.5s", "300ms", "-2s", "0")."""
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return sign * total


def _lookup(metadata: Mapping[str, str], *keys: str) -> str | None:
    """First of `keys` present, matched case-insensitively (kit `GetMetadataProperty`)."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return None


def ttl_seconds(metadata: Mapping[str, str]) -> float | None:
    """`ttl`/`ttlInSeconds` as contrib `TryGetTTL`: a Go duration or whole seconds > 0; None if unset.

    daprd's `ApplyMetadata` ignores an invalid value (no expiration); we do the same, with a warning.
    """
    raw = _lookup(metadata, "ttl", "ttlInSeconds")
    if not raw:
        return None
    try:
        return max(parse_go_duration(raw), 0.0)
    except ValueError:
        pass
    if not re.fullmatch(r"[+-]?[0-9]+", raw):
        log.warning("ignoring ttl metadata %r: not a duration or a whole number of seconds", raw)
        return None
    seconds = int(raw)
    if seconds <= 0:
        log.warning("ignoring ttl metadata %r: the value must be higher than zero", raw)
        return None
    return float(seconds)


def format_rfc3339(ts: float) -> str:
    """Go's `time.Format(time.RFC3339)` of a UTC instant: whole seconds, `Z` suffix."""
    return datetime.fromtimestamp(int(ts // 1), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE)


def _parse_rfc3339(text: str) -> float | None:
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    zone = "+00:00" if m.group(3).upper() == "Z" else m.group(3)
    fraction = (m.group(2) or "")[:7]
    try:
        return datetime.fromisoformat(m.group(1).upper() + fraction + zone).timestamp()
    except ValueError:
        return None


def has_expired(event: Mapping[str, Any], now: float) -> bool:
    """contrib `HasExpired`: a parseable RFC3339 `expiration` strictly before `now`."""
    expiration = event.get("expiration")
    if not isinstance(expiration, str) or not expiration:
        return False
    instant = _parse_rfc3339(expiration)
    return instant is not None and instant < now


def _new_envelope(
    *,
    source: str,
    pubsub: str,
    topic: str,
    data: bytes,
    content_type: str,
    metadata: Mapping[str, str],
    now: float,
    trace: TraceContext,
) -> tuple[dict[str, Any], bool]:
    """The envelope, and whether every number in it is an int that `gojson.dumps_exact` can encode."""
    fields: dict[str, str] = {
        "id": "",
        "source": source,
        "type": "",
        "traceid": trace.traceparent,
        "traceparent": "",
        "tracestate": trace.tracestate,
    }
    lowered = {k.lower(): v for k, v in metadata.items()}
    for name in _OVERRIDES:  # mapstructure.WeakDecode: a present key overrides, even when empty
        value = lowered.get(f"cloudevent.{name}")
        if value is not None:
            fields[name] = value
    trace_id = fields["traceparent"] or fields["traceid"]
    content_type = content_type or DEFAULT_DATA_CONTENT_TYPE
    envelope: dict[str, Any] = {
        "id": fields["id"] or str(uuid.uuid4()),
        "specversion": SPEC_VERSION,
        "datacontenttype": content_type,
        "source": fields["source"] or DEFAULT_SOURCE,
        "type": fields["type"] or DEFAULT_TYPE,
        "topic": topic,
        "pubsubname": pubsub,
        "traceid": trace_id,
        "traceparent": trace_id,
        "tracestate": fields["tracestate"],
        "time": format_rfc3339(now),
    }
    exact = True
    if is_json_content_type(content_type):
        try:
            envelope["data"], exact = gojson.decode_first_exact(data)
        except ValueError:
            envelope["data"] = data.decode("utf-8", errors="replace")
    elif is_binary_content_type(content_type) or _is_cloudevent_protobuf(content_type, data):
        envelope["data_base64"] = base64.b64encode(data).decode("ascii")
    else:
        envelope["data"] = data.decode("utf-8", errors="replace")
    return envelope, exact


def _from_cloud_event(
    data: bytes, *, pubsub: str, topic: str, now: float, trace: TraceContext
) -> tuple[dict[str, Any], bool]:
    """contrib `FromCloudEvent`: the payload is the event; daprd fills the fields it owns (and whether
    every number in it is an int, as `_new_envelope` says)."""
    event, exact = gojson.decode_first_exact(data)
    if not isinstance(event, dict):
        raise ValueError("json: cannot unmarshal non-object into Go value of type map[string]interface {}")
    event.setdefault("time", format_rfc3339(now))
    if "traceid" not in event:
        event["traceid"] = trace.traceparent
        event["traceparent"] = trace.traceparent
    event.setdefault("tracestate", trace.tracestate)
    event["topic"] = topic
    event["pubsubname"] = pubsub
    for key, default in (("source", DEFAULT_SOURCE), ("type", DEFAULT_TYPE)):
        if event.get(key) is None:
            event[key] = default
    if event.get("specversion") is None:
        event["specversion"] = SPEC_VERSION
    return event, exact


def build_envelope(
    *,
    app_id: str,
    pubsub: str,
    topic: str,
    data: bytes,
    content_type: str,
    metadata: Mapping[str, str],
    now: float,
    trace: TraceContext | None = None,
) -> bytes:
    """The envelope bytes daprd hands the broker for a non-raw publish.

    Raises ValueError when an `application/cloudevents+json` payload is not a JSON object.
    """
    trace = trace or TraceContext()
    if is_cloudevent_content_type(content_type):
        envelope, exact = _from_cloud_event(data, pubsub=pubsub, topic=topic, now=now, trace=trace)
    else:
        envelope, exact = _new_envelope(
            source=app_id,
            pubsub=pubsub,
            topic=topic,
            data=data,
            content_type=content_type,
            metadata=metadata,
            now=now,
            trace=trace,
        )
    ttl = ttl_seconds(metadata)  # in-memory has no native TTL, so daprd stamps `expiration`
    if ttl is not None:
        envelope["expiration"] = format_rfc3339(now + ttl)
    # The C encoder writes the same bytes for an all-int tree, several times faster.
    return gojson.dumps_exact(envelope) if exact else gojson.dumps(envelope)


def raw_payload_envelope(data: bytes, *, pubsub: str, topic: str) -> dict[str, Any]:
    """contrib `FromRawPayload`: what a `rawPayload` subscriber receives for raw broker bytes."""
    return {
        "id": str(uuid.uuid4()),
        "specversion": SPEC_VERSION,
        "datacontenttype": "application/octet-stream",
        "source": DEFAULT_SOURCE,
        "type": DEFAULT_TYPE,
        "topic": topic,
        "pubsubname": pubsub,
        "data_base64": base64.b64encode(data).decode("ascii"),
    }
