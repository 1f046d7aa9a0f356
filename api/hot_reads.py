"""`GET /v1/lists/{list_id}/items` in its plain forms served as plain ASGI in front of FastAPI's router.

It is most of a todo client's traffic (70% of the S1 mix), and FastAPI spent more CPU solving its
dependencies and query parameters per request (about 30% of a read, profiled: FastAPI 0.165 inspects
the endpoint's signature again on every call) than the route's own work. Here the same steps run
directly: the bearer token, the per-user rate limit, the query, the page relayed from the actor, and any
error goes to the app's own problem handlers. Only requests whose parameters are plainly valid are taken
(`limit`, `cursor`, `status`, each at most once); anything else, invalid input included, goes on to
FastAPI, which answers it exactly as before. The route stays in the OpenAPI document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import ID_PATTERN, Resources
from api.page_relay import relay_page
from api.problems import RateLimited
from todo_actors.interface import QueryTodos

__all__ = ["HotReads"]


class _Route(NamedTuple):
    """Set as `scope["route"]`: the template FastAPI matches, for span names and metric labels."""

    path: str


_ROUTE = _Route("/v1/lists/{list_id}/items")
_PREFIX, _SUFFIX = "/v1/lists/", "/items"
_ID = re.compile(ID_PATTERN)
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
_STATUSES = frozenset({"open", "completed"})
_MAX_CURSOR = 2000


def plain_query(query_string: bytes) -> dict[str, Any] | None:
    """`limit`/`cursor`/`status` of a query FastAPI would accept as they are, else None (FastAPI decides)."""
    if not query_string:
        return {}
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    query: dict[str, Any] = {}
    for name, value in pairs:
        if name in query:
            return None
        if name == "limit" and _LIMIT.fullmatch(value) and int(value) <= 500:
            query[name] = int(value)
        elif name == "cursor" and 0 < len(value) <= _MAX_CURSOR:
            query[name] = value
        elif name == "status" and value in _STATUSES:
            query[name] = value
        else:
            return None
    return query


class HotReads:
    """Serves plain `GET .../items` requests; passes every other request on to `app`."""

    def __init__(self, app: ASGIApp, resources: Callable[[Scope], Resources | None]) -> None:
        self.app = app
        self._resources = resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                list_id = path[len(_PREFIX) : -len(_SUFFIX)]
                resources = self._resources(scope)
                if resources is not None and _ID.fullmatch(list_id):
                    query = plain_query(scope["query_string"])
                    if query is not None:
                        await self._serve(resources, list_id, query, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        resources: Resources,
        list_id: str,
        query: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        scope["route"] = _ROUTE  # span names and metric labels
        scope["path_params"] = {"list_id": list_id}
        try:
            user = resources.verifier.user_of(_header(scope, b"authorization"))
            wait = resources.limiter.take(user)
            if wait:
                raise RateLimited(wait)
            response = await relay_page(resources.list_actor(list_id), QueryTodos(caller=user, **query))
        except Exception as exc:
            response = await self._problem(scope, receive, exc)
        await response(scope, receive, send)

    @staticmethod
    async def _problem(scope: Scope, receive: Receive, exc: Exception) -> Response:
        """The response the app's exception handlers give `exc`. An unexpected one is raised again: the
        server error middleware answers it (the handler for `Exception`) and logs it, as for any route."""
        handlers: Mapping[Any, Any] = scope["app"].exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                break
            handler = handlers.get(cls)
            if handler is not None:
                response: Response = await handler(Request(scope, receive), exc)
                return response
        raise exc


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
