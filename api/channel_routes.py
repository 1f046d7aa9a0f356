"""The app channel's two hot routes as plain ASGI, in front of FastAPI: actor method calls
(`PUT /actors/{type}/{id}/method/{name}`) and pub/sub deliveries (`POST` to a subscription's route).

Every public request makes at least one actor call and every write one delivery. Through FastAPI each
paid for routing, exception wrappers and dependency solving (about a third of the channel's CPU per call,
profiled); here they go straight to the SDK's `ActorRuntime.dispatch` and to the delivery handler, with
the responses the SDK's `DaprActor` routes give. Reminders, timers, deactivation, `/dapr/config` and
`/dapr/subscribe` stay on FastAPI (`DaprActor`, `DaprApp`), which also keep serving these paths if this
layer is not installed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from dapr.actor import ActorRuntime
from dapr.clients.exceptions import ERROR_CODE_UNKNOWN, DaprInternalError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ChannelRoutes", "DeliveryHandler"]

log = logging.getLogger("api.channel")

DeliveryHandler = Callable[[bytes], Awaitable[Mapping[str, Any]]]
"""Takes a delivery's body (the CloudEvent), returns the reply: `{"status": "SUCCESS" | "RETRY" | "DROP"}`."""

# What the SDK's `DaprActor` answers with (dapr/ext/fastapi/actor.py).
_ACTOR_CONTENT_TYPE = b"application/json; utf-8"
_JSON = b"application/json"
_REENTRANCY_HEADER = b"dapr-reentrancy-id"


class _Route(NamedTuple):
    """Set as `scope["route"]`: the template FastAPI would have matched, for span names and metrics."""

    path: str


_ACTOR_METHOD = _Route("/actors/{actor_type_name}/{actor_id}/method/{method_name}")


class ChannelRoutes:
    """Serves actor method calls and the deliveries of `deliveries` (route path -> handler); passes any
    other request on to `app`."""

    def __init__(self, app: ASGIApp, deliveries: Mapping[str, DeliveryHandler]) -> None:
        self.app = app
        self._deliveries = dict(deliveries)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "PUT" and path.startswith("/actors/"):
                parts = path.split("/")
                # "", "actors", type, id, "method", name: reminders and timers have one more segment.
                if len(parts) == 6 and parts[4] == "method" and all(parts[2:6]):
                    scope["route"] = _ACTOR_METHOD
                    await self._actor_method(parts[2], parts[3], parts[5], scope, receive, send)
                    return
            elif method == "POST":
                handler = self._deliveries.get(path)
                if handler is not None:
                    scope["route"] = _Route(path)
                    reply = await handler(await _body(receive))
                    await _respond(send, 200, json.dumps(reply).encode(), _JSON)
                    return
        await self.app(scope, receive, send)

    async def _actor_method(
        self, actor_type: str, actor_id: str, method: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        reentrancy_id = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == _REENTRANCY_HEADER), None
        )
        try:
            body = await _body(receive)
            result = await ActorRuntime.dispatch(actor_type, actor_id, method, body, reentrancy_id)
        except DaprInternalError as exc:
            await _respond(send, 500, _json(exc.as_json_safe_dict()), _JSON)  # type: ignore[no-untyped-call]
            return
        except Exception as exc:
            await _respond(send, 500, _json({"message": repr(exc), "errorCode": ERROR_CODE_UNKNOWN}), _JSON)
            return
        if isinstance(result, bytes):
            await _respond(send, 200, result, _ACTOR_CONTENT_TYPE)
        else:  # the SDK serializes every result, so this is a method returning nothing useful
            await _respond(send, 200, _json(result), _JSON)


def _json(value: Any) -> bytes:
    # Starlette's JSONResponse encoding, as the SDK's routes send it.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
