"""`bindings.localstorage` through a real embedded sidecar: create/get/list/delete over HTTP (daprd's
json.Marshal of `data`) and the SDK's `invoke_binding`, paths confined to rootPath, daprd's errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dapr.clients import DaprClient

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar
from tests.stack import sidecar_thread

COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: files
spec:
  type: bindings.localstorage
  version: v1
  metadata:
  - name: rootPath
    value: {root}
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SidecarThread, Path]]:
    data = tmp_path_factory.mktemp("localstorage")
    root = data / "root"
    (data / "components").mkdir()
    (data / "components" / "files.yaml").write_text(COMPONENT.format(root=root))
    thread = sidecar_thread(data, resources_paths=[data / "components"], clock=ManualClock()).start()
    try:
        yield thread, root
    finally:
        thread.stop()


def test_http_create_get_list_delete(running: tuple[SidecarThread, Path]) -> None:
    thread, root = running
    with httpx.Client(base_url=f"http://127.0.0.1:{thread.http_port}") as http:
        made = http.post(
            "/v1.0/bindings/files",
            json={"operation": "create", "data": {"b": 1, "a": "x"}, "metadata": {"fileName": "d/one.json"}},
        )
        assert (made.status_code, made.json()) == (200, {"fileName": "d/one.json"})
        assert (root / "d" / "one.json").read_bytes() == b'{"a":"x","b":1}'  # Go's json.Marshal
        got = http.post(
            "/v1.0/bindings/files", json={"operation": "get", "metadata": {"fileName": "d/one.json"}}
        )
        assert got.content == b'{"a":"x","b":1}'
        listed = http.post("/v1.0/bindings/files", json={"operation": "list", "metadata": {"fileName": "d"}})
        assert listed.json() == [str(root / "d" / "one.json")]
        gone = http.post(
            "/v1.0/bindings/files", json={"operation": "delete", "metadata": {"fileName": "d/one.json"}}
        )
        assert gone.status_code == 204 and not (root / "d" / "one.json").exists()
        missing = http.post(
            "/v1.0/bindings/files", json={"operation": "get", "metadata": {"fileName": "nope"}}
        )
        assert missing.status_code == 500
        assert missing.json() == {
            "errorCode": "ERR_INVOKE_OUTPUT_BINDING",
            "message": f"error invoking output binding files: file not found: {root / 'nope'}",
        }
        bad = http.post("/v1.0/bindings/files", json={"operation": "update"})
        assert bad.json()["message"] == (
            "error invoking output binding files: binding files does not support operation update."
            " supported operations:create get list delete"
        )


def test_dot_dot_cannot_leave_the_root(running: tuple[SidecarThread, Path]) -> None:
    thread, root = running
    with httpx.Client(base_url=f"http://127.0.0.1:{thread.http_port}") as http:
        r = http.post(
            "/v1.0/bindings/files",
            json={"operation": "create", "data": "hi", "metadata": {"fileName": "../../escape.txt"}},
        )
    assert r.json() == {"fileName": "escape.txt"}
    assert (root / "escape.txt").read_bytes() == b"hi"
    assert not (root.parent / "escape.txt").exists() and not (root.parent.parent / "escape.txt").exists()


def test_sdk_invoke_binding_base64_payload(running: tuple[SidecarThread, Path]) -> None:
    thread, root = running
    use_sidecar(thread.http_port, thread.grpc_port)
    with DaprClient(f"127.0.0.1:{thread.grpc_port}") as client:
        payload = base64.b64encode(b"\x00binary\xff").decode()
        made = client.invoke_binding("files", "create", payload, {"fileName": "blob.bin"})
        assert json.loads(made.data) == {"fileName": "blob.bin"}
        assert (root / "blob.bin").read_bytes() == b"\x00binary\xff"  # contrib decodes base64 data
        assert client.invoke_binding("files", "get", "", {"fileName": "blob.bin"}).data == b"\x00binary\xff"
