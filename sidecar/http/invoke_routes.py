"""Service invocation over the HTTP API: `/v1.0/invoke/{app-id}/method/{method}` with any verb, and any
other path carrying a `dapr-app-id` header (or `Authorization: Basic` of `dapr-app-id:<id>`), daprd's
fallback route. The app's status, headers and body come back as the app sent them."""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from sidecar.errors import error
from sidecar.invoke import InvokeFailure, Invoker, InvokeRequest
from sidecar.invoke.headers import clean_path, http_headers_to_forward

__all__ = ["fallback_route", "routes"]

_APP_ID_HEADER = "dapr-app-id"
_INVOKE_PREFIX = "/v1.0/invoke/"


def routes(invoker: Invoker, *, api_token: str | None) -> list[BaseRoute]:
    """The `/v1.0/invoke/...` route (every method)."""
    return [Route(_INVOKE_PREFIX + "{rest:path}", _AnyVerb(_endpoint(invoker, api_token)))]


def fallback_route(invoker: Invoker, *, api_token: str | None) -> BaseRoute:
    """daprd's fallback: last in the route list, so every path no other route serves (or serves with
    another method) is an invocation when it names an app id; else the sidecar's 404."""
    return Route("/{path:path}", _AnyVerb(_endpoint(invoker, api_token, fallback=True)))


class _AnyVerb:
    """An ASGI endpoint, so that Starlette's route takes every verb (a function endpoint defaults to GET)."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def _endpoint(
    invoker: Invoker, api_token: str | None, *, fallback: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    async def invoke(request: Request) -> Response:
        target, method = find_target(request.url.path, request.headers)
        if not target:
            if fallback and not request.url.path.startswith(_INVOKE_PREFIX):
                return JSONResponse(
                    {
                        "errorCode": "ERR_NOT_FOUND",
                        "message": f"the route {request.url.path} is not supported",
                    },
                    status_code=404,
                )
            raise error(
                "ERR_DIRECT_INVOKE",
                "failed getting app id either from the URL path or the header dapr-app-id",
                http_status=404,
                grpc_status=grpc.StatusCode.NOT_FOUND,
            )
        # daprd drops the app-id header, and the API token once its middleware has checked it.
        dropped = {_APP_ID_HEADER} | ({"dapr-api-token"} if api_token else set())
        headers = [(k, v) for k, v in request.headers.items() if k not in dropped]
        call = InvokeRequest(
            method=method,
            verb=request.method.upper(),
            query=request.url.query,
            headers=headers,
            body=await request.body(),
            content_type=request.headers.get("content-type", ""),
        )
        try:
            reply = await invoker.invoke(target, call)
        except InvokeFailure as exc:
            raise error(
                "ERR_DIRECT_INVOKE",
                f"failed to invoke, id: {target}, err: {exc.message}",
                http_status=403 if exc.code is grpc.StatusCode.PERMISSION_DENIED else None,
            ) from None
        out = Response(reply.body, status_code=reply.status)
        for key, value in http_headers_to_forward(reply.headers.items()):
            out.headers.append(key, value)
        if reply.content_type:
            out.headers["content-type"] = reply.content_type
        return out

    return invoke


def find_target(path: str, headers: Mapping[str, str]) -> tuple[str, str]:
    """daprd's `findTargetIDAndMethod`: the `dapr-app-id` header (the path is the method), Basic auth with
    user `dapr-app-id`, else `/v1.0/invoke/<app-id>/method/<method>`. ("", "") when none names an app."""
    app_id = headers.get(_APP_ID_HEADER, "")
    if app_id:
        return app_id, clean_path(path).lstrip("/")
    auth = headers.get("authorization", "")
    if auth.startswith("Basic "):
        try:
            user, sep, password = base64.b64decode(auth[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep = "", ""
        if sep and ":" not in password and user.lower() == _APP_ID_HEADER:
            return password, clean_path(path).lstrip("/")
    if not path.startswith(_INVOKE_PREFIX):
        return "", ""
    rest = path[len(_INVOKE_PREFIX) :].lstrip("/")
    index = rest.find("/method/")
    if index <= 0:
        return "", ""
    target = urllib.parse.unquote_plus(rest[:index]) or rest[:index]
    return target, clean_path(rest[index + len("/method/") :])
