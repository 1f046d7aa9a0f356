"""Streaming subscriptions across a sidecar's lifetime and beside the app's own subscriptions: a stream
open at shutdown, a topic the app subscribes to as well, and a stream reopened after acknowledgements."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from dapr.clients import DaprClient

from sidecar.pubsub.streaming import StreamTransport, stream_subscription
from tests.harness import use_sidecar, wait_for
from tests.sidecar.pubsub.apps import PUBSUB, RawApp, Recorder
from tests.sidecar.pubsub.conftest import MakeSidecar, Sidecar, serve
from tests.sidecar.pubsub.streams import (
    MEMORY,
    backlog,
    error_of,
    initial,
    next_message,
    processed,
    publish,
    start_sidecar,
)


def test_a_stream_open_at_shutdown_ends_and_its_message_waits_for_the_restart(tmp_path: Path) -> None:
    """With an app channel too: the app's subscription list (empty) does not retire the stream's group."""
    app = serve(RawApp(Recorder(), subscribe_body=[]).build())
    try:
        restart_with_a_stream_open(tmp_path, app.port)
    finally:
        app.stop()


def restart_with_a_stream_open(tmp_path: Path, app_port: int) -> None:
    thread = start_sidecar(tmp_path, app_port=app_port)
    thread.wait_ready()
    use_sidecar(thread.http_port, thread.grpc_port)
    with DaprClient(f"127.0.0.1:{thread.grpc_port}") as client:
        sub = client.subscribe(PUBSUB, "restarted")
        publish(client, "restarted", "kept")
        held = next_message(sub)
        began = time.monotonic()
        thread.stop()
        assert not thread.sidecar.pubsub.streams.subscriptions()
        assert time.monotonic() - began < 3  # the unanswered delivery did not hold the stop for its grace
        sub.close()
    thread = start_sidecar(tmp_path, app_port=app_port)
    try:
        thread.wait_ready()
        use_sidecar(thread.http_port, thread.grpc_port)
        with DaprClient(f"127.0.0.1:{thread.grpc_port}") as client:
            sub = client.subscribe(PUBSUB, "restarted")
            again = next_message(sub)
            assert (again.id(), again.data()) == (held.id(), "kept")
            sub.respond_success(again)
            wait_for(lambda: backlog(thread, "restarted") == 0)
            sub.close()
    finally:
        thread.stop()


def test_a_topic_the_app_subscribes_to_is_shared_in_memory_and_refused_durably(tmp_path: Path) -> None:
    """daprd subscribes a stream beside the app's own subscription; the durable broker has one consumer
    per app and topic, so there the stream is refused, loudly."""
    recorder = Recorder()
    app = RawApp(recorder)
    app.subscribe_body = [
        {"pubsubname": MEMORY, "topic": "shared", "route": "/shared"},
        {"pubsubname": PUBSUB, "topic": "taken", "route": "/taken"},
    ]
    served = serve(app.build())
    thread = start_sidecar(tmp_path, app_port=served.port)
    try:
        thread.wait_ready()
        use_sidecar(thread.http_port, thread.grpc_port)
        with DaprClient(f"127.0.0.1:{thread.grpc_port}") as client:
            assert "while the app subscribes to that topic too" in error_of(client, PUBSUB, "taken")
            sub = client.subscribe(MEMORY, "shared")
            try:
                publish(client, "shared", "both", MEMORY)
                assert next_message(sub).data() == "both"
                wait_for(lambda: recorder.on("/shared"))
            finally:
                sub.close()
    finally:
        thread.stop()
        served.stop()


class Opened:
    """A stream on the engine itself (its gRPC wire is the tests above), to close and reopen it with no
    round trip between: what the first one had acknowledged must not be sent again."""

    def __init__(self, sc: Sidecar, topic: str) -> None:
        self.streams = sc.engine.streams
        self.sent: asyncio.Queue[Any] = asyncio.Queue()
        sub = stream_subscription(initial(topic, PUBSUB).initial_request)
        self.transport = StreamTransport(sub, self.write)
        self.worker = self.streams.open(self.transport.sub, self.transport)
        self.worker.start()

    async def write(self, response: Any) -> None:
        await self.sent.put(response.event_message)

    async def next(self) -> Any:
        return await asyncio.wait_for(self.sent.get(), 10)

    def succeed(self, event: Any) -> None:
        self.transport.processed(processed(event.id).event_processed)


@pytest.mark.parametrize("broker_type", ["pubsub.embedded.sqlite"])
async def test_a_reopened_stream_starts_after_what_was_acknowledged(make_sidecar: MakeSidecar) -> None:
    sc = await make_sidecar(None, load=False)
    first = Opened(sc, "acked")
    for data in "ab":
        assert (await sc.publish("acked", data)).status_code == 204
    first.succeed(await first.next())
    unanswered = await first.next()  # the ack of "a" is not committed yet (acks share commits)
    await first.streams.close(first.worker)
    second = Opened(sc, "acked")
    again = await second.next()
    assert again.id == unanswered.id
    second.succeed(again)
    await sc.engine.idle()
    await second.streams.close(second.worker)
