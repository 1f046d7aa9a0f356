"""The secrets API of the sidecar's HTTP server (`/v1.0/secrets/...`), with daprd's bodies and error codes."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar.components import Components
from sidecar.daprconfig import SecretScope
from sidecar.gojson import dumps
from sidecar.secrets.api import SecretsAPI

__all__ = ["routes"]


def routes(
    components: Components, app_id: str, scopes: Mapping[str, SecretScope] | None = None
) -> list[BaseRoute]:
    """`GET /v1.0/secrets/{store}/bulk` and `GET /v1.0/secrets/{store}/{name}` over `components`, within the
    Configuration's secret `scopes`."""
    api = SecretsAPI(components.secret_stores, scopes or {})

    async def get_secret(request: Request) -> Response:
        return _json(api.get(str(request.path_params["store"]), str(request.path_params["key"])))

    async def bulk(request: Request) -> Response:
        return _json(api.bulk(str(request.path_params["store"])))

    return [
        Route("/v1.0/secrets/{store}/bulk", bulk, methods=["GET"]),
        Route("/v1.0/secrets/{store}/{key}", get_secret, methods=["GET"]),
    ]


def _json(value: object) -> Response:
    # Go's json.Encoder: sorted keys, HTML-safe escapes, trailing newline.
    return Response(dumps(value) + b"\n", media_type="application/json")
