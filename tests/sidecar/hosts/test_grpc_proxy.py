"""gRPC proxy mode (daprd's `dapr-app-id` metadata on a call of the app's own service): a gRPC app's custom
`my.pkg.Greeter` service reached through its own sidecar and through another app's sidecar on the host
registry, unary and streaming, with the app's status and trailers passed back as they are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.ext.grpc import App

from sidecar.thread import SidecarThread
from tests.sidecar.hosts.conftest import grpc_app_and_front

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FRONT_TOKEN = "front-api-t0ken"
BACK_TOKEN = "back-api-t0ken"
BACK_APP_TOKEN = "back-app-t0ken"

DENY_FRONT_FAIL = """\
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: back-config
spec:
  accessControl:
    defaultAction: allow
    trustDomain: "public"
    policies:
    - appId: front
      defaultAction: allow
      trustDomain: "public"
      namespace: "default"
      operations:
      - name: /my.pkg.Greeter/Secret
        action: deny
"""


class Greeter(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Raw-bytes methods: SayHello answers with what it saw, Chat upper-cases each message, Fail fails."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if details.method in ("/my.pkg.Greeter/SayHello", "/my.pkg.Greeter/Secret"):
            return grpc.unary_unary_rpc_method_handler(self.say_hello)
        if details.method == "/my.pkg.Greeter/Chat":
            return grpc.stream_stream_rpc_method_handler(self.chat)
        if details.method == "/my.pkg.Greeter/Fail":
            return grpc.unary_unary_rpc_method_handler(self.fail)
        return None

    def say_hello(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        md = dict(context.invocation_metadata())
        context.send_initial_metadata((("x-greeter", "1"),))
        seen = {
            k: md.get(k, "") for k in ("dapr-caller-app-id", "dapr-callee-app-id", "dapr-api-token", "x-mine")
        }
        seen["dapr-app-id"] = md.get("dapr-app-id", "")
        seen["secret"] = md.get("dapr-internal-host-secret", "")
        seen["body"] = request.decode()
        remaining = context.time_remaining()
        seen["deadline"] = "yes" if remaining is not None and remaining <= 12 else f"no: {remaining}"  # ~10 s
        return json.dumps(seen).encode()

    def chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for message in requests:
            yield message.upper()

    def fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata((("x-why", "because"),))
        context.abort(grpc.StatusCode.NOT_FOUND, f"no greeting for {request.decode()}")
        return b""


@pytest.fixture(scope="module")
def sidecars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SidecarThread, SidecarThread]]:
    """(front: an HTTP app's sidecar, back: the gRPC app's sidecar), in one host registry; both check an
    API token, and back has an access control list."""
    tmp: Path = tmp_path_factory.mktemp("grpc-proxy")
    (tmp / "back.yaml").write_text(DENY_FRONT_FAIL)
    app = App()
    serve = lambda handler, server: server.add_generic_rpc_handlers((handler,))  # noqa: E731
    app.add_external_service(serve, Greeter())  # type: ignore[no-untyped-call]
    back = {"api_token": BACK_TOKEN, "app_token": BACK_APP_TOKEN, "config_path": tmp / "back.yaml"}
    with grpc_app_and_front(tmp, app, front={"api_token": FRONT_TOKEN}, **back) as pair:
        yield pair


def _unary(port: int, method: str, body: bytes, metadata: tuple[tuple[str, str], ...]) -> tuple[bytes, Any]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply, call = channel.unary_unary(method).with_call(body, metadata=metadata, timeout=10)
        return reply, call


@pytest.mark.parametrize("via", ["other app's sidecar", "own sidecar"])
def test_a_unary_call_is_proxied_to_the_app(sidecars: tuple[SidecarThread, SidecarThread], via: str) -> None:
    front, back = sidecars
    sidecar, token = (front, FRONT_TOKEN) if via == "other app's sidecar" else (back, BACK_TOKEN)
    metadata = (("dapr-app-id", "grpc-back"), ("dapr-api-token", token), ("x-mine", "kept"))
    reply, call = _unary(sidecar.grpc_port, "/my.pkg.Greeter/SayHello", b"world", metadata)
    seen = json.loads(reply)
    assert seen["body"] == "world" and seen["x-mine"] == "kept"
    assert seen["deadline"] == "yes"  # the caller's deadline reaches the app
    assert seen["dapr-caller-app-id"] == ("front" if via == "other app's sidecar" else "grpc-back")
    assert seen["dapr-callee-app-id"] == "grpc-back"
    # The app sees its own APP_API_TOKEN, never the caller's API token, the app id or the host secret.
    assert seen["dapr-api-token"] == BACK_APP_TOKEN
    assert seen["dapr-app-id"] == "" and seen["secret"] == ""
    assert ("x-greeter", "1") in call.initial_metadata()


def test_a_bidirectional_stream_is_proxied_across(sidecars: tuple[SidecarThread, SidecarThread]) -> None:
    front, _ = sidecars
    metadata = (("dapr-app-id", "grpc-back"), ("dapr-api-token", FRONT_TOKEN))
    with grpc.insecure_channel(f"127.0.0.1:{front.grpc_port}") as channel:
        chat = channel.stream_stream("/my.pkg.Greeter/Chat")
        replies = list(chat(iter([b"one", b"two", b"three"]), metadata=metadata, timeout=10))
    assert replies == [b"ONE", b"TWO", b"THREE"]


def test_the_apps_status_and_trailers_come_back_as_they_are(
    sidecars: tuple[SidecarThread, SidecarThread],
) -> None:
    front, _ = sidecars
    metadata = (("dapr-app-id", "grpc-back"), ("dapr-api-token", FRONT_TOKEN))
    with pytest.raises(grpc.RpcError) as caught:
        _unary(front.grpc_port, "/my.pkg.Greeter/Fail", b"bob", metadata)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "no greeting for bob"
    assert ("x-why", "because") in (caught.value.trailing_metadata() or ())


def test_the_callees_access_control_applies_to_the_calling_app(
    sidecars: tuple[SidecarThread, SidecarThread],
) -> None:
    front, back = sidecars
    across = (("dapr-app-id", "grpc-back"), ("dapr-api-token", FRONT_TOKEN))
    with pytest.raises(grpc.RpcError) as denied:
        _unary(front.grpc_port, "/my.pkg.Greeter/Secret", b"", across)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "access control policy has denied access to id: spiffe://public/ns/default/front" in str(
        denied.value.details()
    )
    own = (("dapr-app-id", "grpc-back"), ("dapr-api-token", BACK_TOKEN))
    reply, _ = _unary(back.grpc_port, "/my.pkg.Greeter/Secret", b"", own)  # its own app is not checked
    assert json.loads(reply)["dapr-caller-app-id"] == "grpc-back"


def test_errors_of_the_proxy(sidecars: tuple[SidecarThread, SidecarThread]) -> None:
    front, back = sidecars
    with pytest.raises(grpc.RpcError) as unknown:
        _unary(
            front.grpc_port,
            "/my.pkg.Greeter/SayHello",
            b"",
            (("dapr-app-id", "nobody"), ("dapr-api-token", FRONT_TOKEN)),
        )
    assert unknown.value.code() == grpc.StatusCode.UNKNOWN
    assert unknown.value.details() == "couldn't find service: nobody"
    with pytest.raises(grpc.RpcError) as http_app:  # front's own app speaks HTTP: nothing to proxy to
        _unary(
            front.grpc_port,
            "/my.pkg.Greeter/SayHello",
            b"",
            (("dapr-app-id", "front"), ("dapr-api-token", FRONT_TOKEN)),
        )
    assert http_app.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "needs the app to speak gRPC" in str(http_app.value.details())
    with pytest.raises(grpc.RpcError) as no_token:  # the caller's sidecar still checks its API token
        _unary(front.grpc_port, "/my.pkg.Greeter/SayHello", b"", (("dapr-app-id", "grpc-back"),))
    assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
    forged = (("dapr-app-id", "grpc-back"), ("dapr-internal-host-secret", "guess"))
    with pytest.raises(grpc.RpcError) as bad_secret:
        _unary(back.grpc_port, "/my.pkg.Greeter/SayHello", b"", forged)
    assert bad_secret.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert back.sidecar.membership is not None
    secret = (("dapr-internal-host-secret", back.sidecar.membership.registry.secret),)
    for api in ("/dapr.proto.runtime.v1.Dapr/GetMetadata", "/TaskHubSidecarService/Hello"):
        with pytest.raises(grpc.RpcError) as not_a_token:  # the host secret stands in for no API token
            _unary(back.grpc_port, api, b"", secret)
        assert not_a_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
