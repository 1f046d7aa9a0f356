"""The transactional outbox over the real embedded sidecar: transactions over HTTP and gRPC (the SDK)
publish daprd's CloudEvents to a real subscriber app only when they commit, and survive a stop before
the relay ran."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sidecar.server import Sidecar
from tests.harness import ServedApp, bound_socket, use_sidecar, wait_for_async
from tests.stack import SidecarProcess, sidecar_config

APP_ID = "outboxtest"

PUBSUB = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: mypubsub
spec:
  type: pubsub.in-memory
  version: v1
"""


def store_yaml(store_type: str = "state.sqlite", *, publish_pubsub: str = "mypubsub", extra: str = "") -> str:
    connection = "\n  - name: connectionString\n    value: state.db" if store_type == "state.sqlite" else ""
    return f"""
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: mystore
spec:
  type: {store_type}
  version: v1
  metadata:{connection}
  - name: outboxPublishPubsub
    value: "{publish_pubsub}"
  - name: outboxPublishTopic
    value: "test"{extra}
"""


class Subscriber:
    """An app subscribed to `mypubsub/test` on `/test`; records each delivered CloudEvent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def build(self) -> Starlette:
        async def subscribe(request: Request) -> Response:
            return JSONResponse([{"pubsubname": "mypubsub", "topic": "test", "route": "/test"}])

        async def deliver(request: Request) -> Response:
            event = json.loads(await request.body())
            with self.lock:
                self.events.append(event)
            return JSONResponse({"status": "SUCCESS"})

        return Starlette(
            routes=[Route("/dapr/subscribe", subscribe), Route("/test", deliver, methods=["POST"])]
        )

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ServedApp, Subscriber]]:
    subscriber = Subscriber()
    app = ServedApp(subscriber.build(), lifespan="off").start()
    yield app, subscriber
    app.stop()


@pytest.fixture
def subscriber(served: tuple[ServedApp, Subscriber]) -> Subscriber:
    with served[1].lock:
        served[1].events.clear()
    return served[1]


StartSidecar = Callable[..., Awaitable[Sidecar]]


@pytest.fixture
async def start_sidecar(tmp_path: Path, served: tuple[ServedApp, Subscriber]) -> AsyncIterator[StartSidecar]:
    running: list[Sidecar] = []

    async def start(*resources: str, hold_outbox: bool = False, ready: bool = True) -> Sidecar:
        folder = tmp_path / "resources"
        folder.mkdir(exist_ok=True)
        for i, text in enumerate(resources):
            (folder / f"{i}.yaml").write_text(text)
        config = sidecar_config(
            tmp_path / "data", app_id=APP_ID, app_port=served[0].port, resources_paths=[folder]
        )
        sidecar = Sidecar(config, hold_outbox=hold_outbox)  # on the test's loop: it reads the engines
        await sidecar.start()
        running.append(sidecar)
        if ready:
            await asyncio.wait_for(sidecar.ready.wait(), 20)
        use_sidecar(sidecar.http_port, sidecar.grpc_port)
        return sidecar

    yield start
    for sidecar in running:
        if not sidecar.stopped.is_set():
            sidecar.request_stop()
            await sidecar.stop()


async def transaction(sidecar: Sidecar, body: dict[str, Any], **params: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/state/mystore/transaction"
    async with aiohttp.ClientSession() as http, http.post(url, json=body, params=params) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def get_state(sidecar: Sidecar, key: str) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/state/mystore/{key}"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.read()


def upsert(key: str, value: Any, **request: Any) -> dict[str, Any]:
    return {"operation": "upsert", "request": {"key": key, "value": value, **request}}


async def quiet(sidecar: Sidecar) -> None:
    await wait_for_async(lambda: not sidecar.transactions.busy())
    await sidecar.pubsub.idle()


async def test_an_http_transaction_publishes_daprds_cloudevent_for_each_upsert(
    start_sidecar: StartSidecar, subscriber: Subscriber
) -> None:
    """daprd's `outbox/http/basic`: data is the value as text, every metadata key but `data` and `id`
    becomes an event field, the id names the outbox marker."""
    sidecar = await start_sidecar(store_yaml(), PUBSUB)
    metadata = {"outbox.cloudevent.myapp": "myapp1", "data": "a", "id": "b", "type": "CustomerCreated"}
    status, _ = await transaction(sidecar, {"operations": [upsert("1", "2", metadata=metadata)]})
    assert status == 204
    (event,) = await wait_for_async(subscriber.received)
    assert event["data"] == "2"
    assert event["outbox.cloudevent.myapp"] == "myapp1"
    assert event["id"].startswith("outbox-")
    assert event["type"] == "CustomerCreated"
    assert (event["topic"], event["pubsubname"], event["source"]) == ("test", "mypubsub", APP_ID)
    assert (event["datacontenttype"], event["specversion"]) == ("text/plain", "1.0")
    assert {"time", "traceid", "traceparent", "tracestate"} <= event.keys()
    assert await get_state(sidecar, "1") == (200, b'"2"')


async def test_json_values_deletes_and_projections(
    start_sidecar: StartSidecar, subscriber: Subscriber
) -> None:
    sidecar = await start_sidecar(store_yaml("state.in-memory"), PUBSUB)
    order = {"orderId": "7hf8374s", "type": "book", "name": "The name of the wind"}
    body = {
        "operations": [
            upsert("order1", order),
            upsert(
                "order1",
                {"orderId": "7hf8374s"},
                metadata={"outbox.projection": "true"},
                contentType="application/json",
            ),
            upsert("plain", {"a": 1, "b": [True, None]}),
            {"operation": "delete", "request": {"key": "gone"}},
        ]
    }
    assert (await transaction(sidecar, body))[0] == 204
    await quiet(sidecar)
    projected, plain = subscriber.received()
    # The projection is published instead of the saved value, and is not saved itself.
    assert (projected["data"], projected["datacontenttype"]) == ({"orderId": "7hf8374s"}, "application/json")
    assert json.loads((await get_state(sidecar, "order1"))[1]) == order
    # Without a JSON content type daprd formats the decoded value with Go's %v.
    assert plain["data"] == "map[a:1 b:[true <nil>]]"


async def test_a_failed_transaction_publishes_nothing(
    start_sidecar: StartSidecar, subscriber: Subscriber
) -> None:
    sidecar = await start_sidecar(store_yaml(), PUBSUB)
    body = {"operations": [upsert("a", "1"), upsert("b", "2", etag="not-the-etag")]}
    status, error = await transaction(sidecar, body)
    assert status == 500 and error["errorCode"] == "ERR_STATE_TRANSACTION"
    assert not sidecar.transactions.busy()
    assert (await transaction(sidecar, {"operations": [upsert("c", "3")]}))[0] == 204
    await quiet(sidecar)
    assert [e["data"] for e in subscriber.received()] == ["3"]
    assert (await get_state(sidecar, "a"))[0] == 204


async def test_the_sdk_over_grpc_as_in_daprs_docs(
    start_sidecar: StartSidecar, subscriber: Subscriber
) -> None:
    """The Python example of daprd's how-to: "2" is saved, "3" is published."""
    sidecar = await start_sidecar(store_yaml(), PUBSUB)

    def run() -> None:
        with DaprClient() as client:
            client.execute_state_transaction(
                "mystore",
                [
                    TransactionalStateOperation(key="key1", data=b"2"),
                    TransactionalStateOperation(
                        key="key1", data=b"3", metadata={"outbox.projection": "true"}
                    ),
                    TransactionalStateOperation(
                        key="key2", data=b'{"n": 1}', metadata={"contentType": "application/json"}
                    ),
                    TransactionalStateOperation(key="key1", operation_type=TransactionOperationType.delete),
                    TransactionalStateOperation(key="key1", data=b"4"),
                ],
            )

    await asyncio.to_thread(run)
    await quiet(sidecar)
    events = subscriber.received()
    assert [e["data"] for e in events] == ["3", {"n": 1}, "3"]
    assert events[1]["contentType"] == "application/json"
    assert await get_state(sidecar, "key1") == (200, b"4")


