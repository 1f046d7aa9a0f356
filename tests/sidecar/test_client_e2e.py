"""`DaprClient` (gRPC) and `DaprApp` subscriptions against the embedded sidecar, end to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, StateItem, StateOptions
from dapr.ext.fastapi import DaprApp
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import dapr_pb2_grpc, metadata_pb2, search_pb2, state_pb2
from fastapi import Body, FastAPI

from sidecar.components import ComponentError, load_components
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, bound_socket, use_sidecar, wait_for
from tests.stack import sidecar_thread

RECEIVED: list[dict[str, Any]] = []
_LOCK = threading.Lock()


def _subscriber_app() -> FastAPI:
    app = FastAPI()
    dapr_app = DaprApp(app)

    @dapr_app.subscribe(pubsub="pubsub", topic="orders")
    def orders(event: dict[str, Any] = Body(...)) -> dict[str, str]:  # noqa: B008
        with _LOCK:
            RECEIVED.append(event)
        return {"status": "SUCCESS"}

    return app


class E2E:
    def __init__(self, sidecar: SidecarThread, token: str) -> None:
        self.sidecar = sidecar
        self.token = token

    def client(self) -> DaprClient:
        return DaprClient(
            address=f"127.0.0.1:{self.sidecar.grpc_port}",
            headers_callback=lambda: {"dapr-api-token": self.token},
        )


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    sock = bound_socket()
    token = "t0ken-for-tests"
    sidecar = sidecar_thread(
        tmp_path_factory.mktemp("e2e"), app_id="e2e", app_port=sock.getsockname()[1], api_token=token
    ).start()
    use_sidecar(sidecar.http_port, sidecar.grpc_port, token)
    app = ServedApp(_subscriber_app(), sock).start()
    sidecar.wait_ready()
    yield E2E(sidecar, token)
    sidecar.stop()
    app.stop()


@pytest.fixture(autouse=True)
def _this_sidecar(e2e: E2E) -> None:
    use_sidecar(e2e.sidecar.http_port, e2e.sidecar.grpc_port, e2e.token)


def test_state_round_trip_with_etags(e2e: E2E) -> None:
    with e2e.client() as c:
        c.save_state("statestore", "greeting", "5m")
        got = c.get_state("statestore", "greeting")
        assert got.data == b"5m" and got.etag
        c.save_state("statestore", "greeting", "v2", etag=got.etag)
        with pytest.raises(grpc.RpcError) as stale:
            c.save_state("statestore", "greeting", "v3", etag=got.etag)
        assert stale.value.code() == grpc.StatusCode.ABORTED
        with pytest.raises(grpc.RpcError) as first:
            c.save_state(
                "statestore",
                "greeting",
                "v4",
                options=StateOptions(concurrency=Concurrency.first_write),
            )
        assert first.value.code() == grpc.StatusCode.ABORTED
        assert c.get_state("statestore", "greeting").data == b"v2"
        assert c.get_state("statestore", "missing").data == b""


def test_transaction_and_bulk_get(e2e: E2E) -> None:
    with e2e.client() as c:
        c.save_state("statestore", "gone", "x")
        c.execute_state_transaction(
            "statestore",
            [
                TransactionalStateOperation(key="a", data="1"),
                TransactionalStateOperation(key="b", data="2"),
                TransactionalStateOperation(key="gone", operation_type=TransactionOperationType.delete),
            ],
        )
        items = {i.key: i.data for i in c.get_bulk_state("statestore", ["a", "b", "gone"]).items}
    assert items == {"a": b"1", "b": b"2", "gone": b""}


def test_plain_state_is_stored_under_app_id_prefix(e2e: E2E) -> None:
    with e2e.client() as c:
        c.save_state("statestore", "prefixed", "v")
    r = httpx.get(
        f"http://127.0.0.1:{e2e.sidecar.http_port}/v1.0/state/statestore/prefixed",
        headers={"dapr-api-token": e2e.token},
    )
    assert r.status_code == 200 and r.content == b"v"


def test_publish_reaches_dapr_app_subscriber_as_cloudevent(e2e: E2E) -> None:
    with e2e.client() as c:
        c.publish_event("pubsub", "orders", '{"id": 7}', data_content_type="application/json")
    event = wait_for(lambda: next((e for e in RECEIVED if e.get("data") == {"id": 7}), None))
    assert event["source"] == "e2e"
    assert event["type"] == "com.dapr.event.sent"
    assert event["specversion"] == "1.0"
    assert event["topic"] == "orders" and event["pubsubname"] == "pubsub"
    assert event["datacontenttype"] == "application/json"
    assert "traceparent" in event and "time" in event


def test_metadata_over_grpc(e2e: E2E) -> None:
    with e2e.client() as c:
        c.set_metadata("team", "todo")
        meta = c.get_metadata()
    assert meta.application_id == "e2e"
    names = {comp.name: comp.type for comp in meta.registered_components}
    assert names["statestore"] == "state.sqlite" and names["pubsub"] == "pubsub.embedded.sqlite"
    assert meta.extended_metadata["team"] == "todo"
    # the rest of daprd's GetMetadataResponse: what HTTP /v1.0/metadata reports, in protobuf fields
    http = httpx.get(
        f"http://127.0.0.1:{e2e.sidecar.http_port}/v1.0/metadata", headers={"dapr-api-token": e2e.token}
    ).json()
    with grpc.insecure_channel(f"127.0.0.1:{e2e.sidecar.grpc_port}") as channel:
        raw = dapr_pb2_grpc.DaprStub(channel).GetMetadata(
            metadata_pb2.GetMetadataRequest(), metadata=[("dapr-api-token", e2e.token)]
        )
    orders = next(s for s in raw.subscriptions if s.topic == "orders")
    assert orders.pubsub_name == "pubsub" and orders.type == metadata_pb2.PROGRAMMATIC
    assert [(r.match, r.path) for r in orders.rules.rules] == [("", "/events/pubsub/orders")]
    assert len(raw.subscriptions) == len(http["subscriptions"])
    app = raw.app_connection_properties
    assert app.port == http["appConnectionProperties"]["port"] and app.protocol == "http"
    assert app.channel_address == "127.0.0.1"
    assert raw.actor_runtime.runtime_status == metadata_pb2.ActorRuntime.RUNNING
    assert raw.actor_runtime.placement == http["actorRuntime"]["placement"]


def test_api_token_required_except_healthz(e2e: E2E) -> None:
    base = f"http://127.0.0.1:{e2e.sidecar.http_port}/v1.0"
    healthz = httpx.get(f"{base}/healthz")
    assert healthz.status_code == 204
    assert "server" not in healthz.headers and "date" in healthz.headers  # no server banner
    assert httpx.get(f"{base}/healthz/outbound").status_code == 204
    denied = httpx.get(f"{base}/metadata")
    assert denied.status_code == 401 and denied.text == "invalid api token"
    assert httpx.get(f"{base}/metadata", headers={"dapr-api-token": "wrong"}).status_code == 401
    with grpc.insecure_channel(f"127.0.0.1:{e2e.sidecar.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.SetMetadata(metadata_pb2.SetMetadataRequest(key="k", value="v"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_bulk_save_and_delete_try_every_item_and_join_the_errors(e2e: E2E) -> None:
    """Contrib's default bulk store: one stale ETag does not stop the other items (daprd's bulk APIs)."""
    with e2e.client() as c:
        c.save_bulk_state("statestore", [StateItem("bk1", "1"), StateItem("bk2", "2"), StateItem("bk3", "3")])
        etag = c.get_state("statestore", "bk2").etag
        with pytest.raises(DaprGrpcError) as stale:
            c.save_bulk_state(
                "statestore",
                [StateItem("bk1", "one"), StateItem("bk2", "two", etag="999"), StateItem("bk3", "3")],
            )
        assert stale.value.code() == grpc.StatusCode.ABORTED
        assert "failed saving state in state store statestore" in (stale.value.details() or "")
        assert c.get_state("statestore", "bk1").data == b"one"  # the item after the stale one was tried too
        with grpc.insecure_channel(f"127.0.0.1:{e2e.sidecar.grpc_port}") as channel:
            stub = dapr_pb2_grpc.DaprStub(channel)
            auth = [("dapr-api-token", e2e.token)]
            with pytest.raises(grpc.RpcError) as failed:
                stub.DeleteBulkState(
                    state_pb2.DeleteBulkStateRequest(
                        store_name="statestore",
                        states=[
                            common_pb2.StateItem(key="bk1"),
                            common_pb2.StateItem(key="bk2", etag=common_pb2.Etag(value="999")),
                            common_pb2.StateItem(key="bk3"),
                        ],
                    ),
                    metadata=auth,
                )
            assert failed.value.code() == grpc.StatusCode.ABORTED
            assert "failed deleting state in state store statestore" in (failed.value.details() or "")
            left = {i.key: i.data for i in c.get_bulk_state("statestore", ["bk1", "bk2", "bk3"]).items}
            assert left == {"bk1": b"", "bk2": b"2", "bk3": b""}
            stub.DeleteBulkState(
                state_pb2.DeleteBulkStateRequest(
                    store_name="statestore",
                    states=[common_pb2.StateItem(key="bk2", etag=common_pb2.Etag(value=etag))],
                ),
                metadata=auth,
            )
        assert c.get_state("statestore", "bk2").data == b""


@pytest.mark.filterwarnings("ignore:The State Store Query API is an Alpha version")
def test_state_query_answers_as_daprd_for_a_store_that_cannot_query(e2e: E2E) -> None:
    with e2e.client() as c, pytest.raises(DaprGrpcError) as err:
        c.query_state("statestore", '{"filter": {}}')
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == "state store does not support querying"
    info = err.value.status_details().error_info
    assert info is not None and info["reason"] == "DAPR_STATE_QUERYING_NOT_SUPPORTED"
    with e2e.client() as c, pytest.raises(DaprGrpcError) as missing:
        c.query_state("nosuchstore", "{}")
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unsupported_rpc_names_itself(e2e: E2E) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{e2e.sidecar.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetIndexAlpha1(search_pb2.GetIndexRequestAlpha1(), metadata=[("dapr-api-token", e2e.token)])
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "GetIndexAlpha1" in (err.value.details() or "")


def test_unsupported_component_type_names_type_and_file(tmp_path: Path) -> None:
    f = tmp_path / "redis.yaml"
    f.write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cache\n"
        "spec:\n  type: state.redis\n  version: v1\n  metadata: []\n"
    )
    with pytest.raises(ComponentError) as err:
        load_components([tmp_path], app_id="x", data_dir=tmp_path)
    assert "state.redis" in str(err.value) and str(f) in str(err.value)
