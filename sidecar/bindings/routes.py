"""daprd's output-binding endpoint (`POST`/`PUT /v1.0/bindings/{name}`): `data` re-encoded as Go's
json.Marshal does, the binding's answer as the body and its metadata as `metadata.<key>` headers; a name
that is no output binding (an input-only `bindings.cron` included) answers daprd's error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar import gojson
from sidecar.bindings.output import OutputBinding, OutputError, invoke_output
from sidecar.errors import error

__all__ = ["routes"]


def routes(outputs: Mapping[str, OutputBinding]) -> list[BaseRoute]:
    async def invoke(request: Request) -> Response:
        name = str(request.path_params["name"])
        raw = await request.body()
        try:
            body = gojson.loads_float64(raw) if raw.strip() else _malformed("EOF")
        except (ValueError, UnicodeDecodeError) as exc:
            _malformed(str(exc))
        if body is None:
            body = {}  # Go decodes `null` into the request struct as a no-op
        operation = body.get("operation", "") if isinstance(body, dict) else None
        if not isinstance(operation, str):  # Go's decoder refuses a request of another shape
            _malformed("json: cannot unmarshal into Go value of type http.OutputBindingRequest")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            _malformed("json: cannot unmarshal into Go struct field OutputBindingRequest.metadata")
        try:
            response = await invoke_output(outputs, name, operation, gojson.dumps(body.get("data")), metadata)
        except OutputError as exc:
            return JSONResponse(
                exc.body(), status_code=exc.http_status, headers=_headers(exc.binding_metadata)
            )
        if response.data is None:
            return Response(status_code=204, headers=_headers(response.metadata))
        return Response(response.data, status_code=200, headers=_headers(response.metadata))

    return [Route("/v1.0/bindings/{name}", invoke, methods=["POST", "PUT"])]


def _headers(metadata: Mapping[str, str]) -> dict[str, str]:
    return {"metadata." + k: v for k, v in metadata.items()}


def _malformed(reason: str) -> NoReturn:
    raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {reason}")
