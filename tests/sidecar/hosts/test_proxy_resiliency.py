"""Resiliency on gRPC proxying, as daprd's proxy applies it to a call for another app's sidecar: a unary call
replayed under the app target's retries (matched on gRPC codes), timeout and circuit breaker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from dapr.ext.grpc import App

from sidecar.thread import SidecarThread
from tests.sidecar.hosts.conftest import grpc_app_and_front

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: proxy-resiliency
spec:
  policies:
    timeouts:
      quick: 300ms
    retries:
      unavailable-twice:
        policy: constant
        duration: 0s
        maxRetries: 2
        matching:
          gRPCStatusCodes: "14"
    circuitBreakers:
      three-strikes: {maxRequests: 1, timeout: 60s, trip: consecutiveFailures >= 3}
  targets:
    apps:
      grpc-back:
        timeout: quick
        retry: unavailable-twice
        circuitBreaker: three-strikes
"""


class Flaky(grpc.GenericRpcHandler):  # type: ignore[misc]
    """`/t.Flaky/<Name>`: fails UNAVAILABLE while its count of calls is below the number in the request,
    `Missing` fails NOT_FOUND, `Slow` takes a second; `Echo` streams back what it gets."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if details.method == "/t.Flaky/Echo":
            return grpc.stream_stream_rpc_method_handler(lambda requests, _: (r for r in requests))
        name = str(details.method).rsplit("/", 1)[-1]

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            with self.lock:
                self.calls[name] = count = self.calls.get(name, 0) + 1
            if name == "Missing":
                context.abort(grpc.StatusCode.NOT_FOUND, "missing")
            if name == "Slow":
                time.sleep(1)
            if count <= int(request or b"0"):
                context.abort(grpc.StatusCode.UNAVAILABLE, f"not yet ({count})")
            return f"ok after {count}".encode()

        return grpc.unary_unary_rpc_method_handler(handle)


@pytest.fixture(scope="module")
def flaky() -> Flaky:
    return Flaky()


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, flaky: Flaky) -> Iterator[SidecarThread]:
    tmp: Path = tmp_path_factory.mktemp("proxy-resiliency")
    (tmp / "resources").mkdir()
    (tmp / "resources" / "resiliency.yaml").write_text(RESILIENCY)
    app = App()
    app.add_external_service(lambda h, server: server.add_generic_rpc_handlers((h,)), flaky)  # type: ignore[no-untyped-call]
    with grpc_app_and_front(tmp, app, front={"resources_paths": [tmp / "resources"]}) as (front, _):
        yield front


def _call(front: SidecarThread, method: str, body: bytes = b"") -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{front.grpc_port}") as channel:
        reply: bytes = channel.unary_unary(f"/t.Flaky/{method}")(
            body, metadata=(("dapr-app-id", "grpc-back"),), timeout=10
        )
        return reply


def _fails(front: SidecarThread, method: str, body: bytes = b"") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _call(front, method, body)
    return caught.value


def test_retries_matched_on_the_grpc_code(front: SidecarThread, flaky: Flaky) -> None:
    assert _call(front, "Twice", b"2") == b"ok after 3"  # two UNAVAILABLE replies retried
    missing = _fails(front, "Missing")
    assert (missing.code(), missing.details()) == (grpc.StatusCode.NOT_FOUND, "missing")
    assert flaky.calls["Missing"] == 1  # NOT_FOUND is not in `matching`: not retried


def test_breaker_opens_and_fails_fast(front: SidecarThread, flaky: Flaky) -> None:
    down = _fails(front, "Down", b"99")
    assert (down.code(), down.details()) == (grpc.StatusCode.UNAVAILABLE, "not yet (3)")
    refused = _fails(front, "Down", b"99")
    assert (refused.code(), refused.details()) == (grpc.StatusCode.UNKNOWN, "circuit breaker is open")
    assert flaky.calls["Down"] == 3
    assert _call(front, "Other") == b"ok after 1"  # the breaker is the method's


def test_timeout_per_attempt(front: SidecarThread, flaky: Flaky) -> None:
    slow = _fails(front, "Slow")
    assert (slow.code(), slow.details()) == (grpc.StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
    assert flaky.calls["Slow"] == 3  # a timeout is retried whatever the matching, as daprd's runner does


def test_a_stream_is_passed_through(front: SidecarThread) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{front.grpc_port}") as channel:
        echo = channel.stream_stream("/t.Flaky/Echo")
        metadata = (("dapr-app-id", "grpc-back"), ("dapr-stream", "true"))
        assert list(echo(iter([b"a", b"b"]), metadata=metadata, timeout=10)) == [b"a", b"b"]
