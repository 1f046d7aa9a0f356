"""The durable broker (`pubsub.embedded.sqlite`): messages survive sidecar restarts and an app that is down,
for every subscription known from an earlier run, until the subscriber acknowledged them."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.components import ComponentError, load_components
from sidecar.pubsub import BrokerSpec, DeclarativeSubscription
from tests.harness import ServedApp, bound_socket, wait_for, wait_for_async
from tests.sidecar.pubsub.apps import PUBSUB, BulkApp, RawApp, Recorder
from tests.sidecar.pubsub.conftest import MakeSidecar, Sidecar, serve
from tests.stack import SidecarProcess

DURABLE = [BrokerSpec(PUBSUB, "pubsub.embedded.sqlite")]
STREAM = [
    {"pubsubname": PUBSUB, "topic": "stream", "route": "/stream", "deadLetterTopic": "stream-dlq"},
    {"pubsubname": PUBSUB, "topic": "stream-dlq", "route": "/stream-dlq"},
]


def raw_app(recorder: Recorder, subscriptions: list[dict[str, Any]] = STREAM) -> Any:
    app = RawApp(recorder)
    app.subscribe_body = subscriptions
    return serve(app.build())


def unreachable_port() -> int:
    """A port nothing listens on (the app is down)."""
    sock = bound_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def data_of(recorder: Recorder, path: str) -> list[str]:
    return [d.event["data"] for d in recorder.on(path)]


async def stop(sc: Sidecar) -> None:
    await sc.client.aclose()
    await sc.engine.stop()


async def test_published_while_the_app_was_never_up_is_delivered_after_a_restart(
    make_sidecar: MakeSidecar, tmp_path: Path
) -> None:
    decl = DeclarativeSubscription("s", PUBSUB, "stream", {"default": "/stream"})
    first = await make_sidecar(unreachable_port(), brokers=DURABLE, declarative=[decl], load=False)
    assert (await first.publish("stream", "kept")).status_code == 204
    assert first.engine.busy() and first.engine.pending() == {(PUBSUB, "stream"): 1}
    await stop(first)

    recorder = Recorder()
    app = raw_app(recorder, [])
    try:
        second = await make_sidecar(app, brokers=DURABLE, declarative=[decl])
        await second.engine.idle()
        assert data_of(recorder, "/stream") == ["kept"]
        assert not second.engine.busy() and second.engine.pending() == {(PUBSUB, "stream"): 0}
    finally:
        app.stop()


async def test_subscription_known_from_an_earlier_run_keeps_messages_until_loaded(
    make_sidecar: MakeSidecar,
) -> None:
    recorder = Recorder()
    app = raw_app(recorder)
    try:
        first = await make_sidecar(app, brokers=DURABLE)
        await stop(first)  # the app's subscriptions are now known

        second = await make_sidecar(app, brokers=DURABLE, load=False)  # /dapr/subscribe not read yet
        for i in range(5):
            assert (await second.publish("stream", str(i))).status_code == 204
        assert second.engine.pending()[(PUBSUB, "stream")] == 5 and recorder.on("/stream") == []
        await second.engine.load_subscriptions()
        await second.engine.idle()
        assert data_of(recorder, "/stream") == ["0", "1", "2", "3", "4"]

        await stop(second)
        third = await make_sidecar(app, brokers=DURABLE)
        await third.engine.idle()
        assert len(recorder.on("/stream")) == 5  # acknowledged: not redelivered
    finally:
        app.stop()


async def test_a_subscription_the_app_dropped_is_forgotten(
    make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    app = raw_app(recorder)
    other = raw_app(recorder, [STREAM[1]])
    try:
        await stop(await make_sidecar(app, brokers=DURABLE))
        sc = await make_sidecar(other, brokers=DURABLE, load=False)
        await sc.publish("stream", "orphan")
        with caplog.at_level(logging.WARNING, logger="sidecar.pubsub"):
            await sc.engine.load_subscriptions()
        assert any("no longer subscribes to topic stream" in r.getMessage() for r in caplog.records)
        assert (PUBSUB, "stream") not in sc.engine.pending() and not sc.engine.busy()
    finally:
        app.stop()
        other.stop()


async def test_an_error_from_dapr_subscribe_forgets_nothing(make_sidecar: MakeSidecar) -> None:
    recorder = Recorder()
    failing = RawApp(recorder, subscribe_body=STREAM)
    app = serve(failing.build())
    try:
        await stop(await make_sidecar(app, brokers=DURABLE))
        failing.subscribe_status = 500
        sc = await make_sidecar(app, brokers=DURABLE, load=False)
        await sc.publish("stream", "kept")
        await sc.engine.load_subscriptions()
        assert sc.engine.pending()[(PUBSUB, "stream")] == 1 and recorder.on("/stream") == []
    finally:
        app.stop()


async def test_app_down_uses_no_attempt_and_delivery_resumes_when_it_is_back(
    make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    app = raw_app(recorder)
    port = app.port
    sc = await make_sidecar(app, brokers=DURABLE)
    app.stop()  # subscriptions are loaded; now the app is gone
    with caplog.at_level(logging.DEBUG, logger="sidecar.pubsub.delivery"):
        for i in range(3):
            assert (await sc.publish("stream", str(i))).status_code == 204

        def tries() -> int:
            return sum("app unreachable" in r.getMessage() for r in caplog.records)

        # more tries than the retry policy's 3 attempts, and nothing given up or dead-lettered
        await wait_for_async(lambda: tries() > 4)
    assert sc.engine.pending() == {(PUBSUB, "stream"): 3, (PUBSUB, "stream-dlq"): 0}
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    again = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind(("127.0.0.1", port))  # the app restarts on its port
    served = ServedApp(RawApp(recorder, subscribe_body=STREAM).build(), again).start()
    try:
        await sc.engine.idle()
        assert data_of(recorder, "/stream") == ["0", "1", "2"]
        assert recorder.on("/stream-dlq") == []
    finally:
        served.stop()


async def test_app_failures_follow_the_retry_policy_then_dead_letter_durably(
    make_sidecar: MakeSidecar, tmp_path: Path
) -> None:
    recorder = Recorder()
    app = raw_app(recorder)
    try:
        sc = await make_sidecar(app, brokers=DURABLE)
        recorder.script("/stream", (500, "boom"), (200, '{"status":"RETRY"}'))
        await sc.publish("stream", "recovers")  # third attempt succeeds (FAST_RETRY: 3 attempts)
        await sc.engine.idle()
        assert data_of(recorder, "/stream") == ["recovers"] * 3
        recorder.script("/stream", *[(500, "boom")] * 3)
        await sc.publish("stream", "dead")
        await sc.engine.idle()
        assert data_of(recorder, "/stream-dlq") == ["dead"]
        await stop(sc)
        again = await make_sidecar(app, brokers=DURABLE)
        await again.engine.idle()
        # all acknowledged (delivered or dead-lettered): nothing comes back after a restart
        assert len(recorder.on("/stream")) == 6 and len(recorder.on("/stream-dlq")) == 1
    finally:
        app.stop()


async def test_bulk_entries_are_kept_until_each_is_acknowledged(make_sidecar: MakeSidecar) -> None:
    recorder = Recorder()
    bulk = BulkApp(recorder)
    app = serve(bulk.build())
    try:
        await stop(await make_sidecar(app, brokers=DURABLE))  # the bulk subscriptions are known
        down = await make_sidecar(unreachable_port(), brokers=DURABLE, load=False)
        for i in range(6):
            assert (await down.publish("bulk", str(i))).status_code == 204
        await stop(down)

        bulk.verdict = lambda entry: "SUCCESS" if int(entry["event"]["data"]) % 2 else "RETRY"
        sc = await make_sidecar(app, brokers=DURABLE)
        await sc.engine.idle()
        delivered = [e["event"]["data"] for d in recorder.on("/bulk") for e in d.event["entries"]]
        assert sorted(set(delivered)) == [str(i) for i in range(6)]
        # the odd entries succeeded at once, the even ones were retried, then dead-lettered
        assert sorted(data_of(recorder, "/bulk-dlq")) == ["0", "2", "4"]
        await stop(sc)
        count = len(recorder.deliveries)
        await (await make_sidecar(app, brokers=DURABLE)).engine.idle()
        assert len(recorder.deliveries) == count  # every entry was acknowledged
    finally:
        app.stop()


def _sidecar_process(data: Path, app_port: int) -> SidecarProcess:
    """`python -m sidecar` with the default components (the durable broker), killable with SIGKILL."""
    return SidecarProcess(data, app_id="durable", app_port=app_port, log_level="error").start()


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_after_kill_9(tmp_path: Path) -> None:
    recorder = Recorder()
    app = raw_app(recorder)
    acknowledged: list[str] = []
    first = _sidecar_process(tmp_path, app.port)

    def publish(worker: int) -> None:
        with httpx.Client(base_url=first.url, timeout=5) as client:
            for i in range(10_000):
                try:
                    resp = client.post("/v1.0/publish/pubsub/stream", content=f"{worker}-{i}")
                except httpx.TransportError:
                    return  # killed
                if resp.status_code == 204:
                    acknowledged.append(f"{worker}-{i}")

    try:
        wait_for(lambda: httpx.get(f"{first.url}/v1.0/metadata").json().get("subscriptions"), timeout=30)
        held = recorder.gates["/stream"] = threading.Event()  # the app is stuck: a backlog builds up
        publishers = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
        for thread in publishers:
            thread.start()
        wait_for(lambda: len(acknowledged) >= 300, timeout=60)
        first.kill9()  # publishes and deliveries in flight right now
        for thread in publishers:
            thread.join(timeout=30)
        kept = set(acknowledged)
        assert len(kept) >= 300 and len(recorder.on("/stream")) < len(kept) // 2
        held.set()
        second = _sidecar_process(tmp_path, app.port)
        try:
            wait_for(lambda: set(data_of(recorder, "/stream")) >= kept, timeout=60)
        finally:
            second.stop()
    finally:
        first.kill9()
        app.stop()


COMPONENT = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: events
spec:
  type: pubsub.embedded.sqlite
  version: v1
  metadata:
    - name: dbFile
      value: {db_file}
    - name: somethingElse
      value: ignored
"""