async def test_events_committed_before_a_stop_are_published_after_the_restart(
    start_sidecar: StartSidecar, subscriber: Subscriber
) -> None:
    """A sidecar stopped between commit and publish (relay held) leaves the event in the outbox; the
    restarted sidecar publishes it with the same CloudEvent id, once."""
    held = await start_sidecar(store_yaml(), PUBSUB, hold_outbox=True)
    assert (await transaction(held, {"operations": [upsert("k", "v")]}))[0] == 204
    assert held.transactions.busy()
    held.request_stop()
    await held.stop()
    assert subscriber.received() == []

    restarted = await start_sidecar(store_yaml(), PUBSUB)
    await quiet(restarted)
    (event,) = subscriber.received()
    assert event["data"] == "v" and event["id"].startswith("outbox-")
    assert restarted.transactions.relays["mystore"].published == 1
    assert await get_state(restarted, "k") == (200, b'"v"')


async def test_an_outbox_to_a_missing_pubsub_fails_every_transaction(
    start_sidecar: StartSidecar, subscriber: Subscriber
) -> None:
    """daprd starts and fails the transaction with ERR_PUBLISH_OUTBOX; nothing is saved."""
    sidecar = await start_sidecar(store_yaml(publish_pubsub="nosuchpubsub"), PUBSUB)
    status, error = await transaction(sidecar, {"operations": [upsert("k", "v")]})
    assert (status, error["errorCode"]) == (500, "ERR_PUBLISH_OUTBOX")
    assert error["message"] == "error while publishing outbox message: pubsub 'nosuchpubsub' not found"
    assert (await get_state(sidecar, "k"))[0] == 204
    assert not sidecar.transactions.busy()


