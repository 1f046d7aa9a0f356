"""The sidecar's HTTP API as one Starlette app: every feature's routes, one error mapping, token check."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from sidecar.errors import DaprError
from sidecar.http import actor_routes, publish_routes, secrets_routes, state_routes, system_routes
from sidecar.http.auth import TokenMiddleware

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from sidecar.server import Sidecar

__all__ = ["build_http_app"]

log = logging.getLogger("sidecar.http")


async def _dapr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DaprError)
    return JSONResponse(exc.body(), status_code=exc.http_status)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"errorCode": "ERR_NOT_FOUND", "message": f"the route {request.url.path} is not supported"},
        status_code=404,
    )


def build_http_app(sidecar: Sidecar) -> ASGIApp:
    all_routes: list[BaseRoute] = []
    all_routes += system_routes.routes(sidecar)
    all_routes += actor_routes.routes(
        sidecar.actor_host, sidecar.actor_state, sidecar.reminders, sidecar.timers
    )
    all_routes += state_routes.routes(sidecar.components, sidecar.config.app_id)
    all_routes += secrets_routes.routes(sidecar.components, sidecar.config.app_id)
    all_routes += publish_routes.routes(sidecar.pubsub)
    app = Starlette(
        routes=all_routes,
        exception_handlers={DaprError: _dapr_error, 404: _not_found},
    )
    return TokenMiddleware(app, sidecar.config.api_token)
