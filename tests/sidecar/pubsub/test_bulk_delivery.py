"""Bulk subscriptions against a real app over HTTP: batching (count, window), the bulk envelope, per-entry
statuses with retries of only the failed entries, DROP and dead letters, 404, routing split and raw
payloads. How `bulkSubscribe` is parsed is in `test_bulk_settings.py`."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sidecar.pubsub import DeclarativeSubscription
from tests.harness import ServedApp, wait_for_async
from tests.sidecar.pubsub.apps import PUBSUB, BulkApp, Delivery, Recorder
from tests.sidecar.pubsub.conftest import APP_ID, BOTH_TYPES, MakeSidecar, serve


@pytest.fixture(params=BOTH_TYPES)
def broker_type(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both component types."""
    return str(request.param)


CE = "application/cloudevents+json"


@pytest.fixture(scope="module")
def served_bulk() -> Iterator[tuple[ServedApp, BulkApp]]:
    app = BulkApp(Recorder())
    served = serve(app.build())
    try:
        yield served, app
    finally:
        served.stop()


@pytest.fixture
def bulk(served_bulk: tuple[ServedApp, BulkApp]) -> tuple[ServedApp, BulkApp]:
    served, app = served_bulk
    app.recorder.reset()
    app.verdict = lambda entry: "SUCCESS"
    return served, app


