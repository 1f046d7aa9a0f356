"""The `StateStore` protocol every state component implements, with daprd's request semantics and errors.

Stores see the already-prefixed key and the value as bytes; the API layers map `StateError`s to daprd's
codes once, through `api_error`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

import grpc

from sidecar.errors import ERRORS, DaprError, ErrorKind, error

__all__ = [
    "Concurrency",
    "DeleteOp",
    "ETagInvalid",
    "ETagMismatch",
    "OutboxLog",
    "OutboxRecord",
    "SetOp",
    "StateError",
    "StateItem",
    "StateStore",
    "TTL_EXPIRE_TIME",
    "TTL_IN_SECONDS",
    "api_error",
    "run_bulk",
    "check_options",
    "parse_ttl",
    "query_unsupported",
    "ttl_metadata",
]

Concurrency = Literal["first-write", "last-write"]
_Op = TypeVar("_Op", "SetOp", "DeleteOp")

TTL_IN_SECONDS = "ttlInSeconds"
_DECIMAL = re.compile(r"[+-]?[0-9]+")
# Response metadata a store returns for an item with a TTL (RFC 3339, UTC), as components-contrib does.
TTL_EXPIRE_TIME = "ttlExpireTime"


@dataclass(frozen=True)
class StateItem:
    """One stored value. `etag` changes on every write; `metadata` may carry `ttlExpireTime`."""

    key: str
    value: bytes
    etag: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SetOp:
    """An upsert. With an `etag` the write succeeds only if it matches the stored item's ETag;
    `first-write` without an ETag succeeds only if the key is absent. Metadata `ttlInSeconds` sets a TTL."""

    key: str
    value: bytes
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    concurrency: Concurrency = "last-write"


@dataclass(frozen=True)
class DeleteOp:
    """A delete. Deleting a missing key succeeds unless an ETag was given."""

    key: str
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    concurrency: Concurrency = "last-write"


@dataclass(frozen=True)
class OutboxRecord:
    """One event of the transactional outbox, committed with the state it describes.

    `data` is the finished CloudEvent; `seq` orders records in commit order (0 until stored).
    """

    event_id: str
    pubsub: str
    topic: str
    content_type: str
    data: bytes
    seq: int = 0


class StateError(Exception):
    """A state store refused or failed an operation (daprd: a 500 unless it is an ETag error).

    Not retryable as such: the same request fails the same way.
    """


class ETagMismatch(StateError):
    """The ETag did not match, or the key is absent, or `first-write` met an existing key.

    daprd: HTTP 409, gRPC ABORTED. Retry after reading the current ETag.
    """

    def __init__(self, detail: str | None = None) -> None:
        prefix = "possible etag mismatch. error from state store"
        super().__init__(f"{prefix}: {detail}" if detail else prefix)


class ETagInvalid(StateError):
    """The ETag is malformed for this store (daprd: HTTP 400, gRPC INVALID_ARGUMENT). Not retryable."""

    def __init__(self, detail: str | None = None) -> None:
        prefix = "invalid etag value"
        super().__init__(f"{prefix}: {detail}" if detail else prefix)


class OutboxLog(Protocol):
    """The outbox side of a state store: events committed with state, read and removed by the relay."""

    def enable_outbox(self) -> None:
        """Prepare the outbox storage (blocking; at start-up)."""
        ...

    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        """The oldest `limit` records not yet removed, in commit order."""
        ...

    async def outbox_remove(self, seq: int) -> None: ...

    async def outbox_count(self) -> int: ...


def check_options(concurrency: str | None, consistency: str | None) -> Concurrency:
    """Validate request options as components-contrib does; returns the concurrency to use."""
    if consistency not in (None, "", "strong", "eventual"):
        raise StateError(f"unrecognized consistency model '{consistency}'")
    if concurrency in (None, "", "last-write"):
        return "last-write"
    if concurrency == "first-write":
        return "first-write"
    raise StateError(f"unrecognized concurrency model '{concurrency}'")


def parse_ttl(metadata: Mapping[str, str], *, lenient: bool = False) -> int | None:
    """`ttlInSeconds` as an int (None = no TTL; <= 0 means no expiry).

    Strict (state.sqlite) accepts -1 or greater; lenient (state.in-memory) maps negatives to 0.
    """
    raw = metadata.get(TTL_IN_SECONDS, "")
    if raw == "":
        return None
    if not _DECIMAL.fullmatch(raw):
        raise StateError(f"incorrect value for metadata '{TTL_IN_SECONDS}': invalid syntax {raw!r}")
    ttl = int(raw)
    if lenient:
        return max(ttl, 0)
    if ttl < -1 or ttl > 2**31 - 1:
        raise StateError(f"incorrect value for metadata '{TTL_IN_SECONDS}': must be -1 or greater")
    return ttl


def ttl_metadata(expires: float | None) -> dict[str, str]:
    """Item metadata for an expiry instant: `ttlExpireTime` in Go's RFC 3339 layout (whole seconds, UTC)."""
    if expires is None:
        return {}
    return {TTL_EXPIRE_TIME: datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def api_error(exc: StateError, code: str, message: str) -> DaprError:
    """daprd's error for a failed save or delete: `code` keeps its name, the status follows the ETag kind.

    ETag mismatch is HTTP 409 / gRPC ABORTED, invalid ETag 400 / INVALID_ARGUMENT, anything else the
    code's own status (500 / INTERNAL for ERR_STATE_SAVE and ERR_STATE_DELETE).
    """
    kind = ERRORS[code]
    if isinstance(exc, ETagMismatch):
        kind = ErrorKind(code, 409, grpc.StatusCode.ABORTED, grpc_basic=kind.grpc_basic)
    elif isinstance(exc, ETagInvalid):
        kind = ErrorKind(code, 400, grpc.StatusCode.INVALID_ARGUMENT, grpc_basic=kind.grpc_basic)
    return DaprError(kind, message)


async def run_bulk(
    ops: Sequence[_Op], apply: Callable[[_Op], Awaitable[None]], code: str, doing: str, store: str
) -> None:
    """daprd's bulk save or delete over contrib's default bulk store: every item is tried (none is atomic
    with another), then the errors are joined into one. ETag mismatch wins over invalid ETag over any other
    failure for the status."""
    failures: list[StateError] = []
    for op in ops:
        try:
            await apply(op)
        except StateError as exc:
            failures.append(exc)
    if not failures:
        return
    joined = "\n".join(str(f) for f in failures)
    kind: type[StateError] = StateError
    if any(isinstance(f, ETagMismatch) for f in failures):
        kind = ETagMismatch
    elif any(isinstance(f, ETagInvalid) for f in failures):
        kind = ETagInvalid
    error_ = failures[0] if len(failures) == 1 else kind(joined)
    raise api_error(error_, code, f"failed {doing} state in state store {store}: {error_}")


def query_unsupported(store: str) -> DaprError:
    """daprd's answer to the state query API on a store that is not a `state.Querier`: neither SQLite nor
    the in-memory store is one, in contrib or here."""
    return error(
        "ERR_STATE_STORE_NOT_SUPPORTED",
        "state store does not support querying",
        reason="DAPR_STATE_QUERYING_NOT_SUPPORTED",
        resource=store,
    )


class StateStore(OutboxLog, Protocol):
    """A state component (`state.sqlite`, `state.in-memory`).

    `features` uses daprd's names (`ETAG`, `TRANSACTIONAL`, `TTL`, ...). `key_prefix` is the component's
    `keyPrefix` strategy (`appid`, `name`, `none`, or a custom prefix), applied by the API layers through
    `state_key`. Every method may raise `StateError`.
    """

    name: str
    component_type: str
    features: frozenset[str]
    key_prefix: str

    async def get(self, key: str) -> StateItem | None: ...

    async def bulk_get(self, keys: Sequence[str]) -> list[tuple[str, StateItem | None]]:
        """One entry per requested key, in request order; None for missing or expired keys."""
        ...

    async def set(self, op: SetOp) -> None: ...

    async def delete(self, op: DeleteOp) -> None: ...

    async def transact(self, ops: Sequence[SetOp | DeleteOp], events: Sequence[OutboxRecord] = ()) -> None:
        """Apply all ops in order, atomically: if one fails, none is applied. `events` are appended to
        the store's outbox in the same transaction (the outbox must be enabled)."""
        ...

    async def close(self) -> None: ...
