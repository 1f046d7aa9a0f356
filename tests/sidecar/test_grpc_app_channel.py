"""`--app-protocol grpc`: an app built on the SDK's `dapr.ext.grpc.App` under a real embedded sidecar (own
thread, dev clock, real SQLite): its subscriptions get published events with SUCCESS/RETRY/DROP answers
(durable and in-memory brokers), its cron binding ticks as the dev clock advances, its jobs trigger, and app
health checks pause and resume deliveries; a bulk subscriber gets `OnBulkTopicEvent`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dapr.clients.grpc._request import JobEvent
from dapr.clients.grpc._response import TopicEventResponse
from dapr.ext.grpc import App, BindingRequest
from dapr.proto.runtime.v1 import appcallback_pb2 as callback_pb2
from dapr.proto.runtime.v1 import appcallback_pb2_grpc as callback_grpc

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import wait_for
from tests.stack import sidecar_thread

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Recorded:
    events: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    ticks: list[dict[str, str]] = field(default_factory=list)
    jobs: list[tuple[str, bytes]] = field(default_factory=list)
    answers: dict[str, list[str]] = field(default_factory=dict)  # event key -> statuses to answer, in turn
    healthy: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, topic: str) -> list[dict[str, Any]]:
        with self.lock:
            return [data for t, data, _ in self.events if t == topic]


def build_app(rec: Recorded) -> App:
    app = App()

    def record(topic: str, event: Any) -> TopicEventResponse:
        data = json.loads(event.data)
        metadata = dict(event.extensions or {})
        with rec.lock:
            rec.events.append((topic, data, metadata))
            pending = rec.answers.get(data.get("key", ""), [])
            answer = pending.pop(0) if pending else "success"
        return TopicEventResponse(answer)

    @app.subscribe(pubsub_name="pubsub", topic="orders", dead_letter_topic="orders-dead")
    def orders(event: Any) -> TopicEventResponse:
        return record("orders", event)

    @app.subscribe(pubsub_name="pubsub", topic="orders-dead")
    def dead(event: Any) -> TopicEventResponse:
        return record("orders-dead", event)

    @app.binding("housekeeping")
    def housekeeping(request: BindingRequest) -> None:
        with rec.lock:
            rec.ticks.append(dict(request.binding_metadata))

    @app.job_event("nightly")
    def nightly(job: JobEvent) -> None:
        with rec.lock:
            rec.jobs.append((job.name, job.data))

    def health() -> None:
        if not rec.healthy:
            raise RuntimeError("unhealthy on purpose")

    app.register_health_check(health)
    return app


@dataclass
class Running:
    sidecar: SidecarThread
    rec: Recorded

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.sidecar.http_port}", timeout=30)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        with self.http() as http:
            r = http.post(f"/v1.0/publish/pubsub/{topic}", json=data)
            assert r.status_code == 204, r.text

    def metadata(self) -> dict[str, Any]:
        with self.http() as http:
            body: dict[str, Any] = http.get("/v1.0/metadata").json()
            return body


def _run(tmp_path: Path, **extra: Any) -> Iterator[Running]:
    rec = Recorded()
    app = build_app(rec)
    port = _free_port()
    thread = threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True)
    thread.start()
    sidecar = sidecar_thread(
        tmp_path,
        app_id="grpc-app",
        app_port=port,
        app_protocol="grpc",
        dev_clock=True,
        clock=ManualClock(),
        **extra,
    ).start()
    try:
        sidecar.wait_ready()
        yield Running(sidecar, rec)
    finally:
        sidecar.stop()
        app.stop()
        thread.join(10)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    yield from _run(tmp_path)


@pytest.fixture
def health_checked(tmp_path: Path) -> Iterator[Running]:
    yield from _run(
        tmp_path,
        app_health_check=True,
        app_health_probe_interval=0.05,
        app_health_probe_timeout=0.05,
        app_health_threshold=2,
    )


def test_subscriptions_are_listed_over_grpc(running: Running) -> None:
    meta = running.metadata()
    topics = {(s["pubsubname"], s["topic"]) for s in meta["subscriptions"]}
    assert topics == {("pubsub", "orders"), ("pubsub", "orders-dead")}
    assert meta["appConnectionProperties"]["protocol"] == "grpc"


def test_success_retry_and_drop_over_on_topic_event(running: Running) -> None:
    running.rec.answers = {"r": ["retry", "retry"], "d": ["drop"]}
    running.publish("orders", {"key": "s"})
    running.publish("orders", {"key": "r"})
    running.publish("orders", {"key": "d"})
    # RETRY twice, then delivered; DROP goes to the dead-letter topic, as daprd's gRPC postman does
    wait_for(lambda: [d["key"] for d in running.rec.of("orders-dead")] == ["d"])
    wait_for(lambda: [d["key"] for d in running.rec.of("orders")].count("r") == 3)
    keys = [d["key"] for d in running.rec.of("orders")]
    assert keys.count("s") == 1 and keys.count("d") == 1
    with running.rec.lock:
        _, _, metadata = running.rec.events[0]
    assert metadata["pubsubname"] == "pubsub" and metadata["topic"] == "orders"


def test_cron_binding_ticks_over_on_binding_event(running: Running) -> None:
    assert not running.rec.ticks
    with running.http() as http:
        assert http.post("/v1.0-dev/clock/advance", json={"seconds": 6 * 3600 + 1}).status_code == 200
    wait_for(lambda: running.rec.ticks)
    assert set(running.rec.ticks[0]) >= {"timeZone", "readTimeUTC"}


def test_job_triggers_over_on_job_event(running: Running) -> None:
    with running.http() as http:
        r = http.post("/v1.0-alpha1/jobs/nightly", json={"dueTime": "10s", "data": {"n": 1}})
        assert r.status_code == 204, r.text
        assert http.post("/v1.0-dev/clock/advance", json={"seconds": 11}).status_code == 200
    wait_for(lambda: running.rec.jobs)
    assert running.rec.jobs[0][0] == "nightly"


def test_unhealthy_app_pauses_deliveries_until_healthy_again(health_checked: Running) -> None:
    run = health_checked
    health = lambda: run.metadata()["appConnectionProperties"]["health"]  # noqa: E731
    wait_for(lambda: health()["status"] == "HEALTHY")
    assert health()["healthThreshold"] == 2 and health()["healthProbeInterval"] == "50ms"
    run.publish("orders", {"key": "before"})
    wait_for(lambda: run.rec.of("orders"))
    run.rec.healthy = False
    wait_for(lambda: health()["status"] == "UNHEALTHY")
    run.publish("orders", {"key": "while-down"})
    probes = run.sidecar.call(_probes(run))
    wait_for(lambda: run.sidecar.call(_probes(run)) >= probes + 5)  # five more probes, still paused
    assert [d["key"] for d in run.rec.of("orders")] == ["before"]
    run.rec.healthy = True
    wait_for(lambda: [d["key"] for d in run.rec.of("orders")] == ["before", "while-down"])


async def _probes(run: Running) -> int:
    health = run.sidecar.sidecar.app_health
    assert health is not None
    return health.probes


class BulkApp(callback_grpc.AppCallbackServicer):
    """A gRPC app that subscribes in bulk (the SDK's App cannot) and answers RETRY once for key "again"."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, dict[str, Any]]]] = []
        self.retried = False

    def ListTopicSubscriptions(self, request: Any, context: Any) -> Any:
        bulk = callback_pb2.BulkSubscribeConfig(enabled=True, max_messages_count=3, max_await_duration_ms=50)
        sub = callback_pb2.TopicSubscription(pubsub_name="pubsub", topic="bulk", bulk_subscribe=bulk)
        sub.routes.default = "/bulk"
        return callback_pb2.ListTopicSubscriptionsResponse(subscriptions=[sub])

    def OnBulkTopicEvent(self, request: Any, context: Any) -> Any:
        status = callback_pb2.TopicEventResponse.TopicEventResponseStatus
        batch, statuses = [], []
        for entry in request.entries:
            data = json.loads(entry.cloud_event.data)
            batch.append((request.path, data))
            again = data["key"] == "again" and not self.retried
            self.retried = self.retried or again
            statuses.append(
                callback_pb2.TopicEventBulkResponseEntry(
                    entry_id=entry.entry_id, status=status.RETRY if again else status.SUCCESS
                )
            )
        self.batches.append(batch)
        return callback_pb2.TopicEventBulkResponse(statuses=statuses)


def test_bulk_subscription_over_on_bulk_topic_event(tmp_path: Path) -> None:
    bulk_app = BulkApp()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    callback_grpc.add_AppCallbackServicer_to_server(bulk_app, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sidecar = sidecar_thread(tmp_path, app_port=port, app_protocol="grpc").start()
    try:
        sidecar.wait_ready()
        run = Running(sidecar, Recorded())
        for key in ("one", "again", "two"):
            run.publish("bulk", {"key": key})
        delivered = lambda: [d["key"] for b in bulk_app.batches for _, d in b]  # noqa: E731
        wait_for(lambda: sorted(delivered()) == ["again", "again", "one", "two"])
        assert {path for b in bulk_app.batches for path, _ in b} == {"/bulk"}
    finally:
        sidecar.stop()
        server.stop(0)
