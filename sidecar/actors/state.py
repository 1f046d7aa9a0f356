"""Actor state: reads straight from the actor state store, transactional writes only for active actors.

Keys follow daprd (`<appId>||<ActorType>||<actorId>||<key>`) so data written here is laid out as daprd would
lay it out. Values are re-encoded as daprd's Go encoding/json does (float64 numbers, sorted keys, `<>&`
escaped), so the bytes read back match daprd's.
"""

from __future__ import annotations

from typing import Any

from sidecar.actors.runtime import ActorHost
from sidecar.errors import error
from sidecar.gojson import as_float64, dumps_exact, loads_float64_exact
from sidecar.gojson import dumps as go_dumps
from sidecar.state import DeleteOp, SetOp, StateError, StateStore, actor_state_key

__all__ = ["ActorState"]


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

    async def get(self, actor_type: str, actor_id: str, key: str) -> bytes | None:
        await self.host.wait_ready_for_state(actor_type, actor_id)
        store = self._require_store("ERR_ACTOR_STATE_GET")
        try:
            item = await store.get(actor_state_key(self.app_id, actor_type, actor_id, key))
        except StateError as exc:
            raise error("ERR_ACTOR_STATE_GET", f"error getting actor state: {exc}") from exc
        return None if item is None else item.value

    async def transact(self, actor_type: str, actor_id: str, body: bytes) -> None:
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
        if not self.host.is_active(actor_type, actor_id):
            raise error(
                "ERR_ACTOR_INSTANCE_MISSING",
                f"actor instance is missing: {actor_type}/{actor_id} is not active in this sidecar",
            )
        store = self._require_store("ERR_ACTOR_STATE_TRANSACTION_SAVE")
        ops = [self._op(actor_type, actor_id, raw, exact) for raw in ops_raw]
        try:
            await store.transact(ops)
        except StateError as exc:
            raise error(
                "ERR_ACTOR_STATE_TRANSACTION_SAVE", f"error saving actor transaction state: {exc}"
            ) from exc

    def _op(self, actor_type: str, actor_id: str, raw: Any, exact: bool) -> SetOp | DeleteOp:
        """One operation; with `exact`, numbers are ints and everything but the value is read through
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
        if "ttlInSeconds" in metadata and not self.ttl_enabled:
            raise error(
                "ERR_ACTOR_STATE_TRANSACTION_SAVE",
                'ttlInSeconds is not supported without the "ActorStateTTL" feature enabled',
            )
        full_key = actor_state_key(self.app_id, actor_type, actor_id, key)
        etag = request.get("etag")
        etag = str(as_float64(etag) if exact else etag) if etag not in (None, "") else None
        operation = raw.get("operation")
        if operation == "upsert":
            value = request.get("value")
            return SetOp(
                full_key, dumps_exact(value) if exact else go_dumps(value), etag=etag, metadata=metadata
            )
        if operation == "delete":
            return DeleteOp(full_key, etag=etag, metadata=metadata)
        if exact:
            operation = as_float64(operation)
        raise error("ERR_ACTOR_STATE_TRANSACTION_SAVE", f"operation type {operation} not supported")
