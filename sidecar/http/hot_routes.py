"""The HTTP API's busiest routes (actor calls and state saves, publish, state bulk reads and transactions)
served straight from their endpoints, in front of Starlette's router.

Every actor call and every write goes through several of them, and Starlette's layers around an endpoint
(error middleware, exception wrappers, router scan over every route, `request_response`) cost about as
much again as a small endpoint (profiled: ~5% of the sidecar's loop under load). Only full matches of
these routes are taken, with the same endpoints and `DaprError` answers; any other request, or a method a
route does not allow, goes on to the app unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sidecar.errors import DaprError

__all__ = ["HotRoutes"]

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    """Serves full matches of `routes` (in their order) by calling their endpoints; else `app`.

    `routes` must keep the relative order they have in the app's route list, and no route ahead of
    them in that list may fully match a request they match (the app's router would have picked it)."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self._routes = [(route, _endpoint(route)) for route in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route, endpoint in self._routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    request = Request(scope, receive)
                    try:
                        response = await endpoint(request)
                    except DaprError as exc:
                        response = JSONResponse(exc.body(), status_code=exc.http_status)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _endpoint(route: Route) -> Endpoint:
    endpoint = route.endpoint
    if not callable(endpoint) or isinstance(endpoint, type):
        raise TypeError(f"route {route.path} has no request -> response endpoint")
    return endpoint
