"""Streaming subscriptions (`SubscribeTopicEventsAlpha1`) of a real embedded sidecar, through the SDK's own
`DaprClient.subscribe` / `subscribe_with_handler` over gRPC: delivery, SUCCESS/RETRY/DROP, redelivery after
a stream closed and the metadata listing."""

from __future__ import annotations

import threading
from typing import Any

from dapr.clients import DaprClient
from dapr.clients.grpc._response import TopicEventResponse
from dapr.common.pubsub.subscription import SubscriptionMessage

from sidecar.thread import SidecarThread
from tests.harness import wait_for
from tests.sidecar.pubsub.apps import PUBSUB
from tests.sidecar.pubsub.streams import APP_ID, MEMORY, backlog, closed, listed, next_message, publish


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
