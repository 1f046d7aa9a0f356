"""daprd's lock routes (`POST /v1.0-alpha1/lock/{store}` and `/unlock/{store}`), bodies read as protojson."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar.errors import error
from sidecar.lock.api import LockAPI

__all__ = ["routes"]


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from None
    if not isinstance(body, dict):
        raise error("ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: expected a JSON object")
    return body


def _text(body: dict[str, Any], camel: str, snake: str) -> str:
    return str(body.get(camel, body.get(snake)) or "")


def routes(locks: LockAPI) -> list[BaseRoute]:
    async def try_lock(request: Request) -> Response:
        body = _body(await request.body())
        expiry = body.get("expiryInSeconds", body.get("expiry_in_seconds", 0))
        if isinstance(expiry, bool) or not isinstance(expiry, int):
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: invalid int32 {expiry!r}")
        ok = locks.try_lock(
            str(request.path_params["store"]),
            _text(body, "resourceId", "resource_id"),
            _text(body, "lockOwner", "lock_owner"),
            expiry,
        )
        return JSONResponse({"success": ok})

    async def unlock(request: Request) -> Response:
        body = _body(await request.body())
        status = locks.unlock(
            str(request.path_params["store"]),
            _text(body, "resourceId", "resource_id"),
            _text(body, "lockOwner", "lock_owner"),
        )
        return JSONResponse({"status": status})  # daprd reports the enum as its number here

    return [
        Route("/v1.0-alpha1/lock/{store}", try_lock, methods=["POST"]),
        Route("/v1.0-alpha1/unlock/{store}", unlock, methods=["POST"]),
    ]