def entries(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    return [e for d in deliveries for e in d.event["entries"]]


def data_of(deliveries: list[Delivery]) -> list[Any]:
    return [e["event"]["data"] for e in entries(deliveries)]


async def test_declarative_bulk_subscription_delivers_batches(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    settings = {"enabled": True, "maxMessagesCount": 2, "maxAwaitDurationMs": 300}
    decl = DeclarativeSubscription(
        "d", PUBSUB, "decl-bulk", {"default": "/decl-bulk"}, bulk_subscribe=settings
    )
    sc = await make_sidecar(served, declarative=[decl])
    for name in ("a", "b", "c"):
        await sc.publish("decl-bulk", name)
    await wait_for_async(lambda: len(entries(app.recorder.on("/decl-bulk"))) == 3, timeout=5)
    deliveries = app.recorder.on("/decl-bulk")
    assert sorted(data_of(deliveries)) == ["a", "b", "c"]
    assert [len(d.event["entries"]) for d in deliveries] == [2, 1]
    assert all(e["metadata"] is None for e in entries(deliveries))


# --- batching and the envelope ---------------------------------------------------------------------


async def test_a_burst_arrives_in_batches_of_proper_cloud_events(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    sc = await make_sidecar(served)
    n = 20
    for i in range(n):
        assert (
            await sc.publish("bulk", json.dumps({"n": i}), content_type="application/json")
        ).status_code == 204
    await wait_for_async(lambda: len(entries(app.recorder.on("/bulk"))) >= n, timeout=5)
    await sc.engine.idle()
    deliveries = app.recorder.on("/bulk")
    assert len(deliveries) < n
    assert sorted(e["event"]["data"]["n"] for e in entries(deliveries)) == list(range(n))

    first = deliveries[0]
    assert first.headers["content-type"] == "application/json"
    assert first.headers["pubsubname"] == PUBSUB
    assert "team" not in first.headers  # only the bulk message metadata travels as headers
    envelope = first.event
    assert list(envelope) == ["entries", "id", "metadata", "pubsubname", "topic", "type"]
    assert envelope["metadata"] == {"pubsubName": PUBSUB}
    assert (envelope["pubsubname"], envelope["topic"]) == (PUBSUB, "bulk")
    assert envelope["type"] == "com.dapr.event.sent.bulk"
    assert len({d.event["id"] for d in deliveries}) == len(deliveries)
    entry = envelope["entries"][0]
    assert list(entry) == ["entryId", "event", "metadata", "contentType"]
    assert entry["contentType"] == CE and entry["metadata"] == {"team": "blue"}
    event = entry["event"]
    assert event["specversion"] == "1.0" and event["source"] == APP_ID and event["topic"] == "bulk"
    assert event["datacontenttype"] == "application/json" and event["type"] == "com.dapr.event.sent"
    assert len({e["entryId"] for e in entries(deliveries)}) == n

    # everything was answered SUCCESS: nothing comes again, nothing is dead-lettered
    await sc.publish("bulk", json.dumps({"n": n}), content_type="application/json")
    await wait_for_async(lambda: len(entries(app.recorder.on("/bulk"))) > n, timeout=5)
    await sc.engine.idle()
    assert len(entries(app.recorder.on("/bulk"))) == n + 1
    assert app.recorder.on("/bulk-dlq") == []


async def test_events_are_re_encoded_as_daprd_does(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    """daprd decodes each event into a Go map and marshals it again: float64 numbers, `<>&` escaped."""
    served, app = bulk
    sc = await make_sidecar(served)
    body = b'{"whole": 1.0, "big": 12345678901234567890, "tag": "<a&b>"}'
    await sc.publish("nodlq-bulk", body, content_type="application/json")
    await wait_for_async(lambda: app.recorder.on("/nodlq-bulk"), timeout=5)
    [delivery] = app.recorder.on("/nodlq-bulk")
    assert b'"data":{"big":12345678901234567000,"tag":"\\u003ca\\u0026b\\u003e","whole":1}' in delivery.body
    # a subscription without metadata is a nil map in daprd
    assert b'"metadata":null,"contentType":"application/cloudevents+json"}' in delivery.body


async def test_max_messages_count_caps_a_batch(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    sc = await make_sidecar(served)
    gate = app.recorder.gates["/capped"] = threading.Event()
    for i in range(10):
        await sc.publish("capped", str(i))
    # the first batch is held by the app: the rest waits, counted by the pending gauge
    await wait_for_async(lambda: app.recorder.on("/capped"), timeout=5)
    assert sc.engine.pending()[(PUBSUB, "capped")] == 10
    gate.set()
    await wait_for_async(lambda: len(entries(app.recorder.on("/capped"))) == 10, timeout=5)
    await sc.engine.idle()
    assert sc.engine.pending()[(PUBSUB, "capped")] == 0
    sizes = [len(d.event["entries"]) for d in app.recorder.on("/capped")]
    assert max(sizes) == 3 and sum(sizes) == 10
    assert sorted(data_of(app.recorder.on("/capped")), key=int) == [str(i) for i in range(10)]


async def test_a_lone_event_waits_for_the_window(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    sc = await make_sidecar(served)
    before = time.monotonic()
    await sc.publish("lone", b"alone")
    await wait_for_async(lambda: app.recorder.on("/lone"), timeout=5)
    [delivery] = app.recorder.on("/lone")
    assert data_of([delivery]) == ["alone"]
    assert 0.05 <= delivery.at - before < 0.9  # the 50 ms window, not daprd's default second


# --- per-entry outcomes --------------------------------------------------------------------------


async def test_only_entries_answered_retry_are_redelivered(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    seen: set[str] = set()

    def verdict(entry: dict[str, Any]) -> str:
        first_time = entry["entryId"] not in seen
        seen.add(entry["entryId"])
        return "RETRY" if entry["event"]["data"].startswith("retry") and first_time else "SUCCESS"

    app.verdict = verdict
    sc = await make_sidecar(served)
    for name in ("ok-1", "retry-1", "ok-2", "retry-2", "ok-3"):
        await sc.publish("bulk", name)
    await wait_for_async(lambda: len(entries(app.recorder.on("/bulk"))) >= 7, timeout=5)
    await sc.engine.idle()
    deliveries = app.recorder.on("/bulk")
    got = entries(deliveries)
    assert sorted(e["event"]["data"] for e in got) == [
        "ok-1",
        "ok-2",
        "ok-3",
        "retry-1",
        "retry-1",
        "retry-2",
        "retry-2",
    ]
    retried = [d for d in deliveries if any(e["event"]["data"] == "retry-1" for e in d.event["entries"])]
    first, again = retried
    assert data_of([again]) in (["retry-1", "retry-2"], ["retry-1"])
    assert again.event["id"] != first.event["id"]
    ids: dict[str, set[str]] = {e["event"]["data"]: set() for e in got}
    for e in got:
        ids[e["event"]["data"]].add(e["entryId"])
    assert all(len(v) == 1 for v in ids.values())  # a retried entry keeps its entry id
    assert app.recorder.on("/bulk-dlq") == []


async def test_entries_without_a_status_are_retried_then_dead_lettered(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    """FAST_RETRY makes three attempts; unknown statuses and missing ones count as failures."""
    served, app = bulk
    app.verdict = lambda entry: {"a": "SUCCESS", "b": "success", "c": "RETRY"}[entry["event"]["data"]]
    sc = await make_sidecar(served)
    with caplog.at_level(logging.WARNING, logger="sidecar.pubsub"):
        for name in ("a", "b", "c"):
            await sc.publish("bulk", name)
        await wait_for_async(lambda: len(app.recorder.on("/bulk-dlq")) == 2, timeout=5)
        await sc.engine.idle()
    assert sorted(data_of(app.recorder.on("/bulk"))) == ["a", "b", "b", "b", "c", "c", "c"]
    assert sorted(d.event["data"] for d in app.recorder.on("/bulk-dlq")) == ["b", "c"]
    assert any("3 attempts failed" in r.getMessage() for r in caplog.records)


async def test_drop_dead_letters_the_original_event(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    app.verdict = lambda entry: "DROP" if entry["event"]["data"] == "drop-me" else "SUCCESS"
    sc = await make_sidecar(served)
    await sc.publish("bulk", "keep")
    await sc.publish("bulk", "drop-me")
    await wait_for_async(lambda: app.recorder.on("/bulk-dlq"), timeout=5)
    await sc.engine.idle()
    [dead] = app.recorder.on("/bulk-dlq")
    assert dead.headers["content-type"] == CE  # a plain delivery of the original CloudEvent
    [dropped] = [e for e in entries(app.recorder.on("/bulk")) if e["event"]["data"] == "drop-me"]
    assert dead.event == dropped["event"]
    assert sorted(data_of(app.recorder.on("/bulk"))) == ["drop-me", "keep"]  # neither is redelivered


async def test_404_drops_the_batch_without_retry_or_dead_letter(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    served, app = bulk
    app.recorder.script("/bulk", (404, "no such route"))
    sc = await make_sidecar(served)
    with caplog.at_level(logging.ERROR, logger="sidecar.pubsub"):
        await sc.publish("bulk", "x")
        await sc.publish("bulk", "y")
        await wait_for_async(lambda: app.recorder.on("/bulk"), timeout=5)
        await sc.engine.idle()
    assert len(app.recorder.on("/bulk")) == 1
    assert app.recorder.on("/bulk-dlq") == []
    assert any("dropping 2 event(s)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("reply", [(500, "boom"), (200, ""), (200, '{"statuses": "all good"}')])
async def test_failed_requests_retry_every_entry(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar, reply: tuple[int, str]
) -> None:
    """A non-2xx status or a reply that does not decode fails every entry; the next attempt succeeds."""
    served, app = bulk
    app.recorder.script("/nodlq-bulk", reply)
    sc = await make_sidecar(served)
    await sc.publish("nodlq-bulk", "p")
    await sc.publish("nodlq-bulk", "q")
    await wait_for_async(lambda: len(app.recorder.on("/nodlq-bulk")) >= 2, timeout=5)
    await sc.engine.idle()
    first, second = app.recorder.on("/nodlq-bulk")
    assert sorted(data_of([second])) == sorted(data_of([first])) == ["p", "q"]
    assert first.event["id"] != second.event["id"]


async def test_expired_and_unreadable_messages_leave_the_batch(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    """Checked when the batch is flushed: an event expired by then, and bytes that are no CloudEvent
    (published raw to a CloudEvent subscription), go to the dead letter topic; the rest is delivered."""
    served, app = bulk
    sc = await make_sidecar(served)
    with caplog.at_level(logging.WARNING, logger="sidecar.pubsub"):
        await sc.publish("bulk", "short-lived", metadata={"ttlInSeconds": "10"})
        await sc.publish("bulk", b"[1, 2]", metadata={"rawPayload": "true"})
        sc.clock.advance(60)  # within the 200 ms window, so before the batch is flushed
        await sc.publish("bulk", "fresh", metadata={"ttlInSeconds": "10"})
        await wait_for_async(lambda: app.recorder.on("/bulk"), timeout=5)
        await sc.engine.idle()
    assert data_of(app.recorder.on("/bulk")) == ["fresh"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("dropping expired" in m and "topic bulk " in m for m in messages)
    assert any("expired" in m and "to dead letter topic bulk-dlq" in m for m in messages)
    assert any("error deserializing cloud event" in m and "dead letter topic bulk-dlq" in m for m in messages)


# --- routing, raw payloads, tracing --------------------------------------------------------------


async def test_routing_rules_split_a_batch_by_path(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    sc = await make_sidecar(served)
    for i in range(6):
        kind = "kind.a" if i % 2 else "kind.b"
        await sc.publish("split", str(i), metadata={"cloudevent.type": kind})
    await wait_for_async(lambda: len(entries(app.recorder.deliveries)) == 6, timeout=5)
    await sc.engine.idle()
    a, other = app.recorder.on("/split/a"), app.recorder.on("/split/other")
    assert sorted(data_of(a)) == ["1", "3", "5"] and sorted(data_of(other)) == ["0", "2", "4"]
    assert len(a) == len(other) == 1  # one batch, one request per path
    assert {e["event"]["type"] for e in entries(a)} == {"kind.a"}


async def test_raw_payload_entries_carry_base64(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    sc = await make_sidecar(served)
    payload = b"\x00\xffraw bytes"
    await sc.publish("raw-bulk", payload, metadata={"rawPayload": "true"})
    await wait_for_async(lambda: app.recorder.on("/raw-bulk"), timeout=5)
    [entry] = entries(app.recorder.on("/raw-bulk"))
    assert base64.b64decode(entry["event"]) == payload
    assert entry["contentType"] == "application/octet-stream"
    assert entry["metadata"] == {"rawPayload": "true"}


async def test_trace_context_comes_from_the_last_traced_entry(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    sc = await make_sidecar(served)
    first = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    last = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await sc.publish("bulk", "one", headers={"traceparent": first})
    await sc.publish("bulk", "two", headers={"traceparent": last, "tracestate": "k=v"})
    await sc.publish("bulk", "three")
    await wait_for_async(lambda: len(entries(app.recorder.on("/bulk"))) == 3, timeout=5)
    [delivery] = app.recorder.on("/bulk")
    assert delivery.headers["traceparent"] == last
    assert delivery.headers["tracestate"] == "k=v"


async def test_stop_delivers_the_pending_batch_at_once(
    bulk: tuple[ServedApp, BulkApp], make_sidecar: MakeSidecar
) -> None:
    served, app = bulk
    sc = await make_sidecar(served)
    await sc.publish("bulk", "last words")
    started = time.monotonic()
    await sc.engine.stop()
    assert time.monotonic() - started < 0.15  # did not wait out the 200 ms window
    assert data_of(app.recorder.on("/bulk")) == ["last words"]
