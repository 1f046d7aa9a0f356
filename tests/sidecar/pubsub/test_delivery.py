"""Delivery semantics against real subscriber apps: the app response contract, retries, dead-letter
topics, expiration, routing rules and per-topic ordering."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from typing import Any

import pytest

from sidecar.pubsub import RetryPolicy
from tests.harness import wait_for_async
from tests.sidecar.pubsub.apps import Recorder, build_sdk_app
from tests.sidecar.pubsub.conftest import APP_ID, BOTH_TYPES, Apps, MakeSidecar, serve


@pytest.fixture(params=BOTH_TYPES)
def broker_type(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both component types."""
    return str(request.param)


FLAKY, FLAKY_DLQ = "/events/pubsub/flaky", "/events/pubsub/flaky-dlq"

# (app replies in order, expected delivery attempts, expected dead letters) with FAST_RETRY (3 tries)
CONTRACT = {
    "SUCCESS": ([(200, '{"status":"SUCCESS"}')], 1, 0),
    "empty body": ([(200, "")], 1, 0),
    "null (handler returned None)": ([], 1, 0),
    "not an object": ([(200, '"fine"')], 1, 0),
    "empty status": ([(200, '{"status":""}')], 1, 0),
    "204": ([(204, "")], 1, 0),
    "status not a string": ([(200, '{"status": 1}')], 1, 0),
    "DROP": ([(200, '{"status":"DROP"}')], 1, 1),
    "DROP, key case-folded as Go does": ([(200, '{"Status":"DROP"}')], 1, 1),
    "404": ([(404, "gone")], 1, 0),
    "RETRY": ([(200, '{"status":"RETRY"}')] * 3, 3, 1),
    "lowercase success is unknown": ([(200, '{"status":"success"}')] * 3, 3, 1),
    "500": ([(500, "boom")] * 3, 3, 1),
    "422": ([(422, "{}")] * 3, 3, 1),
    "recovers on the third try": (
        [(500, "boom"), (200, '{"status":"RETRY"}'), (200, '{"status":"SUCCESS"}')],
        3,
        0,
    ),
}


