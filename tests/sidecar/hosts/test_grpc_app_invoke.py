"""Invocation of an app on the gRPC app channel (`--app-protocol grpc`, the SDK's `dapr.ext.grpc.App`):
`AppCallback/OnInvoke`, from its own sidecar and from another app's sidecar on the host, over HTTP and the
gRPC `InvokeService`; the app's gRPC status reaches a gRPC caller as it is and an HTTP caller mapped as
daprd's `HTTPStatusFromCode`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc._response import InvokeMethodResponse
from dapr.clients.grpc.client import DaprGrpcClient
from dapr.ext.grpc import App, InvokeMethodRequest

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar
from tests.sidecar.invoke import invoke_app
from tests.stack import running_sidecar, sidecar_thread

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _grpc_app() -> App:
    app = App()

    @app.method("hello")
    def hello(request: InvokeMethodRequest) -> InvokeMethodResponse:
        md = request.metadata
        seen = {
            "data": request.text(),
            "content_type": request.content_type,
            "caller": md.get("dapr-caller-app-id", [""])[0],
            "callee": md.get("dapr-callee-app-id", [""])[0],
            "traceparent": md.get("traceparent", [""])[0],
        }
        return InvokeMethodResponse(json.dumps(seen), "application/json", headers=(("x-app", "grpc"),))

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sidecars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SidecarThread, SidecarThread]]:
    """(front: an HTTP app's sidecar, back: the gRPC app's sidecar), in one host registry."""
    tmp = tmp_path_factory.mktemp("grpc-invoke")
    app, port = _grpc_app(), _free_port()
    server = threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True)
    server.start()
    clock = ManualClock()
    back = sidecar_thread(
        tmp / "back",
        app_id="grpc-back",
        app_port=port,
        clock=clock,
        app_protocol="grpc",
        registry_dir=tmp / "registry",
    ).start()
    try:
        back.wait_ready()
        with running_sidecar(
            tmp / "front",
            lambda _: invoke_app.build(),
            app_id="front",
            clock=clock,
            registry_dir=tmp / "registry",
        ) as (front, _):
            yield front, back
    finally:
        back.stop()
        app.stop()
        server.join(10)


@pytest.mark.parametrize("via", ["own sidecar", "other app's sidecar"])
def test_http_invocation_of_a_grpc_app(sidecars: tuple[SidecarThread, SidecarThread], via: str) -> None:
    front, back = sidecars
    sidecar = back if via == "own sidecar" else front
    with httpx.Client(base_url=f"http://127.0.0.1:{sidecar.http_port}", timeout=10) as c:
        reply = c.post(
            "/v1.0/invoke/grpc-back/method/hello",
            content=b"hi",
            headers={"content-type": "text/plain", "traceparent": TRACEPARENT},
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["x-app"] == "grpc"
        caller = "grpc-back" if via == "own sidecar" else "front"
        assert reply.json() == {
            "data": "hi",
            "content_type": "text/plain",
            "caller": caller,
            "callee": "grpc-back",
            "traceparent": TRACEPARENT,
        }
        missing = c.post("/v1.0/invoke/grpc-back/method/nope")
    # The SDK's servicer answers UNIMPLEMENTED; daprd maps it to 501 with the status as JSON.
    assert missing.status_code == 501
    assert missing.json()["code"] == grpc.StatusCode.UNIMPLEMENTED.value[0]


def test_grpc_invoke_service_of_a_grpc_app_across(sidecars: tuple[SidecarThread, SidecarThread]) -> None:
    front, _ = sidecars
    use_sidecar(front.http_port, front.grpc_port)  # the client's health probe
    with DaprClient(address=f"127.0.0.1:{front.grpc_port}") as client:
        reply = DaprGrpcClient.invoke_method(
            client,
            "grpc-back",
            "hello",
            data=b"over grpc",
            content_type="text/plain",
            metadata=(("traceparent", TRACEPARENT),),
        )
        seen: dict[str, Any] = json.loads(reply.text())
        assert (seen["data"], seen["caller"], seen["traceparent"]) == ("over grpc", "front", TRACEPARENT)
        assert reply.headers["x-app"] == ["grpc"]
        assert "dapr-http-status" not in reply.headers  # a gRPC answer, not an HTTP one
        with pytest.raises(grpc.RpcError) as failed:
            DaprGrpcClient.invoke_method(client, "grpc-back", "nope", data=b"")
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
