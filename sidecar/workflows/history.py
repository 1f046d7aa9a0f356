"""History events of the Dapr fork of durable task, built only from the SDK's own generated messages.

The Dapr fork and Microsoft's durabletask share proto names but not field numbers, so everything here
goes through `dapr.ext.workflow._durabletask.internal.protos`; that keeps the wire identical to the SDK's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import dapr.ext.workflow._durabletask.internal.protos as pb
from google.protobuf import timestamp_pb2, wrappers_pb2

__all__ = [
    "ACTIVE",
    "COMPLETED",
    "CONTINUED_AS_NEW",
    "FAILED",
    "PENDING",
    "RUNNING",
    "STALLED",
    "SUSPENDED",
    "TERMINAL",
    "TERMINATED",
    "event",
    "failure",
    "is_never",
    "kind",
    "new_execution_id",
    "pack_repeated",
    "pb",
    "seconds",
    "string_value",
    "timestamp",
]

RUNNING = pb.ORCHESTRATION_STATUS_RUNNING
COMPLETED = pb.ORCHESTRATION_STATUS_COMPLETED
CONTINUED_AS_NEW = pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
FAILED = pb.ORCHESTRATION_STATUS_FAILED
TERMINATED = pb.ORCHESTRATION_STATUS_TERMINATED
PENDING = pb.ORCHESTRATION_STATUS_PENDING
SUSPENDED = pb.ORCHESTRATION_STATUS_SUSPENDED
STALLED = pb.ORCHESTRATION_STATUS_STALLED
TERMINAL = frozenset({COMPLETED, FAILED, TERMINATED})
ACTIVE = frozenset({PENDING, RUNNING, SUSPENDED, STALLED})

# The SDK's indefinite-wait sentinel is 9999-12-31T23:59:59.999999999Z; anything from the year 9999 on
# is treated as "never fires" (Python datetimes and most timer APIs cannot represent it anyway).
_NEVER_SECONDS = 253370764800  # 9999-01-01T00:00:00Z


def timestamp(at: float) -> Any:
    """A protobuf Timestamp for UTC epoch seconds."""
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(round(at * 1e9)))
    return ts


def seconds(ts: Any) -> float:
    """UTC epoch seconds of a protobuf Timestamp."""
    return float(ts.seconds) + float(ts.nanos) / 1e9


def is_never(ts: Any) -> bool:
    """Whether a timer's fireAt is the far-future sentinel of an indefinite wait."""
    return int(ts.seconds) >= _NEVER_SECONDS


def string_value(value: str | None) -> Any:
    """A StringValue wrapper, or None (absent) for None."""
    return None if value is None else wrappers_pb2.StringValue(value=value)


def failure(error_type: str, message: str) -> Any:
    """TaskFailureDetails for failures the engine itself reports."""
    return pb.TaskFailureDetails(errorType=error_type, errorMessage=message)


def new_execution_id() -> str:
    return uuid.uuid4().hex


def event(at: float, *, event_id: int = -1, router: Any = None, **payload: Any) -> Any:
    """A HistoryEvent stamped with `at`; `payload` is exactly one `<oneof name>=<message>`."""
    ev = pb.HistoryEvent(eventId=event_id, timestamp=timestamp(at), **payload)
    if router is not None:
        ev.router.CopyFrom(router)
    return ev


def kind(ev: Any) -> str:
    """The event's oneof name, e.g. "executionStarted"."""
    return str(ev.WhichOneof("eventType") or "")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def pack_repeated(field_number: int, blobs: Iterable[bytes]) -> bytes:
    """Wire bytes of a repeated message field made of already-serialized messages.

    Stored events are kept as serialized bytes; merging them into a request this way avoids parsing
    and re-serializing every past event on every turn.
    """
    tag = _varint((field_number << 3) | 2)
    return b"".join(tag + _varint(len(b)) + b for b in blobs)