async def test_app_response_contract(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    rec = apps.sdk_recorder
    for case, (replies, attempts, dead_letters) in CONTRACT.items():
        rec.reset()
        rec.script(FLAKY, *replies)
        assert (await sc.publish("flaky", case)).status_code == 204
        await sc.engine.idle()
        got = rec.on(FLAKY)
        assert len(got) == attempts, case
        assert all(d.event["data"] == case for d in got), case
        dlq = rec.on(FLAKY_DLQ)
        assert len(dlq) == dead_letters, case
        if dlq:
            # the dead letter carries the original envelope bytes, not a new event
            assert dlq[0].body == got[0].body, case


async def test_retries_exhausted_without_dead_letter_topic_drop_with_error(
    apps: Apps, make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    sc = await make_sidecar(apps.sdk)
    apps.sdk_recorder.script("/events/pubsub/nodlq", *[(503, "busy")] * 3)
    with caplog.at_level(logging.WARNING, logger="sidecar.pubsub"):
        await sc.publish("nodlq", b"lost")
        await sc.engine.idle()
    assert len(apps.sdk_recorder.on("/events/pubsub/nodlq")) == 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("dropping pub/sub event" in r.getMessage() for r in errors)
    # the message is gone: a later message is delivered once and nothing else arrives
    await sc.publish("nodlq", b"next")
    await sc.engine.idle()
    assert [d.event["data"] for d in apps.sdk_recorder.on("/events/pubsub/nodlq")][-1] == "next"
    assert len(apps.sdk_recorder.on("/events/pubsub/nodlq")) == 4


async def test_default_retry_policy_backs_off_then_dead_letters(
    apps: Apps, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(apps.sdk, retry=RetryPolicy())
    apps.sdk_recorder.script(FLAKY, *[(500, "boom")] * 5)
    started = time.monotonic()
    await sc.publish("flaky", b"x")
    await sc.engine.idle()
    elapsed = time.monotonic() - started
    assert len(apps.sdk_recorder.on(FLAKY)) == 5
    assert len(apps.sdk_recorder.on(FLAKY_DLQ)) == 1
    assert 1.5 <= elapsed < 5  # waits of 0.1 + 0.2 + 0.4 + 0.8 s between the five attempts


@pytest.mark.parametrize("broker_type", ["pubsub.in-memory"])  # the durable one waits for the app
async def test_connection_errors_are_retriable(
    make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    app = serve(build_sdk_app(Recorder()))
    sc = await make_sidecar(app)
    app.stop()  # subscriptions are loaded; now the app is gone
    with caplog.at_level(logging.WARNING, logger="sidecar.pubsub"):
        await sc.publish("flaky", b"x")
        await sc.engine.idle()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("retriable failure" in m and "topic flaky:" in m for m in messages) == 3
    assert any("to dead letter topic flaky-dlq" in m for m in messages)
    # the dead letter itself cannot be delivered either and has no dead-letter topic
    assert any("dropping pub/sub event" in m and "flaky-dlq" in m for m in messages)


async def test_per_topic_delivery_is_serial_and_ordered(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    for i in range(25):
        await sc.publish("orders", str(i))
    await sc.engine.idle()
    got = [d.event["data"] for d in apps.sdk_recorder.on("/events/pubsub/orders")]
    assert got == [str(i) for i in range(25)]
    assert apps.sdk_recorder.max_in_flight["/events/pubsub/orders"] == 1


async def test_a_blocked_topic_does_not_hold_up_others(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    rec = apps.sdk_recorder
    gate = rec.gates["/events/pubsub/slow"] = threading.Event()
    await sc.publish("slow", b"held")
    await sc.publish("orders", b"free")
    await wait_for_async(lambda: rec.on("/events/pubsub/orders"), timeout=5)
    await sc.publish("slow", b"queued")
    assert not gate.is_set()
    await wait_for_async(lambda: sc.engine.pending().get(("pubsub", "orders")) == 0, timeout=5)
    assert sc.engine.pending()[("pubsub", "slow")] == 2  # one in delivery, one queued: the lag
    gate.set()
    await sc.engine.idle()
    assert sc.engine.pending()[("pubsub", "slow")] == 0


async def test_expired_events_are_dropped_at_delivery(
    apps: Apps, make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    """An event whose `expiration` passed while it waited is not delivered but dead-lettered; the
    dead letter keeps the original envelope, so (as in daprd) the DLQ subscriber drops it too."""
    sc = await make_sidecar(apps.sdk)
    rec = apps.sdk_recorder
    gate = rec.gates["/events/pubsub/slow"] = threading.Event()
    await sc.publish("slow", b"first")
    await wait_for_async(lambda: rec.on("/events/pubsub/slow"), timeout=5)
    await sc.publish("slow", b"short-lived", metadata={"ttlInSeconds": "10"})
    await sc.publish("slow", b"long-lived", metadata={"ttlInSeconds": "3600"})
    sc.clock.advance(60)  # while "first" is still being handled, the second event expires
    with caplog.at_level(logging.WARNING, logger="sidecar.pubsub"):
        gate.set()
        await sc.engine.idle()

    assert [d.event["data"] for d in rec.on("/events/pubsub/slow")] == ["first", "long-lived"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("expired" in m and "to dead letter topic slow-dlq" in m for m in messages)
    assert any("dropping expired" in m and "topic slow-dlq" in m for m in messages)
    assert rec.on("/events/pubsub/slow-dlq") == []


async def test_routing_rules_pick_the_first_match(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.raw)
    rec = apps.raw_recorder
    publish: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("created", {"priority": "high"}, {"cloudevent.type": "order.created"}),
        ("high", {"priority": "high"}, {}),
        ("big-qty", {"priority": "low", "qty": 11}, {}),
        ("bulk-flag", {"priority": "low", "bulk": True}, {}),
        ("other", {"priority": "low", "qty": 2}, {}),
    ]
    for name, data, metadata in publish:
        body = json.dumps({**data, "name": name})
        await sc.publish("routed", body, content_type="application/json", metadata=metadata)
    # text data has no `priority` key: the second rule fails to evaluate -> dead-lettered
    await sc.publish("routed", b"plain text")
    await sc.engine.idle()

    def names(path: str) -> list[str]:
        return [d.event["data"]["name"] for d in rec.on(path)]

    assert names("/orders/created") == ["created"]
    assert names("/orders/high") == ["high"]
    assert names("/orders/big") == ["big-qty", "bulk-flag"]
    assert names("/orders/other") == ["other"]
    [dead] = rec.on("/dlq")
    assert dead.event["data"] == "plain text"
    # subscription metadata travels as headers; the source rule saw our app id
    assert rec.on("/orders/high")[0].headers["team"] == "blue"
    assert rec.on("/orders/high")[0].event["source"] == APP_ID


async def test_unmatched_events_go_to_the_dead_letter_topic(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.raw)
    await sc.publish("strict", b"a", metadata={"cloudevent.type": "only.this"})
    await sc.publish("strict", b"b", metadata={"cloudevent.type": "something.else"})
    await sc.publish("noroute", b"c")  # the app listed it without a route: not subscribed
    await sc.engine.idle()
    rec = apps.raw_recorder
    assert [d.event["data"] for d in rec.on("/strict")] == ["a"]
    assert [d.event["data"] for d in rec.on("/strict-dlq")] == ["b"]
    assert len(rec.deliveries) == 2


async def test_raw_payload_subscription_of_a_plain_envelope_keeps_bytes(
    apps: Apps, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(apps.sdk)
    await sc.publish("raw", b"enveloped")  # published as a CloudEvent, read raw
    await sc.engine.idle()
    [delivery] = apps.sdk_recorder.on("/events/pubsub/raw")
    inner = json.loads(base64.b64decode(delivery.event["data_base64"]))
    assert inner["data"] == "enveloped" and inner["source"] == APP_ID


async def test_stop_lets_the_in_flight_delivery_finish(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    rec = apps.sdk_recorder
    gate = rec.gates["/events/pubsub/slow"] = threading.Event()
    await sc.publish("slow", b"in flight")
    await sc.publish("slow", b"queued")
    await wait_for_async(lambda: rec.on("/events/pubsub/slow"), timeout=5)
    stopping = asyncio.create_task(sc.engine.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    gate.set()
    await asyncio.wait_for(stopping, 5)
    assert [d.event["data"] for d in rec.on("/events/pubsub/slow")] == ["in flight"]


async def test_idle_workers_stop_when_told_not_at_the_grace_deadline(
    apps: Apps, make_sidecar: MakeSidecar
) -> None:
    # A worker waiting for its next message is woken by stop(); one that only noticed at the end of
    # the grace period would be cancelled there.
    sc = await make_sidecar(apps.sdk, stop_grace=30.0)
    await sc.publish("slow", b"delivered")
    await sc.engine.idle()
    tasks = [worker._task for worker in sc.engine._workers]
    assert tasks and all(task is not None and not task.done() for task in tasks)
    await asyncio.wait_for(sc.engine.stop(), 5)
    assert all(task is not None and task.done() and not task.cancelled() for task in tasks)
