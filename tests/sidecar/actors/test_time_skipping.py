"""`/v1.0-dev/clock/advance` is time passing: reminders and timers fire one by one, each on its instant, in
due order, and the advance answers once the engine is quiet (or says what kept it busy)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from dapr.actor import ActorId, ActorProxy

from tests.sidecar.actors.actor_app import RECORD, CounterInterface
from tests.sidecar.actors.conftest import Stack


@pytest.fixture(autouse=True)
def _callbacks_read_the_dev_clock(stack: Stack) -> Iterator[None]:
    RECORD.now = stack.clock.now
    yield
    RECORD.now = __import__("time").time


async def _advance(stack: Stack, seconds: float, **options: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(
            f"http://127.0.0.1:{stack.sidecar.http_port}/v1.0-dev/clock/advance",
            json={"seconds": seconds, **options},
        )


async def test_reminders_fire_in_due_order_each_on_its_instant(stack: Stack) -> None:
    actor_id = f"skip-{uuid.uuid4().hex[:8]}"
    proxy = ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface)
    start = stack.clock.now()
    dues = {"c": 1800, "a": 600, "d": 2400, "b": 1200}  # seconds from now, registered out of order
    for name, due in dues.items():
        await proxy.SetReminder({"name": name, "due": due})
    await proxy.SetReminder({"name": "hourly", "due": 3600, "period": 3600})
    r = await _advance(stack, 5 * 3600 + 60)
    assert r.status_code == 200, r.text
    assert r.json()["steps"] >= 9
    fired = [(name, at) for who, name, _, at in RECORD.reminders if who == actor_id]
    assert [name for name, _ in fired] == [
        "a",
        "b",
        "c",
        "d",
        "hourly",
        "hourly",
        "hourly",
        "hourly",
        "hourly",
    ]
    expected = [dues["a"], dues["b"], dues["c"], dues["d"], 3600, 7200, 10800, 14400, 18000]
    for (name, at), due in zip(fired, expected, strict=True):
        assert 0 <= at - (start + due) < 2.0, (name, at - (start + due))  # never early, never late
    await proxy.DropReminder("hourly")


async def test_a_periodic_timer_fires_once_per_period(stack: Stack) -> None:
    actor_id = f"skip-{uuid.uuid4().hex[:8]}"
    proxy = ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface)
    await proxy.SetTimer({"name": "tick", "due": 60, "period": 60, "data": {"n": 1}})
    r = await _advance(stack, 10 * 60 + 30)
    assert r.status_code == 200, r.text
    assert len([t for t in RECORD.timers if t[0] == actor_id]) == 10


async def test_an_engine_that_stays_busy_stops_the_advance_with_what_kept_it(stack: Stack) -> None:
    proxy = ActorProxy.create("CounterActor", ActorId(f"skip-{uuid.uuid4().hex[:8]}"), CounterInterface)
    slow = asyncio.create_task(proxy.Increment(3.0))  # an actor turn that takes 3 s
    await asyncio.sleep(0.3)
    before = stack.clock.now()
    r = await _advance(stack, 3600, settle_timeout=0.5)
    assert r.status_code == 504, r.text
    body = r.json()
    assert body["errorCode"] == "ERR_DEV_CLOCK_NOT_SETTLED"
    assert "app channel" in body["busy"] and "did not settle within 0.5 s" in body["message"]
    assert stack.clock.now() < before + 60  # it stopped where it was: nothing after that instant ran
    await slow
    r = await _advance(stack, 0)
    assert r.status_code == 200, r.text


async def test_an_advance_in_the_background_answers_at_once(stack: Stack) -> None:
    before = stack.clock.now()
    r = await _advance(stack, 7200, wait=False)
    assert r.status_code == 202, r.text
    assert r.json()["target"] >= before + 7200
    r = await _advance(stack, 0)  # queued behind the first
    assert r.status_code == 200 and stack.clock.now() >= before + 7200


@pytest.mark.parametrize(
    "body", [{"seconds": False}, {"seconds": "1"}, {"seconds": -1}, {"seconds": 1, "wait": 1}, [], {}]
)
async def test_a_malformed_advance_is_refused(stack: Stack, body: object) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"http://127.0.0.1:{stack.sidecar.http_port}/v1.0-dev/clock/advance", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
