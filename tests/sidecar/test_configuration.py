"""The Configuration API over `configuration.embedded.sqlite` through a real sidecar: raw HTTP (get, subscribe
with updates POSTed to the app's `/configuration/{store}/{key}`, unsubscribe), the SDK's gRPC
`get_configuration`/`subscribe_configuration`/`unsubscribe_configuration`, and daprd's error codes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.proto.runtime.v1 import configuration_pb2, dapr_pb2_grpc

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar
from tests.stack import sidecar_thread

COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: settings
spec:
  type: configuration.embedded.sqlite
  version: v1
"""
TOKEN = "config-token"  # only for the guard test: the SDK's subscribe stream sends no dapr-api-token


class _App(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    app = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    data = tmp_path_factory.mktemp("configuration")
    (data / "components").mkdir()
    (data / "components" / "settings.yaml").write_text(COMPONENT)
    thread = sidecar_thread(
        data, resources_paths=[data / "components"], app_port=app.server_address[1], clock=ManualClock()
    ).start()
    try:
        yield thread
    finally:
        thread.stop()
        app.shutdown()
        app.server_close()


def _http(thread: SidecarThread) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{thread.http_port}")


def test_http_get_all_some_and_none(running: SidecarThread) -> None:
    with _http(running) as http:
        put = http.put(
            "/v1.0-dev/configuration/settings",
            json={
                "color": {"value": "blue", "metadata": {"by": "ops"}},
                "size": {"value": "9", "version": "v7"},
            },
        )
        assert put.status_code == 200
        assert put.json()["color"] == {"value": "blue", "version": "1", "metadata": {"by": "ops"}}
        every = http.get("/v1.0/configuration/settings")
        assert every.json() == {
            "color": {"value": "blue", "version": "1", "metadata": {"by": "ops"}},
            "size": {"value": "9", "version": "v7"},
        }
        some = http.get("/v1.0-alpha1/configuration/settings", params={"key": ["size", "missing"]})
        assert some.json() == {"size": {"value": "9", "version": "v7"}}
        none = http.get("/v1.0/configuration/settings", params={"key": "missing"})
        assert (none.status_code, none.content) == (204, b"")
        assert http.put("/v1.0-dev/configuration/settings", json={"color": {"value": "red"}}).json() == {
            "color": {"value": "red", "version": "2"}
        }


def test_http_errors_are_daprds(running: SidecarThread) -> None:
    with _http(running) as http:
        missing = http.get("/v1.0/configuration/nope")
        assert (missing.status_code, missing.json()) == (
            400,
            {
                "errorCode": "ERR_CONFIGURATION_STORE_NOT_FOUND",
                "message": "configuration store nope not found",
            },
        )
        gone = http.get("/v1.0/configuration/settings/not-an-id/unsubscribe")
        assert (gone.status_code, gone.json()) == (
            500,
            {
                "message": "failed to unsubscribe to configuration request not-an-id: "
                "subscription with id not-an-id does not exist"
            },
        )
        bad = http.put("/v1.0-dev/configuration/settings", json={"k": {"value": 3}})
        assert bad.json()["errorCode"] == "ERR_MALFORMED_REQUEST"


def test_http_subscription_posts_updates_to_the_app(running: SidecarThread) -> None:
    _App.received.clear()
    with _http(running) as http:
        sub = http.get("/v1.0/configuration/settings/subscribe", params={"key": "flag"})
        subscription_id = sub.json()["id"]
        http.put("/v1.0-dev/configuration/settings", json={"flag": {"value": "on"}, "other": {"value": "x"}})
        http.put("/v1.0-dev/configuration/settings", json={"flag": None})
        assert _App.received == [
            (
                "/configuration/settings/flag",
                {"id": subscription_id, "items": {"flag": {"value": "on", "version": "1"}}},
            ),
            ("/configuration/settings/flag", {"id": subscription_id, "items": {"flag": {}}}),
        ]
        done = http.get(f"/v1.0/configuration/settings/{subscription_id}/unsubscribe")
        assert done.json() == {"ok": True}
        http.put("/v1.0-dev/configuration/settings", json={"flag": {"value": "again"}})
        assert len(_App.received) == 2


def test_sdk_get_subscribe_unsubscribe(running: SidecarThread) -> None:
    use_sidecar(running.http_port, running.grpc_port)
    updates: list[tuple[str, dict[str, str]]] = []
    arrived = threading.Event()

    def handler(subscription_id: str, response: Any) -> None:
        updates.append((subscription_id, {k: v.value for k, v in response.items.items()}))
        arrived.set()

    with DaprClient(f"127.0.0.1:{running.grpc_port}") as client, _http(running) as http:
        http.put("/v1.0-dev/configuration/settings", json={"mode": {"value": "fast", "version": "3"}})
        got = client.get_configuration("settings", ["mode"])
        assert (got.items["mode"].value, got.items["mode"].version) == ("fast", "3")
        subscription_id = client.subscribe_configuration("settings", ["mode"], handler)
        http.put("/v1.0-dev/configuration/settings", json={"mode": {"value": "slow"}})
        assert arrived.wait(10)
        assert updates[-1] == (subscription_id, {"mode": "slow"})
        assert client.unsubscribe_configuration("settings", subscription_id) is True
        assert client.unsubscribe_configuration("settings", subscription_id) is False


def test_grpc_stream_first_message_is_the_id_and_errors(running: SidecarThread) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        auth = ()
        stream = stub.SubscribeConfigurationAlpha1(
            configuration_pb2.SubscribeConfigurationRequest(store_name="settings", keys=["k"]), metadata=auth
        )
        first = next(stream)
        assert first.id and not first.items
        with _http(running) as http:
            http.put("/v1.0-dev/configuration/settings", json={"k": {"value": "v"}})
        update = next(stream)
        assert (update.id, update.items["k"].value, update.items["k"].version) == (first.id, "v", "1")
        stub.UnsubscribeConfiguration(
            configuration_pb2.UnsubscribeConfigurationRequest(store_name="settings", id=first.id),
            metadata=auth,
        )
        assert list(stream) == []  # the stream ends cleanly once unsubscribed
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetConfiguration(configuration_pb2.GetConfigurationRequest(store_name="nope"), metadata=auth)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert raised.value.details() == "configuration store nope not found"  # type: ignore[attr-defined]


def test_dev_route_is_guarded_by_the_api_token(tmp_path: Path) -> None:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "settings.yaml").write_text(COMPONENT)
    thread = sidecar_thread(
        tmp_path, resources_paths=[tmp_path / "components"], api_token=TOKEN, clock=ManualClock()
    ).start()
    try:
        url = f"http://127.0.0.1:{thread.http_port}/v1.0-dev/configuration/settings"
        assert httpx.put(url, json={"x": {"value": "1"}}).status_code == 401
        ok = httpx.put(url, json={"x": {"value": "1"}}, headers={"dapr-api-token": TOKEN})
        assert ok.json() == {"x": {"value": "1", "version": "1"}}
    finally:
        thread.stop()
