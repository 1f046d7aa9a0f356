"""The secrets API of the sidecar's HTTP server (`/v1.0/secrets/...`), with daprd's bodies and error codes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar.components import Components
from sidecar.errors import error
from sidecar.gojson import dumps
from sidecar.secrets import SecretError, SecretStore

__all__ = ["routes"]


def routes(components: Components, app_id: str) -> list[BaseRoute]:
    """`GET /v1.0/secrets/{store}/bulk` and `GET /v1.0/secrets/{store}/{name}` over `components`."""

    def store_of(request: Request) -> tuple[str, SecretStore]:
        name = str(request.path_params["store"])
        if not components.secret_stores:
            raise error("ERR_SECRET_STORES_NOT_CONFIGURED", "secret store is not configured")
        store = components.secret_stores.get(name)
        if store is None:
            raise error("ERR_SECRET_STORE_NOT_FOUND", f"failed finding secret store with key {name}")
        return name, store

    async def get_secret(request: Request) -> Response:
        name, store = store_of(request)
        key = str(request.path_params["key"])
        try:
            data = store.get(key)
        except SecretError as exc:
            raise error(
                "ERR_SECRET_GET", f"failed getting secret with key {key} from secret store {name}: {exc}"
            ) from exc
        return _json(data)

    async def bulk(request: Request) -> Response:
        name, store = store_of(request)
        try:
            data = store.bulk()
        except SecretError as exc:
            raise error("ERR_SECRET_GET", f"failed getting secrets from secret store {name}: {exc}") from exc
        return _json(data)

    return [
        Route("/v1.0/secrets/{store}/bulk", bulk, methods=["GET"]),
        Route("/v1.0/secrets/{store}/{key}", get_secret, methods=["GET"]),
    ]


def _json(value: object) -> Response:
    # Go's json.Encoder: sorted keys, HTML-safe escapes, trailing newline.
    return Response(dumps(value) + b"\n", media_type="application/json")
