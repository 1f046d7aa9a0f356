"""Actor state values are stored as daprd's Go encoding/json re-encodes them, whether the fast (all small
ints) or the slow path wrote them, and strings made from numbers keep daprd's float64 form."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from dapr.actor import ActorId, ActorProxy, ActorProxyFactory

from sidecar import ManualClock
from sidecar.actors.runtime import ActorHost
from sidecar.actors.state import ActorState
from sidecar.appchannel import AppChannel
from sidecar.errors import DaprError
from sidecar.gojson import dumps, loads_float64
from sidecar.state.memory import InMemoryStateStore
from tests.sidecar.actors.actor_app import CounterInterface
from tests.sidecar.actors.conftest import Stack
from todo_actors.serializer import PydanticSerializer

_EXACT_VALUE = '{"z": [1, -2, 9007199254740991], "a": "<b>&c\u2028", "t": true, "n": null, "e": {}}'
_FLOAT_VALUE = '{"price": 1.0, "big": 1e21, "tiny": 1e-7, "negz": -0, "q": 12, "s": ">"}'
_HUGE_VALUE = "[9007199254740993, 123]"


async def test_values_read_back_with_the_go_encoders_bytes(stack: Stack) -> None:
    actor_id = f"enc-{uuid.uuid4().hex[:8]}"
    factory = ActorProxyFactory(message_serializer=PydanticSerializer())
    await ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface, factory).GetCount()
    values = {"exact": _EXACT_VALUE, "floats": _FLOAT_VALUE, "huge": _HUGE_VALUE}
    expected = {
        "exact": b'{"a":"\\u003cb\\u003e\\u0026c\\u2028","e":{},"n":null,"t":true,'
        b'"z":[1,-2,9007199254740991]}',
        "floats": b'{"big":1e+21,"negz":-0,"price":1,"q":12,"s":"\\u003e","tiny":1e-7}',
        "huge": b"[9007199254740992,123]",
    }
    for key, text in values.items():
        assert dumps(loads_float64(text)) == expected[key]  # what the slow path always wrote
    async with httpx.AsyncClient() as http:
        for keys in (["exact"], ["floats"], ["exact", "huge"]):  # an exact body, and two inexact ones
            ops = ",".join(
                f'{{"operation":"upsert","request":{{"key":"{k}-{len(keys)}","value":{values[k]}}}}}'
                for k in keys
            )
            r = await http.put(f"{stack.base}/actors/CounterActor/{actor_id}/state", content=f"[{ops}]")
            assert r.status_code == 204, r.text
            for k in keys:
                got = await http.get(f"{stack.base}/actors/CounterActor/{actor_id}/state/{k}-{len(keys)}")
                assert got.status_code == 200
                assert got.content == expected[k]


async def test_numeric_operation_is_reported_as_float64_through_the_sidecar(stack: Stack) -> None:
    actor_id = f"enc-{uuid.uuid4().hex[:8]}"
    factory = ActorProxyFactory(message_serializer=PydanticSerializer())
    await ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface, factory).GetCount()
    body = [{"operation": 1, "request": {"key": "k", "value": 2}}]
    async with httpx.AsyncClient() as http:
        r = await http.put(f"{stack.base}/actors/CounterActor/{actor_id}/state", json=body)
    assert r.status_code == 500
    assert r.json()["message"] == "operation type 1.0 not supported"


def _actor_state(*, ttl: bool) -> tuple[ActorState, InMemoryStateStore]:
    clock = ManualClock()
    host = ActorHost(AppChannel("127.0.0.1", None), clock)
    host.mark_no_app()
    host.activation("T", "a")
    store = InMemoryStateStore("actorstore", clock)
    state = ActorState(host, store, "app")
    state.ttl_enabled = ttl
    return state, store


async def _failed_save(state: ActorState, request: dict[str, object]) -> DaprError:
    body = json.dumps([{"operation": "upsert", "request": request}]).encode()
    with pytest.raises(DaprError) as caught:
        await state.transact("T", "a", body)
    assert caught.value.code == "ERR_ACTOR_STATE_TRANSACTION_SAVE"
    return caught.value


async def test_numeric_ttl_metadata_stringifies_as_float64() -> None:
    state, _ = _actor_state(ttl=True)
    exc = await _failed_save(state, {"key": "k", "value": 1, "metadata": {"ttlInSeconds": 60}})
    assert exc.message == (
        "error saving actor transaction state: incorrect value for metadata 'ttlInSeconds': "
        "invalid syntax '60.0'"
    )


async def test_numeric_etag_stringifies_as_float64() -> None:
    state, store = _actor_state(ttl=False)
    await state.transact("T", "a", b'[{"operation":"upsert","request":{"key":"k","value":0}}]')
    assert (await store.get("app||T||a||k")) is not None
    exc = await _failed_save(state, {"key": "k", "value": 1, "etag": 7})
    assert "state etag not match for key=app||T||a||k" in exc.message
    assert exc.message.endswith(", expect=7.0")


async def test_string_ttl_still_applies() -> None:
    state, _ = _actor_state(ttl=True)
    body = [
        {
            "operation": "upsert",
            "request": {"key": "k", "value": {"n": 3}, "metadata": {"ttlInSeconds": "60"}},
        }
    ]
    await state.transact("T", "a", json.dumps(body).encode())
    assert await state.get("T", "a", "k") == b'{"n":3}'
