"""The sidecar's HTTP API as one Starlette app: every feature's routes, one error mapping, token check."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar.bindings import routes as binding_routes
from sidecar.configuration import routes as configuration_routes
from sidecar.errors import DaprError
from sidecar.http import (
    actor_routes,
    invoke_routes,
    publish_routes,
    secrets_routes,
    state_routes,
    system_routes,
)
from sidecar.http.auth import TokenMiddleware
from sidecar.http.hot_routes import HotRoutes
from sidecar.jobs import routes as job_routes
from sidecar.lock import routes as lock_routes

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from sidecar.server import Sidecar

__all__ = ["InFlight", "build_http_app"]

log = logging.getLogger("sidecar.http")


async def _dapr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DaprError)
    return JSONResponse(exc.body(), status_code=exc.http_status)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"errorCode": "ERR_NOT_FOUND", "message": f"the route {request.url.path} is not supported"},
        status_code=404,
    )


def build_http_app(sidecar: Sidecar) -> InFlight:
    all_routes: list[BaseRoute] = []
    all_routes += system_routes.routes(sidecar)
    all_routes += actor_routes.routes(
        sidecar.actor_host, sidecar.actor_state, sidecar.reminders, sidecar.timers
    )
    all_routes += state_routes.routes(sidecar.components, sidecar.config.app_id, sidecar.transactions)
    all_routes += secrets_routes.routes(
        sidecar.components, sidecar.config.app_id, sidecar.dapr_config.secret_scopes
    )
    all_routes += publish_routes.routes(sidecar.pubsub)
    all_routes += binding_routes.routes(sidecar.components.output_bindings)
    all_routes += job_routes.routes(sidecar.jobs, sidecar.config.app_id)
    all_routes += lock_routes.routes(sidecar.locks)
    all_routes += configuration_routes.routes(sidecar.configuration)
    token = sidecar.config.api_token
    all_routes += invoke_routes.routes(sidecar.invoker, api_token=token)
    all_routes.append(invoke_routes.fallback_route(sidecar.invoker, api_token=token))  # must stay last
    app = Starlette(
        routes=all_routes,
        exception_handlers={DaprError: _dapr_error, 404: _not_found},
    )
    hot = [r for r in all_routes if isinstance(r, Route) and r.path in _HOT]
    if len(hot) != len(_HOT):  # a route renamed: fail at start-up, not by quietly losing the fast path
        raise RuntimeError(f"hot routes not found: {sorted(_HOT - {r.path for r in hot})}")
    return InFlight(TokenMiddleware(HotRoutes(app, hot), sidecar.config.api_token))


class InFlight:
    """Counts API requests being served (the dev clock's advance waits until none is), its own aside."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/v1.0-dev/"):
            await self.app(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


# What every actor call and list write uses (actor method, actor state save, publish, the feed's state
# calls), with the bulk publish routes that precede single publish in the route list.
_HOT = frozenset(
    {
        "/v1.0/actors/{actor_type}/{actor_id}/method/{method:path}",
        "/v1.0/actors/{actor_type}/{actor_id}/state",
        "/v1.0/state/{store}/bulk",
        "/v1.0/state/{store}/transaction",
        "/v1.0-alpha1/publish/bulk/{rest:path}",
        "/v1.0/publish/bulk/{rest:path}",
        "/v1.0/publish/{rest:path}",
    }
)
