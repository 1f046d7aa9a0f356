"""Actor state: reads straight from the actor state store, transactional writes only for active actors.

Keys follow daprd (`<appId>||<ActorType>||<actorId>||<key>`) so data written here is laid out as daprd would
lay it out. Values are re-encoded as daprd's Go encoding/json does (float64 numbers, sorted keys, `<>&`
escaped), so the bytes read back match daprd's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.actors.runtime import ActorHost
from sidecar.errors import error
from sidecar.gojson import as_float64, dumps_exact, loads_float64_exact
from sidecar.gojson import dumps as go_dumps
from sidecar.state import DeleteOp, SetOp, StateError, StateItem, StateStore, actor_state_key

__all__ = ["ActorState", "StateOperation"]


@dataclass(frozen=True, slots=True)
class StateOperation:
    """One operation of an actor state transaction as either wire gives it: `upsert` or `delete`, the
    actor's key, the value's stored bytes (upsert), an ETag and store metadata (e.g. `ttlInSeconds`)."""

    operation: str
    key: str
    value: bytes = b""
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class ActorState:
    def __init__(self, host: ActorHost, store: StateStore | None, app_id: str) -> None:
        self.host = host
        self.store = store
        self.app_id = app_id
        self.ttl_enabled = False  # preview feature ActorStateTTL

    def _require_store(self, code: str) -> StateStore:
        if self.store is None:
            raise error(
                code,
                "actors: state store does not exist or incorrectly configured "
                '(set metadata actorStateStore: "true" on one state store)',
            )
        return self.store

    async def read(self, actor_type: str, actor_id: str, key: str) -> StateItem | None:
        """The stored item (value and store metadata such as `ttlExpireTime`), or None."""
        await self.host.wait_ready_for_state(actor_type, actor_id)
        store = self._require_store("ERR_ACTOR_STATE_GET")
        try:
            return await store.get(actor_state_key(self.app_id, actor_type, actor_id, key))
        except StateError as exc:
            raise error("ERR_ACTOR_STATE_GET", f"error getting actor state: {exc}") from exc

    async def get(self, actor_type: str, actor_id: str, key: str) -> bytes | None:
        item = await self.read(actor_type, actor_id, key)
        return None if item is None else item.value

    async def transact(self, actor_type: str, actor_id: str, body: bytes) -> None:
        """The HTTP API's transaction: a JSON list of `{operation, request: {key, value, metadata}}`."""
        await self.host.wait_ready_for_state(actor_type, actor_id)
        try:
            # daprd decodes the body with Go's encoding/json (numbers become float64) and the store
            # re-encodes each value: reproduce both so stored bytes match daprd's. When every number is a
            # small int (the usual case) the C encoder writes the same bytes much faster.
            ops_raw, exact = loads_float64_exact(body)
        except ValueError as exc:
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from exc
        if not isinstance(ops_raw, list):
            raise error("ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: expected a list")
        self._require_active(actor_type, actor_id)
        await self.execute(actor_type, actor_id, [_parse_op(raw, exact) for raw in ops_raw])

    async def execute(self, actor_type: str, actor_id: str, ops: Sequence[StateOperation]) -> None:
        """Write `ops` in one store transaction; only an actor active in this sidecar may (both wires)."""
        await self.host.wait_ready_for_state(actor_type, actor_id)
        self._require_active(actor_type, actor_id)
        store = self._require_store("ERR_ACTOR_STATE_TRANSACTION_SAVE")
        store_ops = [self._store_op(actor_type, actor_id, op) for op in ops]
        try:
            await store.transact(store_ops)
        except StateError as exc:
            raise error(
                "ERR_ACTOR_STATE_TRANSACTION_SAVE", f"error saving actor transaction state: {exc}"
            ) from exc

    def _require_active(self, actor_type: str, actor_id: str) -> None:
        if not self.host.is_active(actor_type, actor_id):
            raise error(
                "ERR_ACTOR_INSTANCE_MISSING",
                f"actor instance is missing: {actor_type}/{actor_id} is not active in this sidecar",
            )

    def _store_op(self, actor_type: str, actor_id: str, op: StateOperation) -> SetOp | DeleteOp:
        if not op.key:
            raise error("ERR_MALFORMED_REQUEST", "missing key in actor state operation")
        if "ttlInSeconds" in op.metadata and not self.ttl_enabled:
            raise error(
                "ERR_ACTOR_STATE_TRANSACTION_SAVE",
                'ttlInSeconds is not supported without the "ActorStateTTL" feature enabled',
            )
        full_key = actor_state_key(self.app_id, actor_type, actor_id, op.key)
        if op.operation == "upsert":
            return SetOp(full_key, op.value, etag=op.etag, metadata=op.metadata)
        if op.operation == "delete":
            return DeleteOp(full_key, etag=op.etag, metadata=op.metadata)
        raise error("ERR_ACTOR_STATE_TRANSACTION_SAVE", f"operation type {op.operation} not supported")


def _parse_op(raw: Any, exact: bool) -> StateOperation:
    """One HTTP operation; with `exact`, numbers are ints and everything but the value is read through
    `as_float64` so strings made from numbers stay as daprd's float64 makes them (`60.0`)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise error("ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: bad operation")
    request = raw["request"]
    key = request.get("key")
    if not isinstance(key, str) or not key:
        raise error("ERR_MALFORMED_REQUEST", "missing key in actor state operation")
    raw_metadata = request.get("metadata")
    if exact:
        raw_metadata = as_float64(raw_metadata)
    metadata = {str(k): str(v) for k, v in (raw_metadata or {}).items()}
    etag = request.get("etag")
    etag = str(as_float64(etag) if exact else etag) if etag not in (None, "") else None
    operation = raw.get("operation")
    value = b""
    if operation == "upsert":
        value = request.get("value")
        value = dumps_exact(value) if exact else go_dumps(value)
    elif exact:
        operation = as_float64(operation)
    return StateOperation(str(operation), key, value, etag, metadata)
