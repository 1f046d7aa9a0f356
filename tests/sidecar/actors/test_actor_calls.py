"""Actor method calls through the real SDK `ActorProxy` and the embedded sidecar."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from dapr.actor import ActorId, ActorProxy, ActorProxyFactory
from dapr.clients.exceptions import DaprInternalError

from tests.sidecar.actors.actor_app import RECORD, CounterInterface, ReentrantInterface
from tests.sidecar.actors.conftest import Stack
from todo_actors.serializer import PydanticSerializer


def _proxy(actor_id: str) -> ActorProxy:
    # Built per call: the factory probes the sidecar's health when constructed.
    factory = ActorProxyFactory(message_serializer=PydanticSerializer())
    return ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface, factory)


async def test_fifty_concurrent_calls_never_overlap(stack: Stack) -> None:
    actor_id = f"c-{uuid.uuid4().hex[:8]}"
    proxy = _proxy(actor_id)
    results = await asyncio.gather(*(proxy.Increment(0.002) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))  # every turn saw the previous turn's write
    assert RECORD.max_overlap[actor_id] == 1
    assert await proxy.GetCount() == 50


async def test_different_actors_run_in_parallel(stack: Stack) -> None:
    ids = [f"p-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(_proxy(i).Increment(0.3) for i in ids))
    # Serialized, ten 0.3 s turns would take 3 s.
    assert loop.time() - start < 2.0


async def test_date_like_strings_round_trip_raw_through_state(stack: Stack) -> None:
    proxy = _proxy(f"t-{uuid.uuid4().hex[:8]}")
    await proxy.SetText("2025-01-01 file taxes")
    async with httpx.AsyncClient() as http:
        actor_id = proxy.actor_id.id
        r = await http.get(f"{stack.base}/actors/CounterActor/{actor_id}/state/text")
    assert r.status_code == 200
    assert r.json() == "2025-01-01 file taxes"


async def test_method_error_maps_to_err_actor_invoke_method(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{stack.base}/actors/CounterActor/e1/method/Fail", json="boom")
    assert r.status_code == 500
    body = r.json()
    assert body["errorCode"] == "ERR_ACTOR_INVOKE_METHOD"
    assert body["message"].startswith("error invoke actor method: error from actor service: (500)")
    assert "boom" in body["message"]


async def test_proxy_raises_on_method_error(stack: Stack) -> None:
    with pytest.raises(DaprInternalError):
        await _proxy("e2").Fail("bad")


async def test_missing_state_key_is_204_empty(stack: Stack) -> None:
    await _proxy("s1").GetCount()
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{stack.base}/actors/CounterActor/s1/state/nope")
    assert r.status_code == 204
    assert r.content == b""


async def test_state_write_for_inactive_actor_is_rejected(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.put(
            f"{stack.base}/actors/CounterActor/never-called/state",
            json=[{"operation": "upsert", "request": {"key": "k", "value": 1}}],
        )
    assert r.status_code == 400
    assert r.json()["errorCode"] == "ERR_ACTOR_INSTANCE_MISSING"


async def test_reentrant_calls_enter_their_own_turn(stack: Stack) -> None:
    proxy = ActorProxy.create("ReentrantActor", ActorId("r1"), ReentrantInterface)
    assert await asyncio.wait_for(proxy.Nest(3), 10) == 3


async def test_reminder_ops_on_non_hosted_type_are_403(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.put(f"{stack.base}/actors/Nope/x/reminders/r", json={"dueTime": "1s"})
    assert r.status_code == 403
    assert r.json()["errorCode"] == "ERR_ACTOR_REMINDER_NON_HOSTED"


async def test_metadata_lists_active_actors(stack: Stack) -> None:
    await _proxy("m1").GetCount()
    async with httpx.AsyncClient() as http:
        meta = (await http.get(f"{stack.base}/metadata")).json()
    assert meta["id"] == "actors-test"
    counts = {a["type"]: a["count"] for a in meta["actorRuntime"]["activeActors"]}
    assert counts["CounterActor"] >= 1
