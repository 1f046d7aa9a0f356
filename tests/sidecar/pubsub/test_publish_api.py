"""HTTP publish API end to end: what the SDK app receives (CloudEvent fields, data encoding, headers),
request metadata, raw payloads, bulk publish, and daprd's error codes."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidecar.pubsub import BrokerSpec
from tests.sidecar.pubsub.conftest import APP_ID, BOTH_TYPES, Apps, MakeSidecar


@pytest.fixture(params=BOTH_TYPES)
def broker_type(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both component types."""
    return str(request.param)


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_text_publish_delivers_a_full_cloudevent(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    resp = await sc.publish("orders", b"hello world")
    assert resp.status_code == 204 and resp.content == b""
    await sc.engine.idle()

    [delivery] = apps.sdk_recorder.on("/events/pubsub/orders")
    event = delivery.event
    assert uuid.UUID(event["id"]).version == 4
    assert event["source"] == APP_ID
    assert event["type"] == "com.dapr.event.sent"
    assert event["specversion"] == "1.0"
    assert event["datacontenttype"] == "text/plain"
    assert event["data"] == "hello world"
    assert event["topic"] == "orders" and event["pubsubname"] == "pubsub"
    assert event["traceid"] == event["traceparent"] == "" and event["tracestate"] == ""
    assert "data_base64" not in event and "expiration" not in event
    published = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(published.timestamp() - sc.clock.now()) < 5
    # Go's json.Marshal: compact, keys sorted
    assert list(event) == sorted(event) and b": " not in delivery.body
    assert delivery.headers["content-type"] == "application/cloudevents+json"
    assert delivery.headers["pubsubname"] == "pubsub"


async def test_json_data_is_parsed_only_for_application_json(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    payload = b'{"qty": 12345678901234567890123, "price": 1.50, "name": "<b>"}'
    await sc.publish("orders", payload, content_type="application/json")
    await sc.publish("orders", payload, content_type="application/json; charset=utf-8")
    await sc.publish("orders", payload, content_type="application/foo+json")
    await sc.publish("orders", b"{not json", content_type="application/json")
    await sc.publish("orders", payload)  # like publish_event(data=json.dumps(x)) without a type
    await sc.engine.idle()

    first, with_charset, plus_json, broken, untyped = apps.sdk_recorder.on("/events/pubsub/orders")
    assert first.event["data"] == {"qty": 12345678901234567890123, "price": 1.5, "name": "<b>"}
    # numbers are kept verbatim and <>& escaped, as Go's UseNumber + json.Marshal do
    assert b'"data":{"name":"\\u003cb\\u003e","price":1.50,"qty":12345678901234567890123}' in (first.body)
    assert with_charset.event["data"] == first.event["data"]
    assert plus_json.event["data"] == payload.decode()
    assert broken.event["data"] == "{not json"
    assert untyped.event["data"] == payload.decode()
    assert untyped.event["datacontenttype"] == "text/plain"


async def test_binary_data_goes_to_data_base64(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    blob = bytes(range(256))
    await sc.publish("orders", blob, content_type="application/octet-stream")
    await sc.publish("orders", b"\x0a\x01x", content_type="application/cloudevents+protobuf")
    await sc.engine.idle()

    octets, proto = apps.sdk_recorder.on("/events/pubsub/orders")
    assert "data" not in octets.event
    assert base64.b64decode(octets.event["data_base64"]) == blob
    assert octets.event["datacontenttype"] == "application/octet-stream"
    assert base64.b64decode(proto.event["data_base64"]) == b"\x0a\x01x"


async def test_cloudevent_metadata_overrides_and_trace_propagation(
    apps: Apps, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(apps.sdk)
    await sc.publish(
        "orders",
        b"x",
        metadata={
            "cloudevent.id": "my-id",
            "cloudevent.source": "my-source",
            "cloudevent.type": "my.type",
        },
        headers={"traceparent": TRACEPARENT, "tracestate": "vendor=1"},
    )
    await sc.publish("orders", b"y", metadata={"cloudevent.source": ""})
    await sc.publish("orders", b"z", headers={"traceparent": "00-not-a-trace"})
    await sc.engine.idle()

    overridden, emptied, bad_trace = apps.sdk_recorder.on("/events/pubsub/orders")
    event = overridden.event
    assert (event["id"], event["source"], event["type"]) == ("my-id", "my-source", "my.type")
    assert event["traceparent"] == event["traceid"] == TRACEPARENT
    assert event["tracestate"] == "vendor=1"
    assert overridden.headers["traceparent"] == TRACEPARENT
    assert overridden.headers["tracestate"] == "vendor=1"
    # an empty override falls back to daprd's default source, not the app id
    assert emptied.event["source"] == "Dapr"
    assert "traceparent" not in emptied.headers
    # an invalid traceparent is no span context: empty trace fields, like daprd
    assert bad_trace.event["traceparent"] == "" and "traceparent" not in bad_trace.headers


async def test_cloudevents_json_payload_is_the_event(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    own = {"id": "ce-1", "type": "custom.type", "topic": "ignored", "data": {"k": [1, 2]}}
    resp = await sc.publish("orders", json.dumps(own), content_type="application/cloudevents+json")
    assert resp.status_code == 204
    bad = await sc.publish("orders", b"[1, 2]", content_type="application/cloudevents+json")
    assert bad.json()["errorCode"] == "ERR_PUBSUB_CLOUD_EVENTS_SER"
    await sc.engine.idle()

    [delivery] = apps.sdk_recorder.on("/events/pubsub/orders")
    event = delivery.event
    assert (event["id"], event["type"], event["data"]) == ("ce-1", "custom.type", {"k": [1, 2]})
    assert (event["topic"], event["pubsubname"]) == ("orders", "pubsub")
    assert event["source"] == "Dapr" and event["specversion"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert event["traceid"] == event["traceparent"] == ""


async def test_raw_payload_publish_and_raw_payload_subscription(
    apps: Apps, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(apps.sdk)
    await sc.publish("raw", b"\x00raw bytes\xff", metadata={"rawPayload": "true"})
    await sc.engine.idle()

    [delivery] = apps.sdk_recorder.on("/events/pubsub/raw")
    event = delivery.event
    assert base64.b64decode(event["data_base64"]) == b"\x00raw bytes\xff"
    assert event["datacontenttype"] == "application/octet-stream"
    assert (event["source"], event["type"], event["topic"]) == ("Dapr", "com.dapr.event.sent", "raw")
    assert "traceparent" not in event and "time" not in event
    # daprd passes the in-memory message metadata (the subscription's) as headers
    assert delivery.headers["rawpayload"] == "true"


async def test_ttl_stamps_expiration(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    await sc.publish("orders", b"a", metadata={"ttlInSeconds": "90"})
    await sc.publish("orders", b"b", metadata={"ttl": "1h"})
    await sc.publish("orders", b"c", metadata={"ttlInSeconds": "soon"})  # ignored, as daprd
    await sc.engine.idle()

    seconds, duration, invalid = (d.event for d in apps.sdk_recorder.on("/events/pubsub/orders"))

    def expires_in(event: dict[str, str]) -> float:
        at = datetime.strptime(event["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return at.timestamp() - sc.clock.now()

    assert 85 <= expires_in(seconds) <= 90
    assert 3595 <= expires_in(duration) <= 3600
    assert "expiration" not in invalid


async def test_publish_errors_use_daprd_codes(apps: Apps, make_sidecar: MakeSidecar) -> None:
    scoped = BrokerSpec(
        "scoped",
        "pubsub.in-memory",
        metadata={"publishingScopes": f"{APP_ID}=allowed;other=forbidden"},
    )
    sc = await make_sidecar(apps.sdk, brokers=[BrokerSpec("pubsub", "pubsub.in-memory"), scoped])

    cases = [
        (await sc.publish("t", b"x", pubsub="nope"), 404, "ERR_PUBSUB_NOT_FOUND"),
        (await sc.client.post("/v1.0/publish/pubsub/"), 404, "ERR_TOPIC_NAME_EMPTY"),
        (await sc.client.post("/v1.0/publish//t"), 404, "ERR_PUBSUB_EMPTY"),
        (await sc.publish("t", metadata={"rawPayload": "yes"}), 400, "ERR_PUBSUB_REQUEST_METADATA"),
        (await sc.publish("forbidden", b"x", pubsub="scoped"), 403, "ERR_PUBSUB_FORBIDDEN"),
    ]
    for resp, status, code in cases:
        assert (resp.status_code, resp.json()["errorCode"]) == (status, code), resp.text
    assert cases[0][0].json()["message"] == "pubsub nope is not found"
    assert (await sc.publish("allowed", b"x", pubsub="scoped")).status_code == 204

    await sc.engine.stop()
    closed = await sc.publish("orders", b"x")
    assert (closed.status_code, closed.json()["errorCode"]) == (500, "ERR_PUBSUB_PUBLISH_MESSAGE")
    assert "component is closed" in closed.json()["message"]


async def test_topics_with_slashes_and_put(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.raw)
    apps.raw_app.subscribe_body = []
    resp = await sc.client.put("/v1.0/publish/pubsub/a/b/c", content=b"x")
    assert resp.status_code == 204
    assert (await sc.client.post("/v1.0/publish/pubsub")).status_code == 404


async def test_publishing_without_subscribers_or_app_is_accepted(
    apps: Apps, make_sidecar: MakeSidecar, tmp_path: Path
) -> None:
    no_app = await make_sidecar(None, data_dir=tmp_path / "no-app")
    assert (await no_app.publish("orders", b"x")).status_code == 204
    with_app = await make_sidecar(apps.sdk)
    assert (await with_app.publish("nobody-listens", b"x")).status_code == 204
    await with_app.engine.idle()
    assert apps.sdk_recorder.deliveries == []


async def test_bulk_publish_converts_each_entry(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    entries = [
        {"entryId": "1", "event": {"n": 1.0, "s": "x"}, "contentType": "application/json"},
        {"entryId": "2", "event": "plain", "contentType": "text/plain"},
        {
            "entryId": "3",
            "event": base64.b64encode(b"\x01\x02").decode(),
            "contentType": "application/octet-stream",
            "metadata": {"cloudevent.type": "entry.type"},
        },
    ]
    for prefix in ("/v1.0-alpha1", "/v1.0"):
        resp = await sc.client.post(
            f"{prefix}/publish/bulk/pubsub/orders",
            json=entries,
            params={"metadata.cloudevent.source": "bulk-src"},
        )
        assert resp.status_code == 204, resp.text
    await sc.engine.idle()

    events = [d.event for d in apps.sdk_recorder.on("/events/pubsub/orders")]
    assert len(events) == 6
    as_json, as_text, as_bytes = events[:3]
    assert as_json["data"] == {"n": 1, "s": "x"} and as_json["datacontenttype"] == "application/json"
    assert as_text["data"] == "plain"
    assert base64.b64decode(as_bytes["data_base64"]) == b"\x01\x02"
    # request metadata reaches only entries that carry their own metadata (daprd quirk)
    assert as_bytes["type"] == "entry.type" and as_bytes["source"] == "bulk-src"
    assert as_json["source"] == APP_ID


async def test_bulk_publish_errors(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(apps.sdk)
    url = "/v1.0-alpha1/publish/bulk/pubsub/orders"
    dup = [{"entryId": "a", "event": "x", "contentType": "text/plain"}] * 2
    missing = [{"event": "x", "contentType": "text/plain"}]
    mismatch = [{"entryId": "a", "event": {"k": 1}, "contentType": "text/plain"}]
    for body in (dup, missing, mismatch):
        resp = await sc.client.post(url, json=body)
        assert resp.json()["errorCode"] == "ERR_PUBSUB_EVENTS_SER", resp.text
    garbage = await sc.client.post(url, content=b"{")
    assert garbage.json()["errorCode"] == "ERR_PUBSUB_EVENTS_SER"

    await sc.engine.stop()
    ok = [{"entryId": "a", "event": "x", "contentType": "text/plain"}]
    failed = await sc.client.post(url, json=ok)
    assert failed.status_code == 500
    assert failed.json() == {
        "failedEntries": [{"entryId": "a", "error": "component is closed"}],
        "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE",
    }
    await sc.engine.idle()
    assert apps.sdk_recorder.deliveries == []
