"""The app channel is one Starlette router over the SDK's public `ActorRuntime` API: its actor routes
answer as daprd expects of an app (and as the SDK's own routes answer), beside config, subscriptions and
deliveries."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.conftest import Stack
from todo_actors.interface import GetList
from todo_actors.serializer import PydanticSerializer


@pytest.fixture
def channel(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.channel.url, headers={"dapr-api-token": stack.app_token}, timeout=30)


@pytest.mark.parametrize(
    ("actor_type", "method", "status"),
    [
        ("TodoListActor", "GetList", 200),  # a reply (here the list's "not found", inside a 200)
        ("TodoListActor", "NoSuchMethod", 500),  # the runtime raises: errorCode UNKNOWN
        ("NoSuchActorType", "GetList", 500),  # DaprInternalError: its own JSON
    ],
)
def test_actor_methods_answer_as_the_sdk_routes(
    channel: httpx.Client, actor_type: str, method: str, status: int
) -> None:
    body = PydanticSerializer().serialize(GetList())
    r = channel.put(f"/actors/{actor_type}/probe-{uuid.uuid4().hex[:8]}/method/{method}", content=body)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.headers["content-type"] == "application/json; utf-8"
        assert r.json()["value"] is None and r.json()["error"] is not None
    else:
        assert r.json()["errorCode"] if actor_type == "TodoListActor" else r.json()["message"]


def test_reminders_timers_and_deactivation_reach_the_runtime(channel: httpx.Client) -> None:
    actor = f"/actors/TodoListActor/probe-{uuid.uuid4().hex[:8]}"
    assert channel.put(f"{actor}/method/GetList", content=b"{}").status_code == 200  # activates it
    assert channel.delete(actor).json()["message"].startswith("deactivated actor")
    unknown = channel.put("/actors/NoSuchActorType/a/method/remind/due:1", content=b"{}")
    assert unknown.status_code == 500
    assert channel.put("/actors/NoSuchActorType/a/method/timer/t", content=b"{}").status_code == 500


def test_config_subscriptions_and_unknown_routes(channel: httpx.Client, stack: Stack) -> None:
    config = channel.get("/dapr/config").json()
    assert {"TodoListActor", "OwnerIndexActor"} <= set(config["entities"])
    routes = {s["route"] for s in channel.get("/dapr/subscribe").json()}
    assert f"/events/{stack.settings.pubsub}/task-events" in routes
    assert channel.get("/nope").status_code == 404
    assert channel.get("/actors/TodoListActor/a/method/GetList").status_code == 405
