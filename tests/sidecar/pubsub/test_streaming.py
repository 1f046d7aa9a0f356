"""Streaming subscriptions (`SubscribeTopicEventsAlpha1`) of a real embedded sidecar, through the SDK's own
`DaprClient.subscribe` / `subscribe_with_handler` over gRPC (a raw stub for what the SDK cannot send):
delivery, SUCCESS/RETRY/DROP, redelivery after a stream closed, daprd's errors and the metadata listing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc._response import TopicEventResponse
from dapr.clients.grpc.subscription import Subscription
from dapr.common.pubsub.subscription import SubscriptionMessage
from dapr.proto.runtime.v1 import appcallback_pb2, dapr_pb2_grpc, pubsub_pb2

from sidecar.pubsub.streaming import StreamTransport, stream_subscription
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar, wait_for
from tests.sidecar.pubsub.apps import PUBSUB, RawApp, Recorder
from tests.sidecar.pubsub.conftest import MakeSidecar, Sidecar, serve
from tests.stack import sidecar_thread

APP_ID = "streamtest"
MEMORY = "memory"
SCOPED = "scoped"
TOKEN = "stream-token"


def component(name: str, type_: str, metadata: dict[str, str] | None = None) -> str:
    items = "".join(f"\n  - name: {k}\n    value: {json.dumps(v)}" for k, v in (metadata or {}).items())
    return (
        f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
        f"spec:\n  type: {type_}\n  version: v1\n  metadata:{items or ' []'}\n"
    )


def start_sidecar(data: Path, **config: Any) -> SidecarThread:
    folder = data / "components"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "durable.yaml").write_text(component(PUBSUB, "pubsub.embedded.sqlite"))
    (folder / "memory.yaml").write_text(component(MEMORY, "pubsub.in-memory"))
    scopes = {"subscriptionScopes": f"{APP_ID}=allowed"}
    (folder / "scoped.yaml").write_text(component(SCOPED, "pubsub.in-memory", scopes))
    return sidecar_thread(data, app_id=APP_ID, resources_paths=[folder], **config).start()


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    thread = start_sidecar(tmp_path_factory.mktemp("streaming"))
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def client(sidecar: SidecarThread) -> Iterator[DaprClient]:
    use_sidecar(sidecar.http_port, sidecar.grpc_port)
    with DaprClient(f"127.0.0.1:{sidecar.grpc_port}") as dapr:
        yield dapr


def next_message(sub: Subscription, timeout: float = 10.0) -> SubscriptionMessage:
    """The stream's next message; fails the test (closing the stream) when none comes in `timeout` s."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(sub.next_message)
        try:
            return pending.result(timeout)
        except concurrent.futures.TimeoutError:
            sub.close()
            raise AssertionError(f"no message within {timeout}s") from None


def publish(client: DaprClient, topic: str, data: Any, pubsub: str = PUBSUB) -> None:
    client.publish_event(pubsub, topic, json.dumps(data), data_content_type="application/json")


def listed(sidecar: SidecarThread) -> list[dict[str, Any]]:
    meta = httpx.get(f"http://127.0.0.1:{sidecar.http_port}/v1.0/metadata").json()
    return [s for s in meta.get("subscriptions", []) if s["type"] == "STREAMING"]


def backlog(sidecar: SidecarThread, topic: str) -> int:
    return sidecar.sidecar.pubsub.pending().get((PUBSUB, topic), 0)


def closed(sidecar: SidecarThread, sub: Subscription, topic: str) -> None:
    """Close `sub` and wait until the sidecar has ended its subscription."""
    sub.close()
    wait_for(lambda: all(s["topic"] != topic for s in listed(sidecar)))


def test_a_published_event_arrives_as_daprds_topic_event_request(
    sidecar: SidecarThread, client: DaprClient
) -> None:
    sub = client.subscribe(PUBSUB, "orders", metadata={"team": "a"})
    try:
        publish(client, "orders", {"order": 1})
        msg = next_message(sub)
        assert msg.data() == {"order": 1}
        assert (msg.topic(), msg.pubsub_name(), msg.source()) == ("orders", PUBSUB, APP_ID)
        assert (msg.type(), msg.spec_version(), msg.data_content_type()) == (
            "com.dapr.event.sent",
            "1.0",
            "application/json",
        )
        assert msg.id()
        extensions = msg.extensions()
        assert (extensions["pubsubname"], extensions["topic"]) == (PUBSUB, "orders")
        assert {"time", "traceid", "traceparent", "tracestate"} <= extensions.keys()
        assert listed(sidecar) == [
            {
                "pubsubname": PUBSUB,
                "topic": "orders",
                "metadata": {"team": "a"},
                "rules": [{"path": "/"}],
                "deadLetterTopic": "",
                "type": "STREAMING",
            }
        ]
        sub.respond_success(msg)
        wait_for(lambda: backlog(sidecar, "orders") == 0)
    finally:
        closed(sidecar, sub, "orders")


