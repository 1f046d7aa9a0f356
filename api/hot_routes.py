"""A todo client's three busiest requests, in their plain forms, served as plain ASGI in front of FastAPI's
router: `GET .../items` (a page), `POST .../items` (add) and `POST .../items/{id}:complete`.

They are nearly all of a todo client's traffic (the whole S1 mix), and FastAPI spent more CPU solving
their dependencies and parameters per request (about 30% of a read, profiled: FastAPI 0.165 inspects the
endpoint's signature again on every call) than the routes' own work. Here the same steps run directly:
the bearer token, the per-user rate limit, the body or query, the actor call, the response, and any error
goes to the app's own problem handlers. Only plainly valid requests are taken (a page query of `limit`,
`cursor`, `status`; a JSON body that validates; no `If-Match` or `Idempotency-Key` header); anything
else, invalid input included, goes on to FastAPI, which answers it exactly as before (the request body,
if read, is handed on). The routes stay in the OpenAPI document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.body_limit import replay
from api.deps import ID_PATTERN, Resources
from api.page_relay import relay_page
from api.problems import RateLimited
from api.routes.todos import item_response
from api.schemas import ItemCreate, command, set_fields
from todo_actors.commands import AddTodo, CompleteTodo
from todo_actors.interface import QueryTodos

__all__ = ["HotRoutes", "plain_query"]


class _Route(NamedTuple):
    """Set as `scope["route"]`: the template FastAPI matches, for span names and metric labels."""

    path: str


_ITEMS = _Route("/v1/lists/{list_id}/items")
_COMPLETE = _Route("/v1/lists/{list_id}/items/{item_id}:complete")
_PREFIX = "/v1/lists/"
_ITEMS_SUFFIX, _COMPLETE_SUFFIX = "/items", ":complete"
# Headers that send a request to FastAPI: they need its parsing (and the idempotency dependency).
_ROUTED_HEADERS = frozenset({b"if-match", b"idempotency-key"})
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


class HotRoutes:
    """Serves the plain forms of the three routes; passes every other request on to `app`."""

    def __init__(self, app: ASGIApp, resources: Callable[[Scope], Resources | None]) -> None:
        self.app = app
        self._resources = resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_PREFIX):
            resources = self._resources(scope)
            if resources is not None:
                method, rest = scope["method"], scope["path"][len(_PREFIX) :]
                if method == "GET" and rest.endswith(_ITEMS_SUFFIX):
                    if await self._page(resources, rest[: -len(_ITEMS_SUFFIX)], scope, receive, send):
                        return
                elif method == "POST" and not scope["query_string"] and not _routed_headers(scope):
                    if rest.endswith(_ITEMS_SUFFIX):
                        list_id = rest[: -len(_ITEMS_SUFFIX)]
                        unserved = await self._add(resources, list_id, scope, receive, send)
                        if unserved is None:
                            return
                        receive = unserved  # the body, read, goes on to FastAPI
                    elif rest.endswith(_COMPLETE_SUFFIX):
                        list_id, _, item = rest[: -len(_COMPLETE_SUFFIX)].partition(_ITEMS_SUFFIX + "/")
                        if await self._complete(resources, list_id, item, scope, receive, send):
                            return
        await self.app(scope, receive, send)

    async def _page(
        self, resources: Resources, list_id: str, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        query = plain_query(scope["query_string"]) if _ID.fullmatch(list_id) else None
        if query is None:
            return False
        scope["route"], scope["path_params"] = _ITEMS, {"list_id": list_id}

        async def call(user: str) -> Response:
            return await relay_page(resources.list_actor(list_id), QueryTodos(caller=user, **query))

        await self._serve(resources, call, scope, receive, send)
        return True

    async def _add(
        self, resources: Resources, list_id: str, scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """Serve an add whose body validates; else the `receive` that hands the body read on to FastAPI."""
        body = await _body(receive)
        replay_body = replay([{"type": "http.request", "body": body, "more_body": False}], receive)
        if not _ID.fullmatch(list_id) or _header(scope, b"content-type") != "application/json":
            return replay_body
        try:
            fields = ItemCreate.model_validate(json.loads(body))
        except (ValueError, ValidationError):  # FastAPI words these errors
            return replay_body
        scope["route"], scope["path_params"] = _ITEMS, {"list_id": list_id}

        async def call(user: str) -> Response:
            actor = resources.list_actor(list_id)
            result = (await actor.add_todo(command(AddTodo, caller=user, **set_fields(fields)))).unwrap()
            return item_response(list_id, result, 201)

        await self._serve(resources, call, scope, replay_body, send)
        return None

    async def _complete(
        self, resources: Resources, list_id: str, item_id: str, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        if not (_ID.fullmatch(list_id) and _ID.fullmatch(item_id)):
            return False
        scope["route"], scope["path_params"] = _COMPLETE, {"list_id": list_id, "item_id": item_id}

        async def call(user: str) -> Response:
            cmd = CompleteTodo(caller=user, expected_version=None, id=item_id)
            return item_response(list_id, (await resources.list_actor(list_id).complete_todo(cmd)).unwrap())

        await self._serve(resources, call, scope, receive, send)
        return True

    async def _serve(
        self,
        resources: Resources,
        call: Callable[[str], Any],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """The route's common steps: the caller, the rate limit, the call; errors as problems."""
        try:
            user = resources.verifier.user_of(_header(scope, b"authorization"))
            wait = resources.limiter.take(user)
            if wait:
                raise RateLimited(wait)
            response: Response = await call(user)
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


def _routed_headers(scope: Scope) -> bool:
    return any(key in _ROUTED_HEADERS for key, _ in scope["headers"])


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # a disconnect: what FastAPI would then see comes from `receive` again
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
