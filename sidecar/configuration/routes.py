"""daprd's Configuration HTTP API (`/v1.0` and `/v1.0-alpha1`: get, subscribe, unsubscribe), plus our dev
route `PUT /v1.0-dev/configuration/{store}` that writes items (daprd's stores are written by their own
tools, e.g. redis-cli; the embedded store has none)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar.configuration.service import ConfigurationAPI
from sidecar.configuration.store import Item
from sidecar.errors import DaprError, error

__all__ = ["routes"]


def _go_json(value: Any) -> bytes:
    """Go's json.Encoder: compact, map keys sorted, a trailing newline."""
    return (json.dumps(value, separators=(",", ":"), sort_keys=True) + "\n").encode()


def routes(api: ConfigurationAPI) -> list[BaseRoute]:
    async def get(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        items = api.get(str(request.path_params["store"]), keys)
        if not items:
            return Response(status_code=204)
        body = {k: v.to_json() for k, v in items.items()}
        return Response(_go_json(body), media_type="application/json")

    async def subscribe(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        subscription_id = api.subscribe_app(str(request.path_params["store"]), keys)
        return Response(_go_json({"id": subscription_id}), media_type="application/json")

    async def unsubscribe(request: Request) -> Response:
        try:
            api.unsubscribe(str(request.path_params["store"]), str(request.path_params["id"]))
        except DaprError as exc:
            if exc.code != "ERR_CONFIGURATION_UNSUBSCRIBE":
                raise
            return Response(_go_json({"message": exc.message}), 500, media_type="application/json")
        return Response(_go_json({"ok": True}), media_type="application/json")

    async def put(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from None
        changes = _changes(body)
        stored = await api.put(str(request.path_params["store"]), changes)
        return JSONResponse({k: v.to_json() for k, v in stored.items()})

    out: list[BaseRoute] = [
        Route("/v1.0-dev/configuration/{store}", put, methods=["PUT"]),
    ]
    for version in ("v1.0-alpha1", "v1.0"):
        out += [
            Route(f"/{version}/configuration/{{store}}/subscribe", subscribe, methods=["GET"]),
            Route(f"/{version}/configuration/{{store}}/{{id}}/unsubscribe", unsubscribe, methods=["GET"]),
            Route(f"/{version}/configuration/{{store}}", get, methods=["GET"]),
        ]
    return out


def _changes(body: Any) -> dict[str, Item | None]:
    """`{"key": {"value": "...", "version"?: "...", "metadata"?: {...}} | null}`; null deletes the key."""
    if not isinstance(body, dict) or not body:
        raise _bad("the body must be a JSON object of key -> item (or null to delete)")
    changes: dict[str, Item | None] = {}
    for key, item in body.items():
        if item is None:
            changes[key] = None
            continue
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"]:
            raise _bad(f"item {key!r} needs a non-empty string `value` (null deletes the key)")
        version = item.get("version", "")
        metadata = item.get("metadata") or {}
        if not isinstance(version, str) or not isinstance(metadata, dict):
            raise _bad(f"item {key!r}: `version` must be a string and `metadata` an object")
        if not all(isinstance(v, str) for v in metadata.values()):
            raise _bad(f"item {key!r}: `metadata` values must be strings")
        changes[key] = Item(item["value"], version, metadata)
    return changes


def _bad(reason: str) -> DaprError:
    return error("ERR_MALFORMED_REQUEST", f"configuration items: {reason}")
