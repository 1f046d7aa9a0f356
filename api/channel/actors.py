"""The app channel's actor routes: daprd's calls into the SDK's actor runtime through its public
`ActorRuntime` API (dispatch, fire_reminder, fire_timer, deactivate, get_actor_config), answered as the
SDK's own routes (`dapr.ext.fastapi.DaprActor`) answer them, so daprd and the embedded sidecar see no
difference."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from dapr.actor import ActorRuntime
from dapr.clients.exceptions import ERROR_CODE_UNKNOWN, DaprInternalError
from dapr.serializers import DefaultJSONSerializer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from api.middleware.body_limit import read_body
from api.plain_endpoint import raw_route

__all__ = ["actor_routes"]

log = logging.getLogger("api.channel")

# What the SDK's actor routes send a method's (already serialized) result as.
_RESULT_TYPE = "application/json; utf-8"
_REENTRANCY_HEADER = b"dapr-reentrancy-id"
_RESULT_HEADER = (b"content-type", _RESULT_TYPE.encode())
_ERROR_HEADER = (b"content-type", b"application/json")
_BASE = "/actors/{actor_type}/{actor_id}"

Call = Callable[[Request], Awaitable[Response]]


def _runtime_errors(call: Call) -> Call:
    """The SDK routes' error answers: a 500 whose body names the error (`_error_body`)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await call(request)
        except Exception as exc:
            return Response(_error_body(exc, request.url.path), 500, media_type="application/json")

    return endpoint


def _error_body(exc: Exception, path: str) -> bytes:
    """What the SDK's actor routes answer an error with: a `DaprInternalError`'s own JSON, else its repr
    with errorCode UNKNOWN (rendered as Starlette's `JSONResponse` renders)."""
    if isinstance(exc, DaprInternalError):
        content = exc.as_json_safe_dict()  # type: ignore[no-untyped-call]
    else:
        log.debug("actor call %s failed: %r", path, exc)
        content = {"message": repr(exc), "errorCode": ERROR_CODE_UNKNOWN}
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class _MethodEndpoint:
    """`PUT /actors/{type}/{id}/method/{method}`: every actor call of the app passes here, so it answers in
    two ASGI messages, without request and response objects; errors as `_runtime_errors` answers them."""

    def __init__(self) -> None:
        self.route = Route(_BASE + "/method/{method}", self, methods=["PUT"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # spans name the matched route
        p = scope["path_params"]
        reentrancy: str | None = None
        for name, value in scope["headers"]:
            if name == _REENTRANCY_HEADER:
                reentrancy = value.decode("latin-1")
        status, header = 200, _RESULT_HEADER
        try:
            body = await read_body(receive)
            result = await ActorRuntime.dispatch(
                p["actor_type"], p["actor_id"], p["method"], body, reentrancy
            )
        except Exception as exc:
            status, header, result = 500, _ERROR_HEADER, _error_body(exc, scope["path"])
        headers = [header, (b"content-length", b"%d" % len(result))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": result})


async def _reminder(request: Request) -> Response:
    p = request.path_params
    await ActorRuntime.fire_reminder(p["actor_type"], p["actor_id"], p["name"], await request.body())
    return JSONResponse({"message": f"called reminder. actor: {p['actor_type']}.{p['actor_id']}"})


async def _timer(request: Request) -> Response:
    p = request.path_params
    await ActorRuntime.fire_timer(p["actor_type"], p["actor_id"], p["name"], await request.body())
    return JSONResponse({"message": f"called timer. actor: {p['actor_type']}.{p['actor_id']}"})


async def _deactivate(request: Request) -> Response:
    p = request.path_params
    await ActorRuntime.deactivate(p["actor_type"], p["actor_id"])
    return JSONResponse({"message": f"deactivated actor: {p['actor_type']}.{p['actor_id']}"})


def actor_routes() -> list[BaseRoute]:
    """The routes daprd calls for the actors registered with `ActorRuntime`, the hottest first."""
    serializer = DefaultJSONSerializer()

    async def config(request: Request) -> Response:
        return Response(serializer.serialize(ActorRuntime.get_actor_config()), media_type=_RESULT_TYPE)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [
        _MethodEndpoint().route,
        raw_route(_BASE + "/method/remind/{name}", ["PUT"], _runtime_errors(_reminder)),
        raw_route(_BASE + "/method/timer/{name}", ["PUT"], _runtime_errors(_timer)),
        raw_route(_BASE, ["DELETE"], _runtime_errors(_deactivate)),
        raw_route("/dapr/config", ["GET"], config),
        raw_route("/healthz", ["GET"], healthz),
    ]
