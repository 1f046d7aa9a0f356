"""daprd's output-binding endpoint (`POST`/`PUT /v1.0/bindings/{name}`) as far as the embedded sidecar has
one: it declares no output binding, so every call answers daprd's error for a binding that is not one
(an input-only `bindings.cron` included), after daprd's own body checks."""

from __future__ import annotations

import json
from typing import NoReturn

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar.bindings.registry import InputBindings
from sidecar.errors import error

__all__ = ["routes"]


def routes(bindings: InputBindings) -> list[BaseRoute]:
    async def invoke(request: Request) -> Response:
        name = str(request.path_params["name"])
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else _malformed("EOF")
        except (ValueError, UnicodeDecodeError) as exc:
            _malformed(str(exc))
        if body is None:
            body = {}  # Go decodes `null` into the request struct as a no-op
        operation = body.get("operation", "") if isinstance(body, dict) else None
        if not isinstance(operation, str):  # Go's decoder refuses a request of another shape
            _malformed("json: cannot unmarshal into Go value of type http.OutputBindingRequest")
        raise bindings.output_error(name, operation)

    return [Route("/v1.0/bindings/{name}", invoke, methods=["POST", "PUT"])]


def _malformed(reason: str) -> NoReturn:
    raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {reason}")
