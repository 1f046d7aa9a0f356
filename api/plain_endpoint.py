"""Routes served as plain Starlette endpoints inside the app's one router, for the busiest requests, where
FastAPI's per-request dependency and parameter solving would cost more than the route's own work.

Such a route is the only implementation of its endpoint. It reads and validates its input here, with
FastAPI's error semantics (a body that is not JSON is a 422, one that cannot be parsed at all a 400),
and its OpenAPI operation is built from the same pydantic models that validate the input.
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

__all__ = [
    "Operation",
    "PlainEndpoint",
    "RawEndpoint",
    "document_plain_routes",
    "json_body",
    "plain_route",
    "query_values",
    "raw_route",
    "validated",
]

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]

_MISSING_BODY = [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]


async def json_body(request: Request) -> Any:
    """The request body as FastAPI hands it to a body model: parsed JSON for a JSON content type, the raw
    bytes otherwise (they fail validation: 422). Malformed JSON is a 422 `json_invalid`; a body JSON
    cannot parse at all (nested past the parser's recursion limit) a 400, as on FastAPI's routes."""
    body = await request.body()
    if not body:
        raise RequestValidationError(_MISSING_BODY)
    content_type = request.headers.get("content-type")
    if content_type is None or not (content_type == "application/json" or _is_json(content_type)):
        return body
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from exc
    except Exception as exc:  # RecursionError, a body that is not UTF-8 ...
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def _is_json(content_type: str) -> bool:
    """`application/json` or `application/*+json`, parameters allowed (parsed as FastAPI parses them)."""
    message = email.message.Message()
    message["content-type"] = content_type
    main, subtype = message.get_content_maintype(), message.get_content_subtype()
    return main == "application" and (subtype == "json" or subtype.endswith("+json"))


def query_values(request: Request) -> dict[str, str]:
    """The query's parameters, the last value of a repeated one (as FastAPI reads a scalar parameter)."""
    query: bytes = request.scope["query_string"]
    return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}


def validated(where: str, model: type[M], data: Any, errors: list[dict[str, Any]]) -> M | None:
    """`data` as `model`, or None with its errors added to `errors`, located as FastAPI locates them
    (`("query", "limit")`): raise them together once every part of the request was checked."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors.extend({**e, "loc": (where, *e["loc"])} for e in exc.errors(include_url=False))
        return None


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says about a plain endpoint; the models are the ones that validate."""

    name: str
    summary: str
    tags: tuple[str, ...]
    path: type[BaseModel]
    response: type[BaseModel]
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    headers: tuple[dict[str, Any], ...] = ()
    errors: Mapping[int | str, dict[str, Any]] = field(default_factory=dict)
    """`problem_responses(...)` of the error statuses it answers with."""

    def document(self, path: str, method: str, components: dict[str, Any]) -> dict[str, Any]:
        """The operation object; the schemas it refers to are added to `components`."""
        parameters = _parameters("path", self.path, components)
        if self.query is not None:
            parameters += _parameters("query", self.query, components)
        parameters += [dict(header) for header in self.headers]
        operation: dict[str, Any] = {
            "tags": list(self.tags),
            "summary": self.summary,
            "operationId": re.sub(r"\W", "_", f"{self.name}{path}") + f"_{method.lower()}",
            "security": [{"HTTPBearer": []}],
            "parameters": parameters,
            "responses": {
                str(self.status): {
                    "description": "Successful Response",
                    "content": {
                        "application/json": {"schema": _ref(self.response, components, "serialization")}
                    },
                },
                **{str(code): doc for code, doc in self.errors.items()},
            },
        }
        if self.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(self.body, components, "validation")}},
            }
        return operation


class RawEndpoint:
    """A handler as a raw ASGI endpoint: no per-request signature inspection, dependency solving or
    exception wrapper. Exceptions go on to the app's exception handlers, if it has any."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.route: Route | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastAPI names the matched route in the scope only for its own routes; metrics and spans read it.
        scope["route"] = self.route
        response = await self._handler(Request(scope, receive))
        await response(scope, receive, send)


class PlainEndpoint(RawEndpoint):
    """A public route's raw endpoint, with the OpenAPI operation that documents it."""

    def __init__(self, handler: Handler, method: str, operation: Operation) -> None:
        super().__init__(handler)
        self.operations = {method: operation}


def raw_route(path: str, methods: list[str], handler: Handler) -> Route:
    """A route served by `handler` as a raw ASGI endpoint."""
    endpoint = RawEndpoint(handler)
    endpoint.route = Route(path, endpoint, methods=methods)
    return endpoint.route


def plain_route(path: str, method: str, handler: Handler, operation: Operation) -> Route:
    """A route of the public app's router served by `handler`, documented by `operation`."""
    endpoint = PlainEndpoint(handler, method, operation)
    endpoint.route = Route(path, endpoint, methods=[method], name=operation.name)
    return endpoint.route


def document_plain_routes(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    """Add the operations of the plain endpoints among `routes` to an OpenAPI document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for route in iter_route_contexts(list(routes)):  # FastAPI's view of included routers' routes
        if isinstance(route.endpoint, PlainEndpoint) and route.path is not None:
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # `{id:segment}` -> `{id}`, as FastAPI
            for method, operation in route.endpoint.operations.items():
                path_item = schema.setdefault("paths", {}).setdefault(path, {})
                path_item[method.lower()] = operation.document(path, method, components)


def _ref(model: type[BaseModel], components: dict[str, Any], mode: Any) -> dict[str, str]:
    model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, definition in model_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, model_schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _parameters(where: str, model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in model_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    required = set(model_schema.get("required", ()))
    parameters = []
    for name, prop in model_schema["properties"].items():
        parameter = {"name": name, "in": where, "required": name in required, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters
