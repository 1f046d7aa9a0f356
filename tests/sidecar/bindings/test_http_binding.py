"""`bindings.http` through a real embedded sidecar against a small loopback HTTP server: the method per
operation, `path` and capitalised metadata as the request, the answer's body, status and headers as
contrib returns them, a non-2xx status as daprd's error, over HTTP, gRPC and the SDK."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.proto.runtime.v1 import binding_pb2, dapr_pb2_grpc

from sidecar import ManualClock
from sidecar.components import ComponentError, load_components
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar
from tests.stack import sidecar_thread

COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: web
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: url
    value: http://127.0.0.1:{port}/api
  - name: maxResponseBodySize
    value: 4Ki
  - name: securityToken
    value: s3cret
  - name: securityTokenHeader
    value: X-Token
"""


class _Echo(BaseHTTPRequestHandler):
    """Echoes the request as JSON; `/api/status/N` answers N, `/api/big` 5000 bytes, `/api/zip` gzip."""

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/api/status/"):
            status = int(self.path.rsplit("/", 1)[1])
            self._send(status, b"nope", [("X-Why", "a"), ("X-Why", "b")])
        elif self.path == "/api/big":
            self._send(200, b"x" * 5000, [])
        elif self.path == "/api/zip":
            self._send(200, gzip.compress(b"unzipped"), [("Content-Encoding", "gzip")])
        elif self.path == "/api/moved":
            self._send(302, b"", [("Location", "/api/echo")])
        else:
            echo = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
            self._send(201, json.dumps(echo).encode(), [("content-type", "application/json")])

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    data = tmp_path_factory.mktemp("httpbinding")
    (data / "components").mkdir()
    (data / "components" / "web.yaml").write_text(COMPONENT.format(port=server.server_address[1]))
    thread = sidecar_thread(data, resources_paths=[data / "components"], clock=ManualClock()).start()
    try:
        yield thread
    finally:
        thread.stop()
        server.shutdown()
        server.server_close()


def test_http_post_with_path_headers_and_token(running: SidecarThread) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{running.http_port}") as http:
        r = http.post(
            "/v1.0/bindings/web",
            json={
                "operation": "create",
                "data": {"b": 1},
                "metadata": {"path": "/echo?q=1", "X-custom": "yes", "lower": "not a header"},
            },
        )
    assert r.status_code == 200
    echo = r.json()
    assert (echo["method"], echo["path"], echo["body"]) == ("POST", "/api/echo?q=1", '{"b":1}')
    headers = echo["headers"]
    assert headers["x-custom"] == "yes" and "lower" not in headers
    assert headers["x-token"] == "s3cret"
    assert headers["content-type"] == headers["accept"] == "application/json; charset=utf-8"
    assert r.headers["metadata.statusCode"] == "201"
    assert r.headers["metadata.status"] == "201 Created"
    assert r.headers["metadata.Content-Type"] == "application/json"


def test_get_has_no_body_and_redirects_are_followed(running: SidecarThread) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{running.http_port}") as http:
        r = http.post("/v1.0/bindings/web", json={"operation": "get", "metadata": {"path": "moved"}})
    echo = r.json()
    assert (echo["method"], echo["path"], echo["body"]) == ("GET", "/api/echo", "")
    assert "content-type" not in echo["headers"]


def test_non_2xx_is_daprd_error_with_metadata(running: SidecarThread) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{running.http_port}") as http:
        r = http.post("/v1.0/bindings/web", json={"operation": "delete", "metadata": {"path": "status/404"}})
        assert r.status_code == 500
        assert r.json() == {
            "errorCode": "ERR_INVOKE_OUTPUT_BINDING",
            "message": "error invoking output binding web: received status code 404",
        }
        assert r.headers["metadata.statusCode"] == "404"
        assert r.headers["metadata.X-Why"] == "a, b"
        ok = http.post(
            "/v1.0/bindings/web",
            json={"operation": "get", "metadata": {"path": "status/404", "errorIfNot2XX": "false"}},
        )
        assert (ok.status_code, ok.content, ok.headers["metadata.statusCode"]) == (200, b"nope", "404")


def test_body_limit_gzip_and_unknown_operation(running: SidecarThread) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{running.http_port}") as http:
        big = http.post("/v1.0/bindings/web", json={"operation": "get", "metadata": {"path": "big"}})
        assert big.content == b"x" * 4096  # maxResponseBodySize cuts the body
        zipped = http.post("/v1.0/bindings/web", json={"operation": "get", "metadata": {"path": "zip"}})
        assert zipped.content == b"unzipped"
        assert "metadata.Content-Encoding" not in zipped.headers  # Go decodes its own gzip request
        bad = http.post("/v1.0/bindings/web", json={"operation": "connect"})
        assert "does not support operation connect" in bad.json()["message"]


def test_grpc_error_keeps_metadata_and_sdk_invoke(running: SidecarThread) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        call = stub.InvokeBinding.with_call
        with pytest.raises(grpc.RpcError) as raised:
            request = binding_pb2.InvokeBindingRequest(
                name="web", operation="put", metadata={"path": "status/500"}
            )
            call(request)
        err = raised.value
        assert err.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
        assert err.details() == "error invoking output binding web: received status code 500"  # type: ignore[attr-defined]
        assert ("metadata.statuscode", "500") in err.initial_metadata()  # type: ignore[attr-defined]
    use_sidecar(running.http_port, running.grpc_port)
    with DaprClient(f"127.0.0.1:{running.grpc_port}") as client:
        got = client.invoke_binding("web", "put", b"raw", {"path": "echo"})
        assert json.loads(got.data)["body"] == "raw" and json.loads(got.data)["method"] == "PUT"
        assert got.binding_metadata["statusCode"] == "201"


def test_unreachable_endpoint_and_refused_options(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(COMPONENT.format(port=1) + "  - name: mtlsRootCA\n    value: ca.pem\n")
    with pytest.raises(ComponentError, match="mtlsRootCA: mTLS to the endpoint is not supported"):
        load_components([tmp_path], app_id="a", data_dir=tmp_path)
    (tmp_path / "c.yaml").write_text(COMPONENT.format(port=1).replace("url", "other"))
    with pytest.raises(ComponentError, match="metadata 'url' is required"):
        load_components([tmp_path], app_id="a", data_dir=tmp_path)


def test_connection_refused_names_the_request() -> None:
    import asyncio

    from sidecar.bindings.http import HttpBinding
    from sidecar.bindings.output import BindingError

    binding = HttpBinding.from_metadata("x", {"url": "http://127.0.0.1:1/api"})
    with pytest.raises(BindingError, match=r'^Get "http://127.0.0.1:1/api": dial tcp 127.0.0.1:1: connect: '):
        asyncio.run(binding.invoke("get", b"", {}))