async def test_component_file_and_db_file_metadata(tmp_path: Path, make_sidecar: MakeSidecar) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "events.yaml").write_text(COMPONENT.format(db_file="'.'"))
    with pytest.raises(ComponentError, match=r"events\.yaml.*dbFile '\.' is not a file name"):
        load_components([resources], app_id="a", data_dir=tmp_path)
    (resources / "events.yaml").write_text(COMPONENT.format(db_file="queues/events.db"))
    spec = load_components([resources], app_id="a", data_dir=tmp_path).pubsubs["events"]
    sc = await make_sidecar(None, brokers=[BrokerSpec(spec.name, spec.type, spec.version, spec.metadata)])
    sc.engine.validate("events", "t", {})
    assert (tmp_path / "queues" / "events.db").exists()


@pytest.mark.parametrize(("retention", "kept"), [("", True), ("0", False)])
async def test_published_before_any_subscription_existed(
    make_sidecar: MakeSidecar, retention: str, kept: bool
) -> None:
    """A first run: nothing is known yet. The message waits (unclaimedRetention, default 1h) for the
    subscription that appears; with a retention of 0 it is dropped, as `pubsub.in-memory` does."""
    spec = [BrokerSpec(PUBSUB, "pubsub.embedded.sqlite", metadata={"unclaimedRetention": retention})]
    if not retention:
        spec = DURABLE
    first = await make_sidecar(unreachable_port(), brokers=spec, load=False)
    assert (await first.publish("stream", "early")).status_code == 204
    assert first.engine.pending() == {} and not first.engine.busy()  # nobody to acknowledge it yet
    await stop(first)
    recorder = Recorder()
    app = raw_app(recorder)
    try:
        second = await make_sidecar(app, brokers=spec)
        await second.engine.idle()
        assert data_of(recorder, "/stream") == (["early"] if kept else [])
    finally:
        app.stop()
