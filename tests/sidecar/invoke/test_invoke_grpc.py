"""gRPC `InvokeService` (the SDK's gRPC `invoke_method`) into the HTTP app, and proxy mode refused for it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._response import InvokeMethodResponse
from dapr.clients.grpc.client import DaprGrpcClient

from tests.sidecar.invoke.conftest import APP_TOKEN, TOKEN, Running


def _client(node: Running) -> DaprClient:
    return DaprClient(
        address=f"127.0.0.1:{node.sidecar.grpc_port}", headers_callback=lambda: {"dapr-api-token": TOKEN}
    )


def _invoke(node: Running, app_id: str, method: str, **kwargs: Any) -> InvokeMethodResponse:
    """The SDK's gRPC `invoke_method` (`DaprClient` itself invokes over HTTP unless configured otherwise)."""
    with _client(node) as client:
        return DaprGrpcClient.invoke_method(client, app_id, method, **kwargs)


def test_invoke_service_round_trip(node: Running) -> None:
    resp = _invoke(
        node,
        "echo",
        "items/7",
        data=b"hello",
        content_type="text/plain",
        http_verb="PUT",
        http_querystring=(("q", "1"),),
        metadata=(("x-meta", "m"),),
    )
    seen = resp.json()
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == ("PUT", "/items/7", "q=1", "hello")
    assert seen["headers"]["x-meta"] == "m" and seen["headers"]["content-type"] == "text/plain"
    assert seen["headers"]["dapr-api-token"] == APP_TOKEN
    assert resp.content_type == "application/json"
    headers = resp.headers
    assert headers["dapr-http-status"] == ["200"] and headers["x-echo"] == ["yes"]
    assert headers["dapr-content-type"] == ["application/json"]  # daprd prefixes HTTP's own headers


def test_app_error_status_becomes_grpc_status_with_error_info(node: Running) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _invoke(node, "echo", "broken", data=b"", http_verb="GET")
    err = DaprGrpcError(caught.value)
    assert err.code() == grpc.StatusCode.UNKNOWN and err.details() == "Internal Server Error"
    info = err.status_details().error_info
    assert info["reason"] == "Internal Server Error" and info["domain"] == "dapr.io"
    assert info["metadata"] == {"http.code": "500", "http.error_message": "x" * 63}
    with pytest.raises(grpc.RpcError) as teapot:
        _invoke(node, "echo", "teapot", data=b"", http_verb="POST")
    assert teapot.value.details() == "I'm a teapot"


def test_unknown_app_id_and_bad_method(node: Running) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _invoke(node, "nobody", "x", data=b"", http_verb="GET")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "failed to invoke, id: nobody, err: couldn't find service: nobody"
    with pytest.raises(grpc.RpcError) as bad:
        _invoke(node, "echo", "a?b", data=b"", http_verb="GET")
    assert "InvalidArgument desc = invalid method" in bad.value.details()


def test_grpc_proxy_mode_to_an_http_app_fails_loudly(node: Running) -> None:
    """Proxying passes gRPC through to the app's gRPC server (tests/sidecar/hosts/test_grpc_proxy.py); an
    app speaking HTTP has none."""
    with grpc.insecure_channel(f"127.0.0.1:{node.sidecar.grpc_port}") as channel:
        call = channel.unary_unary("/my.pkg.Greeter/SayHello")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", metadata=(("dapr-app-id", "echo"), ("dapr-api-token", TOKEN)))
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "gRPC proxying of /my.pkg.Greeter/SayHello to app 'echo' needs the app to speak gRPC" in (
            caught.value.details()
        )
        with pytest.raises(grpc.RpcError) as plain:  # no app id: gRPC's own answer for an unknown method
            call(b"", metadata=(("dapr-api-token", TOKEN),))
        assert plain.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "gRPC proxying" not in (plain.value.details() or "")
