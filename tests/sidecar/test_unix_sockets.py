"""`--unix-domain-socket DIR`: the HTTP and gRPC APIs also listen on daprd's sockets,
`DIR/dapr-<app id>-http.socket` and `-grpc.socket`, which the sidecar removes when it stops."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from dapr.clients import DaprClient

from sidecar.flags import build_parser, config_from_args
from tests.harness import use_sidecar
from tests.stack import sidecar_thread


def test_both_apis_answer_on_daprds_sockets_and_the_sockets_go_at_stop(tmp_path: Path) -> None:
    sockets = tmp_path / "s"
    sockets.mkdir()
    http_path, grpc_path = sockets / "dapr-uds-http.socket", sockets / "dapr-uds-grpc.socket"
    with sidecar_thread(tmp_path / "data", app_id="uds", unix_domain_socket=sockets) as sidecar:
        sidecar.wait_ready()
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(http_path)), base_url="http://dapr") as http:
            assert http.get("/v1.0/metadata").json()["id"] == "uds"
            saved = http.post("/v1.0/state/statestore", json=[{"key": "k", "value": "over uds"}])
            assert saved.status_code == 204
        use_sidecar(sidecar.http_port, sidecar.grpc_port)  # the SDK's health probe goes over HTTP
        with DaprClient(f"unix://{grpc_path}") as client:
            assert client.get_state("statestore", "k").data == b'"over uds"'
            assert client.get_metadata().application_id == "uds"
    assert not http_path.exists() and not grpc_path.exists()


def test_a_stale_socket_file_is_replaced_a_live_one_refused(tmp_path: Path) -> None:
    sockets = tmp_path / "s"
    sockets.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sockets / "dapr-uds-http.socket"))
    stale.close()  # the file stays, nothing listens: a sidecar that was killed
    with sidecar_thread(tmp_path / "a", app_id="uds", unix_domain_socket=sockets) as first:
        first.wait_ready()
        with pytest.raises(OSError, match="another process listens on"):
            sidecar_thread(tmp_path / "b", app_id="uds", unix_domain_socket=sockets).start()


def test_the_flag_is_dapr_runs() -> None:
    args = build_parser().parse_args(["--app-id", "a", "--unix-domain-socket", "/tmp/socks"])
    assert config_from_args(args, {}).unix_domain_socket == Path("/tmp/socks")
    short = build_parser().parse_args(["--app-id", "a", "-u", "/tmp/socks"])
    assert config_from_args(short, {}).unix_domain_socket == Path("/tmp/socks")
