"""daprd's wire contract for streaming subscriptions: the errors of a bad initial request, streams sharing a
topic, the raw `SubscribeTopicEventsAlpha1` exchange (a raw stub for what the SDK cannot send) and the API
token guarding it."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.clients import DaprClient
from dapr.proto.runtime.v1 import dapr_pb2_grpc

from sidecar.thread import SidecarThread
from tests.harness import use_sidecar, wait_for
from tests.sidecar.pubsub.apps import PUBSUB
from tests.sidecar.pubsub.streams import (
    MEMORY,
    SCOPED,
    closed,
    error_of,
    initial,
    listed,
    next_message,
    processed,
    publish,
    start_sidecar,
)

TOKEN = "stream-token"


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


def test_several_streams_on_one_topic_each_get_every_message_in_memory(
    sidecar: SidecarThread, client: DaprClient
) -> None:
    """daprd 1.16: a topic may have several streams; daprd's in-memory bus gives each one every message."""
    first, second = client.subscribe(MEMORY, "fanout"), client.subscribe(MEMORY, "fanout")
    try:
        assert [s["topic"] for s in listed(sidecar)].count("fanout") == 2
        publish(client, "fanout", "to both", MEMORY)
        for sub in (first, second):
            message = next_message(sub)
            assert message.data() == "to both"
            sub.respond_success(message)
        first.close()
        wait_for(lambda: [s["topic"] for s in listed(sidecar)].count("fanout") == 1)
        publish(client, "fanout", "to the one left", MEMORY)
        assert next_message(second).data() == "to the one left"
    finally:
        first.close()
        closed(sidecar, second, "fanout")


def test_a_second_stream_on_a_durable_topic_is_refused(sidecar: SidecarThread, client: DaprClient) -> None:
    """A durable group has one consumer: a second stream on it is refused, naming why."""
    sub = client.subscribe(PUBSUB, "single")
    try:
        refused = error_of(client, PUBSUB, "single")
        assert 'streamer already subscribed to pubsub "pubsub" topic "single"' in refused
        assert "one consumer per app and topic" in refused
        publish(client, "single", "still served")
        assert next_message(sub).data() == "still served"
    finally:
        closed(sidecar, sub, "single")


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
