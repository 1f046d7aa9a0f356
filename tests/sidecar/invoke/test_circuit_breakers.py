"""Circuit breakers on an `apps` target: the CEL `trip` opens the breaker of one endpoint (app and method),
an open breaker fails at once with daprd's error over HTTP and gRPC, and after `timeout` a half-open probe
closes it again (or opens it anew). The breaker's state machine itself runs on an injected clock below; the
end-to-end tests wait its short `timeout` on the wall clock, which is what paces it (a transport concern)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc.client import DaprGrpcClient

from sidecar.resiliency import BreakerSpec, CircuitBreaker, CircuitOpen
from tests.sidecar.invoke import invoke_app
from tests.sidecar.invoke.conftest import TOKEN, Running, running

OPEN_FOR = 0.3  # seconds: the breaker's `timeout`

RESILIENCY = f"""\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: guarded-resiliency
spec:
  policies:
    retries:
      twice:
        policy: constant
        duration: 0s
        maxRetries: 2
    circuitBreakers:
      three-strikes:
        maxRequests: 1
        timeout: {int(OPEN_FOR * 1000)}ms
        trip: consecutiveFailures >= 3
  targets:
    apps:
      guarded:
        retry: twice
        circuitBreaker: three-strikes
"""

OPEN = {
    "errorCode": "ERR_DIRECT_INVOKE",
    "message": "failed to invoke, id: guarded, err: circuit breaker is open",
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running(tmp_path_factory.mktemp("guarded"), "guarded", extra=RESILIENCY) as node:
        yield node


def _client(node: Running) -> httpx.Client:
    return httpx.Client(base_url=node.http, headers={"dapr-api-token": TOKEN}, timeout=30)


def _trip(c: httpx.Client, key: str) -> None:
    """Three failing attempts (the call and its two retries) trip the breaker of `guarded`."""
    invoke_app.GUARDED[key] = 500
    before = invoke_app.GUARDED_CALLS.get(key, 0)
    r = c.get(f"/v1.0/invoke/guarded/method/guarded/{key}")
    assert (r.status_code, r.text) == (500, "guarded")  # the last failed reply, as it is
    assert invoke_app.GUARDED_CALLS[key] == before + 3


def test_trips_fails_fast_and_a_probe_closes_it(guarded: Running) -> None:
    with _client(guarded) as c:
        _trip(c, "a")
        r = c.get("/v1.0/invoke/guarded/method/guarded/a")
        assert (r.status_code, r.json()) == (500, OPEN)
        assert invoke_app.GUARDED_CALLS["a"] == 3  # refused without calling the app, and not retried
        # The breaker is the endpoint's: another method of the app still answers.
        assert c.get("/v1.0/invoke/guarded/method/flaky", params={"key": "g", "fail": "0"}).text == "1"
        invoke_app.GUARDED["a"] = 200
        time.sleep(OPEN_FOR + 0.05)
        assert c.get("/v1.0/invoke/guarded/method/guarded/a").status_code == 200
        assert c.get("/v1.0/invoke/guarded/method/guarded/a").status_code == 200
        assert invoke_app.GUARDED_CALLS["a"] == 5  # the probe closed it: calls flow again


def test_a_failed_probe_opens_it_again(guarded: Running) -> None:
    with _client(guarded) as c:
        _trip(c, "b")
        time.sleep(OPEN_FOR + 0.05)
        r = c.get("/v1.0/invoke/guarded/method/guarded/b")
        # The half-open probe failed: open again, so the retry is refused by the breaker itself.
        assert (r.status_code, r.json()) == (500, OPEN)
        assert invoke_app.GUARDED_CALLS["b"] == 4


def test_grpc_invoke_service_shares_the_breaker(guarded: Running) -> None:
    with _client(guarded) as c:
        _trip(c, "c")
    address = f"127.0.0.1:{guarded.sidecar.grpc_port}"
    with DaprClient(address=address, headers_callback=lambda: {"dapr-api-token": TOKEN}) as client:
        with pytest.raises(grpc.RpcError) as caught:
            DaprGrpcClient.invoke_method(client, "guarded", "guarded/c", http_verb="GET")
    # daprd returns gobreaker's error as it is (a plain Go error: UNKNOWN), not as ERR_DIRECT_INVOKE.
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.UNKNOWN,
        "circuit breaker is open",
    )
    assert invoke_app.GUARDED_CALLS["c"] == 3


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _outcome(breaker: CircuitBreaker, success: bool) -> None:
    breaker.after(breaker.before(), success)


def test_breaker_states_as_gobreaker() -> None:
    clock = _Clock()
    spec = BreakerSpec(
        "cb", max_requests=2, interval=10.0, timeout=5.0, trip=BreakerSpec.compile_trip("totalFailures > 2")
    )
    cb = CircuitBreaker("cb", spec, now=clock)
    for success in (False, True, False):
        _outcome(cb, success)
    assert cb.state == "closed" and cb.counts.total_failures == 2
    clock.now = 10.5  # `interval` passed while closed: the counts start over
    _outcome(cb, False)
    assert cb.state == "closed" and cb.counts.total_failures == 1
    _outcome(cb, False)
    _outcome(cb, False)
    assert cb.state == "open"
    with pytest.raises(CircuitOpen, match="^circuit breaker is open$"):
        cb.before()
    clock.now = 16.0  # `timeout` passed: half-open, `maxRequests` probes at a time
    first, second = cb.before(), cb.before()
    with pytest.raises(CircuitOpen, match="^too many requests$"):
        cb.before()
    cb.after(first, True)
    assert cb.state == "half-open"
    cb.after(second, True)
    assert cb.state == "closed"  # `maxRequests` consecutive successes close it
    late = cb.before()
    for _ in range(3):
        _outcome(cb, False)
    assert cb.state == "open"
    cb.after(late, True)  # an outcome from an earlier generation is ignored
    assert cb.state == "open" and cb.counts.requests == 0


def test_default_trip_and_a_trip_that_fails_to_evaluate() -> None:
    cb = CircuitBreaker("cb", BreakerSpec("cb"))
    for _ in range(5):
        _outcome(cb, False)
    assert cb.state == "closed"
    _outcome(cb, False)
    assert cb.state == "open"  # gobreaker's default: consecutiveFailures > 5
    odd = CircuitBreaker("odd", BreakerSpec("odd", trip=BreakerSpec.compile_trip("int('x') > requests")))
    for _ in range(10):
        _outcome(odd, False)
    assert odd.state == "closed"  # daprd: an expression that errors never trips
    with pytest.raises(ValueError, match="undeclared reference to 'failures'"):
        BreakerSpec.compile_trip("failures > 1")