def test_retry_redelivers_and_success_acknowledges(sidecar: SidecarThread, client: DaprClient) -> None:
    sub = client.subscribe(PUBSUB, "retried")
    try:
        publish(client, "retried", "once")
        first = next_message(sub)
        sub.respond_retry(first)
        again = next_message(sub)
        assert (again.id(), again.data()) == (first.id(), "once")
        sub.respond_success(again)
        wait_for(lambda: backlog(sidecar, "retried") == 0)
        publish(client, "retried", "next")
        assert next_message(sub).data() == "next"  # the retried one is not sent a third time
    finally:
        closed(sidecar, sub, "retried")


def test_drop_goes_to_the_dead_letter_topic(sidecar: SidecarThread, client: DaprClient) -> None:
    dead = client.subscribe(PUBSUB, "dropped-dlq")
    sub = client.subscribe(PUBSUB, "dropped", dead_letter_topic="dropped-dlq")
    try:
        assert [s["deadLetterTopic"] for s in listed(sidecar) if s["topic"] == "dropped"] == ["dropped-dlq"]
        publish(client, "dropped", {"bad": True})
        msg = next_message(sub)
        sub.respond_drop(msg)
        lost = next_message(dead)
        assert (lost.id(), lost.data(), lost.topic()) == (msg.id(), {"bad": True}, "dropped-dlq")
        assert lost.extensions()["topic"] == "dropped"  # the original event, as published
        dead.respond_success(lost)
        wait_for(lambda: backlog(sidecar, "dropped") == 0 and backlog(sidecar, "dropped-dlq") == 0)
    finally:
        closed(sidecar, sub, "dropped")
        closed(sidecar, dead, "dropped-dlq")


def test_an_unacknowledged_message_goes_to_the_next_stream(
    sidecar: SidecarThread, client: DaprClient
) -> None:
    first = client.subscribe(PUBSUB, "handover")
    for data in "abc":
        publish(client, "handover", data)
    first.respond_success(next_message(first))
    unanswered = next_message(first)  # "a" was acknowledged just before: its ack may not be stored yet
    closed(sidecar, first, "handover")
    assert backlog(sidecar, "handover") == 2
    second = client.subscribe(PUBSUB, "handover")
    try:
        again = next_message(second)
        assert (again.id(), again.data()) == (unanswered.id(), "b")
        second.respond_success(again)
        following = next_message(second)
        assert following.data() == "c"
        second.respond_success(following)
        wait_for(lambda: backlog(sidecar, "handover") == 0)
    finally:
        closed(sidecar, second, "handover")


def test_in_memory_loses_what_a_closed_stream_did_not_acknowledge(
    sidecar: SidecarThread, client: DaprClient
) -> None:
    first = client.subscribe(MEMORY, "volatile")
    publish(client, "volatile", "lost", MEMORY)
    assert next_message(first).data() == "lost"
    closed(sidecar, first, "volatile")
    second = client.subscribe(MEMORY, "volatile")
    try:
        publish(client, "volatile", "kept", MEMORY)
        assert next_message(second).data() == "kept"
    finally:
        closed(sidecar, second, "volatile")


def test_subscribe_with_handler_answers_with_the_handlers_status(
    sidecar: SidecarThread, client: DaprClient
) -> None:
    seen: list[Any] = []
    lock = threading.Lock()

    def handler(message: SubscriptionMessage) -> TopicEventResponse:
        with lock:
            seen.append(message.data())
            first_try = seen.count(message.data()) == 1
        return TopicEventResponse("retry" if message.data() == 2 and first_try else "success")

    close = client.subscribe_with_handler(PUBSUB, "handled", handler)
    try:
        for n in range(3):
            publish(client, "handled", n)
        wait_for(lambda: backlog(sidecar, "handled") == 0 and len(seen) == 4)
        assert seen == [0, 1, 2, 2]
    finally:
        close()
        wait_for(lambda: all(s["topic"] != "handled" for s in listed(sidecar)))


def error_of(client: DaprClient, pubsub: str, topic: str) -> str:
    with pytest.raises(Exception) as caught:
        client.subscribe(pubsub, topic).close()
    return str(caught.value)


