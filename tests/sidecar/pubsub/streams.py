"""Streaming subscriptions (`SubscribeTopicEventsAlpha1`) against a real sidecar thread: its components
(durable, in-memory, scoped) and the steps the streaming tests share on the SDK's stream and the raw wire."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc.subscription import Subscription
from dapr.common.pubsub.subscription import SubscriptionMessage
from dapr.proto.runtime.v1 import appcallback_pb2, pubsub_pb2

from sidecar.thread import SidecarThread
from tests.harness import wait_for
from tests.sidecar.pubsub.apps import PUBSUB
from tests.stack import sidecar_thread

__all__ = [
    "APP_ID",
    "MEMORY",
    "SCOPED",
    "backlog",
    "closed",
    "error_of",
    "initial",
    "listed",
    "next_message",
    "processed",
    "publish",
    "start_sidecar",
]

APP_ID = "streamtest"
MEMORY = "memory"
SCOPED = "scoped"


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


def error_of(client: DaprClient, pubsub: str, topic: str) -> str:
    with pytest.raises(Exception) as caught:
        client.subscribe(pubsub, topic).close()
    return str(caught.value)


def initial(topic: str, pubsub: str = MEMORY) -> Any:
    request = pubsub_pb2.SubscribeTopicEventsRequestInitialAlpha1(pubsub_name=pubsub, topic=topic)
    return pubsub_pb2.SubscribeTopicEventsRequestAlpha1(initial_request=request)


def processed(event_id: str, status_code: int = appcallback_pb2.TopicEventResponse.SUCCESS) -> Any:
    status = appcallback_pb2.TopicEventResponse(status=status_code)  # type: ignore[arg-type]
    answer = pubsub_pb2.SubscribeTopicEventsRequestProcessedAlpha1(id=event_id, status=status)
    return pubsub_pb2.SubscribeTopicEventsRequestAlpha1(event_processed=answer)
