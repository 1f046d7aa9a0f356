"""Reminders and timers on the manual clock: never early, at-least-once, retried, replaced, removed."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from dapr.actor import ActorId, ActorProxy

from tests.harness import wait_for_async
from tests.sidecar.actors.actor_app import RECORD, CounterInterface
from tests.sidecar.actors.conftest import Stack


def _new_id() -> str:
    return f"rem-{uuid.uuid4().hex[:10]}"


async def _advance(stack: Stack, seconds: float) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"http://127.0.0.1:{stack.sidecar.http_port}/v1.0-dev/clock/advance",
            json={"seconds": seconds},
        )
        r.raise_for_status()


async def test_reminder_fires_after_due_and_never_early(stack: Stack) -> None:
    actor_id = _new_id()
    proxy = ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface)
    await proxy.SetReminder({"name": "due", "due": 3600, "data": "payload"})
    await _advance(stack, 3599)
    await asyncio.sleep(0.3)  # give an (incorrect) early firing the chance to show
    assert RECORD.reminder_fires(actor_id, "due") == []
    await _advance(stack, 2)
    fires = await wait_for_async(lambda: RECORD.reminder_fires(actor_id, "due"))
    assert len(fires) == 1
    assert fires[0][2] == b"payload"


async def test_periodic_reminder_with_repetitions(stack: Stack) -> None:
    actor_id = _new_id()
    async with httpx.AsyncClient() as http:
        r = await http.put(
            f"{stack.base}/actors/CounterActor/{actor_id}/reminders/rep",
            json={"dueTime": "PT10S", "period": "R3/PT10S", "data": ""},
        )
        assert r.status_code == 204
    for expected in (1, 2, 3):
        await _advance(stack, 10)
        await wait_for_async(lambda n=expected: len(RECORD.reminder_fires(actor_id, "rep")) >= n)
    await _advance(stack, 60)
    await asyncio.sleep(0.3)
    assert len(RECORD.reminder_fires(actor_id, "rep")) == 3


async def test_get_and_delete_reminder(stack: Stack) -> None:
    actor_id = _new_id()
    url = f"{stack.base}/actors/CounterActor/{actor_id}/reminders/g"
    async with httpx.AsyncClient() as http:
        assert (await http.put(url, json={"dueTime": "1h", "period": "1m", "data": "x"})).status_code == 204
        got = (await http.get(url)).json()
        assert got == {
            "actorID": actor_id,
            "actorType": "CounterActor",
            "dueTime": "1h",
            "period": "@every 1m0s",
            "data": "x",
        }
        assert (await http.delete(url)).status_code == 204
        assert (await http.get(url)).json() == {}
    await _advance(stack, 3700)
    await asyncio.sleep(0.3)
    assert RECORD.reminder_fires(actor_id, "g") == []


async def test_failed_reminder_callback_is_retried(stack: Stack) -> None:
    actor_id = _new_id()
    proxy = ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface)
    await proxy.SetReminder({"name": "flaky", "due": 5})
    with RECORD.lock:
        RECORD.fail_reminders = 2
    await _advance(stack, 6)
    # Two failures, each retried after 1 s (scheduler policy), then success.
    for _ in range(3):
        await asyncio.sleep(0.2)
        await _advance(stack, 1.1)
    fires = await wait_for_async(lambda: RECORD.reminder_fires(actor_id, "flaky"))
    assert len(fires) == 1
    assert RECORD.fail_reminders == 0


async def test_invalid_reminder_period_is_rejected(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.put(
            f"{stack.base}/actors/CounterActor/bad/reminders/r",
            json={"dueTime": "1s", "period": "R0/PT1S"},
        )
    assert r.status_code == 500
    assert r.json()["errorCode"] == "ERR_ACTOR_REMINDER_CREATE"


async def test_a_reminder_failure_policy_is_refused_not_ignored(stack: Stack) -> None:
    """daprd 1.15+ takes `failure_policy` in the reminder body; here ticks follow one policy, so a
    reminder asking for its own is refused (and not created), as over gRPC."""
    url = f"{stack.base}/actors/CounterActor/{_new_id()}/reminders/own-policy"
    async with httpx.AsyncClient() as http:
        r = await http.put(url, json={"dueTime": "1h", "failure_policy": {"drop": {}}})
        assert r.status_code == 501
        assert r.json()["errorCode"] == "ERR_API_UNIMPLEMENTED"
        assert "failure_policy" in r.json()["message"]
        assert (await http.get(url)).json() == {}


async def test_timer_fires_under_turn_and_stops_on_delete(stack: Stack) -> None:
    actor_id = _new_id()
    proxy = ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface)
    await proxy.SetTimer({"name": "t", "due": 30, "period": 30, "data": {"n": 1}})
    await _advance(stack, 31)
    await wait_for_async(lambda: [t for t in RECORD.timers if t[0] == actor_id])
    async with httpx.AsyncClient() as http:
        r = await http.delete(f"{stack.base}/actors/CounterActor/{actor_id}/timers/t")
        assert r.status_code == 204
    before = len([t for t in RECORD.timers if t[0] == actor_id])
    await _advance(stack, 120)
    await asyncio.sleep(0.3)
    assert len([t for t in RECORD.timers if t[0] == actor_id]) == before
    assert [t[2] for t in RECORD.timers if t[0] == actor_id][0] == {"n": 1}


async def test_idle_actor_is_deactivated(stack: Stack) -> None:
    actor_id = _new_id()
    proxy = ActorProxy.create("CounterActor", ActorId(actor_id), CounterInterface)
    await proxy.GetCount()
    await _advance(stack, 9 * 60)
    await asyncio.sleep(0.3)
    assert actor_id not in RECORD.deactivated
    await _advance(stack, 2 * 60)  # CounterActor idle timeout: 10 min
    await wait_for_async(lambda: actor_id in RECORD.deactivated)
    async with httpx.AsyncClient() as http:
        r = await http.put(
            f"{stack.base}/actors/CounterActor/{actor_id}/state",
            content=json.dumps([{"operation": "upsert", "request": {"key": "k", "value": 1}}]),
        )
    assert r.json()["errorCode"] == "ERR_ACTOR_INSTANCE_MISSING"
