"""Actor state: reads straight from the actor state store, transactional writes only for active actors.

Keys follow daprd (`<appId>||<ActorType>||<actorId>||<key>`) so data written here is laid out as daprd would
lay it out. Values are re-encoded as daprd's Go encoding/json does (float64 numbers, sorted keys, `<>&`
escaped), so the bytes read back match daprd's.
"""

from __future__ import annotations

from typing import Any

from sidecar.actors.runtime import ActorHost
from sidecar.errors import error
from sidecar.gojson import dumps as go_dumps
from sidecar.gojson import loads_float64
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
        await self.host.wait_ready()
        store = self._require_store("ERR_ACTOR_STATE_GET")
        try:
            item = await store.get(actor_state_key(self.app_id, actor_type, actor_id, key))
        except StateError as exc:
            raise error("ERR_ACTOR_STATE_GET", f"error getting actor state: {exc}") from exc
        return None if item is None else item.value

    async def transact(self, actor_type: str, actor_id: str, body: bytes) -> None:
        await self.host.wait_ready()
        try:
            # daprd decodes the body with Go's encoding/json (numbers become float64) and the store
            # re-encodes each value: reproduce both so stored bytes match daprd's.
            ops_raw = loads_float64(body)
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
        ops = [self._op(actor_type, actor_id, raw) for raw in ops_raw]
        try:
            await store.transact(ops)
        except StateError as exc:
            raise error(
                "ERR_ACTOR_STATE_TRANSACTION_SAVE", f"error saving actor transaction state: {exc}"
            ) from exc

    def _op(self, actor_type: str, actor_id: str, raw: Any) -> SetOp | DeleteOp:
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
            raise error("ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: bad operation")
        request = raw["request"]
        key = request.get("key")
        if not isinstance(key, str) or not key:
            raise error("ERR_MALFORMED_REQUEST", "missing key in actor state operation")
        metadata = {str(k): str(v) for k, v in (request.get("metadata") or {}).items()}
        if "ttlInSeconds" in metadata and not self.ttl_enabled:
            raise error(
                "ERR_ACTOR_STATE_TRANSACTION_SAVE",
                'ttlInSeconds is not supported without the "ActorStateTTL" feature enabled',
            )
        full_key = actor_state_key(self.app_id, actor_type, actor_id, key)
        etag = request.get("etag")
        etag = str(etag) if etag not in (None, "") else None
        operation = raw.get("operation")
        if operation == "upsert":
            return SetOp(full_key, go_dumps(request.get("value")), etag=etag, metadata=metadata)
        if operation == "delete":
            return DeleteOp(full_key, etag=etag, metadata=metadata)
        raise error("ERR_ACTOR_STATE_TRANSACTION_SAVE", f"operation type {operation} not supported")
