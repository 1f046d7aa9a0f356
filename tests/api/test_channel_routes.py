"""`ChannelRoutes` answers actor method calls exactly as the SDK's `DaprActor` route would (compared with a
plain `DaprActor` app on the same actor runtime, over HTTP), and leaves every other request to the app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.channel_routes import ChannelRoutes
from tests.api.conftest import Stack
from tests.harness import ServedApp
from todo_actors.interface import GetList
from todo_actors.serializer import PydanticSerializer


@pytest.fixture(scope="module")
def sdk_channel(stack: Stack) -> Iterator[ServedApp]:
    """The SDK's own actor routes over the actors the stack registered (the runtime is per process)."""
    app = FastAPI()
    DaprActor(app)
    served = ServedApp(app).start()
    yield served
    served.stop()


def _call(base: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
    r = httpx.put(base + path, content=body, headers=dict(headers), timeout=30)
    return r.status_code, r.headers["content-type"], r.content


@pytest.mark.parametrize(
    ("actor_type", "method"),
    [
        ("TodoListActor", "GetList"),  # a reply (here the list's "not found", inside a 200)
        ("TodoListActor", "NoSuchMethod"),  # the runtime raises: 500 with errorCode UNKNOWN
        ("NoSuchActorType", "GetList"),  # DaprInternalError: 500 with its own JSON
    ],
)
def test_actor_method_answers_like_the_sdk_route(
    stack: Stack, sdk_channel: ServedApp, actor_type: str, method: str
) -> None:
    body = PydanticSerializer().serialize(GetList())
    path = f"/actors/{actor_type}/probe-{uuid.uuid4().hex[:8]}/method/{method}"
    fast = _call(stack.channel.url, path, body, {"dapr-api-token": stack.app_token})
    sdk = _call(sdk_channel.url, path, body, {})
    assert fast == sdk
    assert fast[0] == (200 if method == "GetList" and actor_type == "TodoListActor" else 500)


class _Teapot:
    """The app behind `ChannelRoutes` in the routing test: records what reached it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_only_method_calls_and_known_deliveries_are_taken(stack: Stack) -> None:
    received: list[bytes] = []

    async def on_event(body: bytes) -> Mapping[str, Any]:
        received.append(body)
        return {"status": "RETRY"}

    inner = _Teapot()
    served = ServedApp(ChannelRoutes(inner, {"/events/pubsub/t": on_event})).start()
    try:
        with httpx.Client(base_url=served.url, timeout=30) as c:
            delivered = c.post("/events/pubsub/t", content=b'{"id": "1"}')
            assert delivered.status_code == 200 and delivered.json() == {"status": "RETRY"}
            assert received == [b'{"id": "1"}']
            method = c.put("/actors/NoSuchActorType/a/method/M", content=b"{}")
            assert method.status_code == 500 and "errorCode" in method.json()
            passed = [
                ("PUT", "/actors/TodoListActor/a/method/remind/due:1"),
                ("PUT", "/actors/TodoListActor/a/method/timer/t"),
                ("DELETE", "/actors/TodoListActor/a"),
                ("PUT", "/actors/TodoListActor//method/M"),
                ("GET", "/actors/TodoListActor/a/method/M"),
                ("POST", "/events/pubsub/other"),
                ("GET", "/dapr/config"),
            ]
            for verb, path in passed:
                assert c.request(verb, path).status_code == 418, path
        assert inner.seen == passed
    finally:
        served.stop()
