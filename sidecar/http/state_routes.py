"""The state API of the sidecar's HTTP server (`/v1.0/state/...`), answering as daprd's `pkg/api/http` does.

Values are decoded and re-encoded the way Go's encoding/json does (float64 numbers, sorted keys), so the
bytes stored are the bytes daprd would store. ETag errors on save and delete are 409 (mismatch) or 400
(invalid) under ERR_STATE_SAVE / ERR_STATE_DELETE; every store error in a transaction is 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar.components import Components
from sidecar.errors import ERRORS, DaprError, error
from sidecar.gojson import as_float64, decode_first, decode_first_exact, dumps, dumps_exact
from sidecar.http import gostruct as go
from sidecar.state import (
    DeleteOp,
    SetOp,
    StateError,
    StateStore,
    api_error,
    check_options,
    query_unsupported,
    run_bulk,
    state_key,
)
from sidecar.state.outbox import CONTENT_TYPE, EventPayload, http_payload
from sidecar.state.transactions import StateTransactions

__all__ = ["routes"]

log = logging.getLogger("sidecar.http.state")

_JSON = "application/json"

_NOT_CONFIGURED = ERRORS["ERR_STATE_STORE_NOT_CONFIGURED"]
_NOT_SUPPORTED_OP = ERRORS["ERR_NOT_SUPPORTED_STATE_OPERATION"]


def routes(
    components: Components, app_id: str, transactions: StateTransactions | None = None
) -> list[BaseRoute]:
    """Routes under `/v1.0/state` for the state stores in `components`; transactions run through
    `transactions` (which adds the outbox), or straight on the store without one."""
    api = _StateAPI(components, app_id, transactions)
    both = ["POST", "PUT"]
    return [
        Route("/v1.0/state/{store}/bulk", api.bulk_get, methods=both),
        Route("/v1.0/state/{store}/transaction", api.transaction, methods=both),
        Route("/v1.0/state/{store}/query", api.query, methods=both),
        Route("/v1.0/state/{store}/{key}", api.get, methods=["GET"]),
        Route("/v1.0/state/{store}/{key}", api.delete, methods=["DELETE"]),
        Route("/v1.0/state/{store}", api.save, methods=both),
    ]


class _StateAPI:
    def __init__(self, components: Components, app_id: str, transactions: StateTransactions | None) -> None:
        self.components = components
        self.app_id = app_id
        self.transactions = transactions

    def _store(self, request: Request) -> tuple[str, StateStore]:
        name = str(request.path_params["store"])
        stores = self.components.state_stores
        if not stores:
            raise DaprError(
                _NOT_CONFIGURED, f"state store {name} is not configured", metadata={"appID": self.app_id}
            )
        store = stores.get(name)
        if store is None:
            raise error(
                "ERR_STATE_STORE_NOT_FOUND",
                f"state store {name} is not found",
                metadata={"appID": self.app_id},
            )
        return name, store

    async def get(self, request: Request) -> Response:
        name, store = self._store(request)
        key = str(request.path_params["key"])
        try:
            item = await store.get(state_key(self.app_id, store, key))
        except StateError as exc:
            raise error("ERR_STATE_GET", f"fail to get {key} from state store {name}: {exc}") from exc
        if item is None:
            return Response(status_code=204)
        headers = {f"metadata.{k}": v for k, v in item.metadata.items()}
        if item.etag is not None:
            headers["ETag"] = item.etag
        return Response(item.value, status_code=200, media_type=_JSON, headers=headers)

    async def bulk_get(self, request: Request) -> Response:
        name, store = self._store(request)
        try:
            body = go.struct(decode_first(await request.body()), "BulkGetRequest")
            keys = go.strings(go.field(body, "keys"), "BulkGetRequest.keys")
            go.integer(go.field(body, "parallelism"), "BulkGetRequest.parallelism")
        except (ValueError, go.Malformed) as exc:
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from exc
        stored = [state_key(self.app_id, store, k) for k in keys]
        try:
            found = await store.bulk_get(stored) if stored else []
        except StateError as exc:
            raise error("ERR_STATE_BULK_GET", str(exc)) from exc
        parts = []
        for key, (_, item) in zip(keys, found, strict=True):
            fields = ['"key":' + dumps(key).decode()]
            if item is not None:
                fields.append('"data":' + _raw_json(item.value))
                if item.etag is not None:
                    fields.append('"etag":' + dumps(item.etag).decode())
                if item.metadata:
                    fields.append('"metadata":' + dumps(dict(item.metadata)).decode())
            parts.append("{" + ",".join(fields) + "}")
        return Response(("[" + ",".join(parts) + "]\n").encode(), media_type=_JSON)

    async def save(self, request: Request) -> Response:
        name, store = self._store(request)
        try:
            items, exact = decode_first_exact(await request.body())
            if not isinstance(items, list):
                raise go.Malformed(
                    f"json: cannot unmarshal {go.kind(items)} into Go value of type []state.SetRequest"
                )
            requests = [go.struct(i, "state.SetRequest") for i in items]
            for r in requests:
                go.field(r, "key", str, "SetRequest.key")
        except (ValueError, go.Malformed) as exc:
            raise error("ERR_MALFORMED_REQUEST", str(exc)) from exc
        query_metadata = _query_metadata(request)
        ops: list[SetOp] = []
        for r in requests:
            if not go.field(r, "key"):
                raise error("ERR_MALFORMED_REQUEST", '"key" is a required field')
            try:
                ops.append(self._set_op(store, r, query_metadata, "SetRequest", exact))
            except go.Malformed as exc:
                raise error("ERR_MALFORMED_REQUEST", str(exc)) from exc
            except StateError as exc:  # bad options: a store error in daprd
                raise api_error(
                    exc, "ERR_STATE_SAVE", f"failed saving state in state store {name}: {exc}"
                ) from exc
        await run_bulk(ops, store.set, "ERR_STATE_SAVE", "saving", name)
        return Response(status_code=204)

    async def delete(self, request: Request) -> Response:
        _, store = self._store(request)
        key = str(request.path_params["key"])
        stored = state_key(self.app_id, store, key)
        try:
            concurrency = check_options(
                request.query_params.get("concurrency"), request.query_params.get("consistency")
            )
            await store.delete(
                DeleteOp(
                    stored,
                    etag=request.headers.get("if-match") or None,
                    metadata=_query_metadata(request),
                    concurrency=concurrency,
                )
            )
        except StateError as exc:
            raise api_error(exc, "ERR_STATE_DELETE", f"failed deleting state with key {key}: {exc}") from exc
        return Response(status_code=204)

    async def transaction(self, request: Request) -> Response:
        name, store = self._store(request)
        if "TRANSACTIONAL" not in store.features:
            raise error(
                "ERR_STATE_STORE_NOT_SUPPORTED",
                f"state store {name} doesn't support transactions",
                resource=name,
            )
        try:
            decoded, exact = decode_first_exact(await request.body())
            body = go.struct(decoded, "http.stateTransactionRequestBody")
            operations = go.field(body, "operations") or []
            if not isinstance(operations, list):
                raise go.Malformed("json: cannot unmarshal into field operations of type []operation")
            go.string_map(go.field(body, "metadata"), "metadata")
        except (ValueError, go.Malformed) as exc:
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from exc
        query_metadata = _query_metadata(request)
        outbox = self.transactions is not None and self.transactions.enabled(name)
        ops: list[SetOp | DeleteOp] = []
        payloads: list[EventPayload | None] = []
        for raw in operations:
            try:
                operation = go.struct(raw, "operation")
                kind = go.field(operation, "operation", str, "operation") or ""
                req = go.struct(go.field(operation, "request"), "request")
                go.field(req, "key", str, "key")
            except go.Malformed as exc:
                raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from exc
            if kind not in ("upsert", "delete"):
                raise DaprError(_NOT_SUPPORTED_OP, f"operation type {kind} not supported")
            if not go.field(req, "key"):
                raise error("ERR_MALFORMED_REQUEST", "missing key in state operation")
            try:
                if kind == "upsert":
                    op = self._set_op(store, req, query_metadata, "SetRequest", exact)
                    ops.append(op)
                    payloads.append(_event_payload(req, op, exact) if outbox else None)
                else:
                    ops.append(self._delete_op(store, req, query_metadata))
                    payloads.append(None)
            except go.Malformed as exc:
                raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from exc
            except StateError as exc:  # bad options: a store error in daprd
                raise error(
                    "ERR_STATE_TRANSACTION", f"error while executing state transaction: {exc}"
                ) from exc
        if not ops:
            return Response(status_code=204)
        try:
            if self.transactions is None:
                await store.transact(ops)
            else:
                await self.transactions.execute(
                    name,
                    store,
                    ops,
                    payloads,
                    traceparent=request.headers.get("traceparent", ""),
                    tracestate=request.headers.get("tracestate", ""),
                )
        except StateError as exc:
            raise error("ERR_STATE_TRANSACTION", f"error while executing state transaction: {exc}") from exc
        return Response(status_code=204)

    async def query(self, request: Request) -> Response:
        name, _ = self._store(request)
        raise query_unsupported(name)

    def _set_op(
        self,
        store: StateStore,
        req: Mapping[str, Any],
        query_metadata: dict[str, str],
        struct: str,
        exact: bool,
    ) -> SetOp:
        """One upsert; with `exact` (the body's numbers are all small ints, see `decode_first_exact`) the
        value is written by the C encoder, else through Go's float64 in Python: the same bytes."""
        key = str(go.field(req, "key"))
        etag = go.field(req, "etag", str, f"{struct}.etag")
        metadata = {**go.string_map(go.field(req, "metadata"), f"{struct}.metadata"), **query_metadata}
        options = go.struct(go.field(req, "options") or {}, f"{struct}.options")
        try:
            concurrency = check_options(
                go.field(options, "concurrency", str, "concurrency"),
                go.field(options, "consistency", str, "consistency"),
            )
            raw = go.field(req, "value")
            value = dumps_exact(raw) if exact else dumps(go.any_value(raw))
        except ValueError as exc:
            raise go.Malformed(str(exc)) from exc
        return SetOp(state_key(self.app_id, store, key), value, etag or None, metadata, concurrency)

    def _delete_op(
        self, store: StateStore, req: Mapping[str, Any], query_metadata: dict[str, str]
    ) -> DeleteOp:
        key = str(go.field(req, "key"))
        etag = go.field(req, "etag", str, "DeleteRequest.etag")
        metadata = {**go.string_map(go.field(req, "metadata"), "DeleteRequest.metadata"), **query_metadata}
        options = go.struct(go.field(req, "options") or {}, "DeleteRequest.options")
        concurrency = check_options(
            go.field(options, "concurrency", str, "concurrency"),
            go.field(options, "consistency", str, "consistency"),
        )
        return DeleteOp(state_key(self.app_id, store, key), etag or None, metadata, concurrency)


def _event_payload(req: Mapping[str, Any], op: SetOp, exact: bool) -> EventPayload:
    """The outbox event data of an upsert: the request's `contentType` field (which Go's mapstructure
    matches case-insensitively), else its `contentType` metadata, decides JSON or `%v` text."""
    content_type = go.field(req, "contenttype", str, "SetRequest.contentType")
    if content_type is None:
        content_type = op.metadata.get(CONTENT_TYPE, "")
    value = go.field(req, "value")
    return http_payload(go.any_value(as_float64(value) if exact else value), content_type)


def _query_metadata(request: Request) -> dict[str, str]:
    """`metadata.<name>` query parameters (first value of each), as daprd reads them."""
    out: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name.startswith("metadata.") and name[9:] not in out:
            out[name[9:]] = value
    return out


def _raw_json(value: bytes) -> str:
    """A stored value spliced into the bulk response as raw JSON, as daprd does (`json.RawMessage`).

    A value that is not JSON (bytes saved over gRPC) is sent as a JSON string instead of a broken body.
    """
    text = value.decode("utf-8", "replace")
    try:
        json.loads(text)
    except ValueError:
        return dumps(text).decode()
    return text