async def test_a_missing_outbox_pubsub_fails_too(start_sidecar: StartSidecar) -> None:
    extra = '\n  - name: outboxPubsub\n    value: "internal"'
    sidecar = await start_sidecar(store_yaml(extra=extra), PUBSUB)
    status, error = await transaction(sidecar, {"operations": [upsert("k", "v")]})
    assert (status, error["errorCode"]) == (500, "ERR_PUBLISH_OUTBOX")
    assert "'internal'" in error["message"]


@pytest.mark.slow
async def test_a_kill_9_between_commit_and_publish_republishes_after_restart(
    tmp_path: Path, start_sidecar: StartSidecar, subscriber: Subscriber
) -> None:
    """A real crash: the subprocess sidecar waits for an app port that refuses connections (so its relay
    has not started), commits a transaction and is killed -9; the restarted sidecar publishes the event."""
    folder = tmp_path / "resources"
    folder.mkdir()
    (folder / "0.yaml").write_text(store_yaml())
    (folder / "1.yaml").write_text(PUBSUB)
    refusing = bound_socket()  # bound, never listening: the sidecar keeps waiting for the app
    args = ("--resources-path", str(folder))
    process = SidecarProcess(tmp_path / "data", app_id=APP_ID, app_port=refusing.getsockname()[1], args=args)
    try:
        await asyncio.to_thread(process.start)
        url = f"{process.base}/state/mystore/transaction"
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json={"operations": [upsert("k", "v")]}) as resp,
        ):
            assert resp.status == 204
    finally:
        process.kill9()
        refusing.close()
    assert subscriber.received() == []
    restarted = await start_sidecar(store_yaml(), PUBSUB)
    await quiet(restarted)
    (event,) = subscriber.received()
    assert event["data"] == "v" and event["id"].startswith("outbox-")
