"""The sidecar's HTTP API: one route table (every feature's routes, the busiest first), one error mapping,
the token check. A plain `Router` serves it: every actor call and write passes several of these routes,
and an application's extra layers (error middleware, per-route exception wrappers) cost about as much
again as a small endpoint."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, Router

from sidecar.apilog import HttpApiLog
from sidecar.bindings import routes as binding_routes
from sidecar.configuration import routes as configuration_routes
from sidecar.conversation import routes as conversation_routes
from sidecar.crypto import routes as crypto_routes
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
from sidecar.jobs import routes as job_routes
from sidecar.lock import routes as lock_routes
from sidecar.workflows import routes as workflow_routes

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from sidecar.server import Sidecar

__all__ = ["InFlight", "build_http_app"]

log = logging.getLogger("sidecar.http")


def _error_response(exc: Exception, path: str) -> Response | None:
    """The HTTP API's one error mapping: daprd's JSON error for a `DaprError`, a JSON 404 for a route
    this sidecar does not serve; None for anything else (the server answers 500 and logs it)."""
    if isinstance(exc, DaprError):
        return JSONResponse(exc.body(), status_code=exc.http_status)
    if isinstance(exc, HTTPException) and exc.status_code == 404:
        return _not_found(path)
    return None


def _not_found(path: str) -> Response:
    return JSONResponse(
        {"errorCode": "ERR_NOT_FOUND", "message": f"the route {path} is not supported"}, status_code=404
    )


async def _no_route(scope: Scope, receive: Receive, send: Send) -> None:
    await _not_found(scope["path"])(scope, receive, send)


def _raw(endpoint: Callable[..., Any]) -> ASGIApp:
    """A `request -> response` endpoint as plain ASGI: its errors go to `DaprErrors`, the one mapping,
    not through a per-route exception wrapper."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response: Response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)

    return app


class DaprErrors:
    """Answers an error a route raised with `_error_response`, unless the route had begun its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, sender)
        except Exception as exc:
            response = None if started else _error_response(exc, scope["path"])
            if response is None:
                raise
            await response(scope, receive, send)


def build_http_app(sidecar: Sidecar) -> InFlight:
    all_routes: list[BaseRoute] = []
    all_routes += system_routes.routes(sidecar)
    all_routes += actor_routes.routes(
        sidecar.actor_host, sidecar.actor_state, sidecar.reminders, sidecar.timers, sidecar.resiliency
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
    all_routes += conversation_routes.routes(sidecar.conversation)
    all_routes += crypto_routes.routes(sidecar.crypto)
    all_routes += workflow_routes.routes(sidecar.workflow_api)
    token = sidecar.config.api_token
    all_routes += invoke_routes.routes(sidecar.invoker, api_token=token)
    all_routes.append(invoke_routes.fallback_route(sidecar.invoker, api_token=token))  # must stay last
    hot = [r for r in all_routes if isinstance(r, Route) and r.path in _HOT]
    if len(hot) != len(_HOT):  # a route renamed: fail at start-up, not by quietly matching it last
        raise RuntimeError(f"hot routes not found: {sorted(_HOT - {r.path for r in hot})}")
    for route in all_routes:
        # Only request -> response functions: an ASGI endpoint (the invocation routes) is its own app.
        if isinstance(route, Route) and (
            inspect.isfunction(route.endpoint) or inspect.ismethod(route.endpoint)
        ):
            route.app = _raw(route.endpoint)
    # The router tries routes in order: the busiest first (in their own order), so they match at once.
    router = Router(routes=hot + [r for r in all_routes if r not in hot], default=_no_route)
    hosts = sidecar.membership  # other sidecars on this host: actor forwarding and their internal calls
    local: ASGIApp = DaprErrors(router if hosts is None else hosts.forward_actors(router, sidecar.actor_host))
    if sidecar.api_logging.enabled:
        local = HttpApiLog(local, sidecar.api_logging)
    api = TokenMiddleware(local, sidecar.config.api_token)
    return InFlight(api if hosts is None else hosts.http_app(api, local))


class InFlight:
    """Counts API requests being served (the dev clock's advance waits until none is), its own aside."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # (a peer's look at the host's dev clock is no work of this sidecar's either)
        if scope["type"] != "http" or scope["path"].startswith(("/v1.0-dev/", "/v1.0-internal/clock")):
            await self.app(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


# What every actor call and list write uses (actor method, actor state save, publish, the feed's state
# calls), with the bulk publish routes that precede single publish in the route list. No route before
# them in the list matches what they match, so trying them first changes no answer.
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