def test_daprds_errors_for_a_bad_initial_request(sidecar: SidecarThread, client: DaprClient) -> None:
    assert "pubsub nope is not found" in error_of(client, "nope", "t")
    assert "INVALID_ARGUMENT" in error_of(client, "nope", "t")
    assert "topic is required" in error_of(client, PUBSUB, "")
    assert "pubsubName is required" in error_of(client, "", "t")
    assert (
        "failed to create subscription for scoped: subscription to topic 'other' on pubsub 'scoped' "
        "is not allowed" in error_of(client, SCOPED, "other")
    )
    assert listed(sidecar) == []


def test_a_second_stream_for_the_same_topic_is_refused(sidecar: SidecarThread, client: DaprClient) -> None:
    sub = client.subscribe(MEMORY, "single")
    try:
        refused = error_of(client, MEMORY, "single")
        assert 'streamer already subscribed to pubsub "memory" topic "single"' in refused
        publish(client, "single", "still served", MEMORY)
        assert next_message(sub).data() == "still served"
    finally:
        closed(sidecar, sub, "single")


def initial(topic: str, pubsub: str = MEMORY) -> Any:
    request = pubsub_pb2.SubscribeTopicEventsRequestInitialAlpha1(pubsub_name=pubsub, topic=topic)
    return pubsub_pb2.SubscribeTopicEventsRequestAlpha1(initial_request=request)


def processed(event_id: str, status_code: int = appcallback_pb2.TopicEventResponse.SUCCESS) -> Any:
    status = appcallback_pb2.TopicEventResponse(status=status_code)  # type: ignore[arg-type]
    answer = pubsub_pb2.SubscribeTopicEventsRequestProcessedAlpha1(id=event_id, status=status)
    return pubsub_pb2.SubscribeTopicEventsRequestAlpha1(event_processed=answer)


def raw_call(
    sidecar: SidecarThread, requests: list[Any], metadata: Any = ()
) -> tuple[list[Any], grpc.RpcError]:
    """Send `requests` on a raw stream and read until it fails; returns the responses and the error."""
    with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        call = stub.SubscribeTopicEventsAlpha1(iter(requests), metadata=metadata, timeout=10)
        responses = []
        with pytest.raises(grpc.RpcError) as caught:
            responses.extend(call)
        return responses, caught.value


def test_the_first_message_must_be_the_initial_request_and_the_only_one(sidecar: SidecarThread) -> None:
    responses, failure = raw_call(sidecar, [processed("x")])
    assert (failure.code(), failure.details()) == (grpc.StatusCode.UNKNOWN, "initial request is required")
    assert responses == []
    responses, failure = raw_call(sidecar, [initial("twice"), initial("twice")])
    assert failure.code() == grpc.StatusCode.UNKNOWN
    assert failure.details() == "duplicate initial request received"
    assert [r.WhichOneof("subscribe_topic_events_response_type") for r in responses] == ["initial_response"]
    wait_for(lambda: listed(sidecar) == [])


def test_events_go_to_daprds_default_path_and_an_unknown_status_is_retried(
    sidecar: SidecarThread, client: DaprClient
) -> None:
    outgoing: queue.Queue[Any] = queue.Queue()
    outgoing.put(initial("raw"))

    def requests() -> Iterator[Any]:
        while (request := outgoing.get(timeout=10)) is not None:
            yield request

    with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        call = stub.SubscribeTopicEventsAlpha1(requests(), timeout=10)
        assert next(call).WhichOneof("subscribe_topic_events_response_type") == "initial_response"
        publish(client, "raw", {"x": 1}, MEMORY)
        event = next(call).event_message
        assert (event.path, event.topic, event.pubsub_name) == ("/", "raw", MEMORY)
        assert (event.data_content_type, json.loads(event.data)) == ("application/json", {"x": 1})
        outgoing.put(processed(event.id, 7))  # no such status: daprd retries
        assert next(call).event_message.id == event.id
        outgoing.put(processed(event.id))
        outgoing.put(None)  # the client closes its side: the stream ends without an error
        assert list(call) == []
    wait_for(lambda: listed(sidecar) == [])


def test_the_api_token_guards_the_stream(tmp_path: Path) -> None:
    thread = start_sidecar(tmp_path, api_token=TOKEN)
    try:
        _, failure = raw_call(thread, [initial("guarded")])
        assert failure.code() == grpc.StatusCode.UNAUTHENTICATED
        use_sidecar(thread.http_port, thread.grpc_port, TOKEN)
        with DaprClient(f"127.0.0.1:{thread.grpc_port}") as client:
            sub = client.subscribe(MEMORY, "guarded")
            try:
                publish(client, "guarded", "let in", MEMORY)
                assert next_message(sub).data() == "let in"
            finally:
                sub.close()
    finally:
        thread.stop()


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
