"""Resiliency policies on an `apps` target: retries matched by status, the last reply passed through once
they run out, and a timeout per attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sidecar.components import ComponentError
from sidecar.resiliency import RetryPolicy, load_resiliency
from tests.sidecar.invoke.conftest import TOKEN, Running, running

RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: invoke-resiliency
scopes: [sturdy]
spec:
  policies:
    timeouts:
      quick: 500ms
    retries:
      twice:
        policy: constant
        duration: 0s
        maxRetries: 2
        matching:
          httpStatusCodes: "502-504"
    circuitBreakers:
      cb: {maxRequests: 1, timeout: 30s, trip: consecutiveFailures >= 5}
  targets:
    apps:
      sturdy:
        timeout: quick
        retry: twice
"""


@pytest.fixture(scope="module")
def sturdy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running(tmp_path_factory.mktemp("sturdy"), "sturdy", extra=RESILIENCY) as sturdy:
        yield sturdy


def test_retries_until_the_app_answers(sturdy: Running) -> None:
    with httpx.Client(base_url=sturdy.http, headers={"dapr-api-token": TOKEN}) as c:
        ok = c.get("/v1.0/invoke/sturdy/method/flaky", params={"key": "a", "fail": "2"})
        assert (ok.status_code, ok.text) == (200, "3")  # two 503s retried, the third call answered
        out = c.get("/v1.0/invoke/sturdy/method/flaky", params={"key": "b", "fail": "5"})
        assert (out.status_code, out.text) == (503, "not yet")  # retries ran out: the last reply as is
        assert c.get("/v1.0/invoke/sturdy/method/flaky", params={"key": "b", "fail": "0"}).text == "4"
        # A status the retry does not match is answered at once.
        assert c.get("/v1.0/invoke/sturdy/method/broken").status_code == 500
        assert c.get("/v1.0/invoke/sturdy/method/teapot").status_code == 418


def test_timeout_per_attempt(sturdy: Running) -> None:
    with httpx.Client(base_url=sturdy.http, headers={"dapr-api-token": TOKEN}, timeout=30) as c:
        r = c.get("/v1.0/invoke/sturdy/method/slow")
    assert r.status_code == 500
    assert r.json() == {
        "errorCode": "ERR_DIRECT_INVOKE",
        "message": "failed to invoke, id: sturdy, err: context deadline exceeded",
    }


def test_loading(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RESILIENCY)
    policy = load_resiliency([tmp_path], "sturdy").endpoint("sturdy", "any")
    assert policy is not None and policy.timeout == 0.5 and policy.retry is not None
    assert policy.breaker is None  # `cb` is defined but no target uses it
    assert list(policy.retry.delays()) == [0.0, 0.0]
    assert policy.retry.retries_status(503) and not policy.retry.retries_status(500)
    assert load_resiliency([tmp_path], "other-app").endpoint("sturdy", "any") is None  # out of scope
    (tmp_path / "r.yaml").write_text(RESILIENCY.replace("retry: twice", "retry: thrice"))
    with pytest.raises(ComponentError, match="app sturdy: no retry policy 'thrice'"):
        load_resiliency([tmp_path], "sturdy")
    (tmp_path / "r.yaml").write_text(RESILIENCY.replace("consecutiveFailures >= 5", "failures >= 5"))
    with pytest.raises(ComponentError, match="invalid trip expression.*undeclared reference to 'failures'"):
        load_resiliency([tmp_path], "sturdy")
    (tmp_path / "r.yaml").write_text(
        RESILIENCY.replace(
            "    retries:\n", "    retries:\n      DaprBuiltInServiceRetries: {maxRetries: 5}\n"
        )
    )
    with pytest.raises(ComponentError, match="DaprBuiltInServiceRetries overrides one of daprd's built-in"):
        load_resiliency([tmp_path], "sturdy")


def test_fields_daprd_would_drop_are_refused(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        RESILIENCY.replace("duration: 0s", "duration: 0s\n        multiplier: 3")
    )
    with pytest.raises(ComponentError, match="retry policy twice: multiplier is not a field of daprd's"):
        load_resiliency([tmp_path], "sturdy")


def test_default_policies_apply_to_apps_without_a_target(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        RESILIENCY.replace(
            "      quick: 500ms", "      quick: 500ms\n      DefaultTimeoutPolicy: 2s"
        ).replace(
            "    circuitBreakers:\n      cb:", "    circuitBreakers:\n      DefaultAppCircuitBreakerPolicy:"
        )
    )
    loaded = load_resiliency([tmp_path], "sturdy")
    other = loaded.endpoint("other", "m")
    assert other is not None and other.timeout == 2.0 and other.retry is None and other.breaker is not None
    assert (
        loaded.endpoint("other", "m") is not None and loaded.endpoint("other", "m").breaker is other.breaker
    )  # type: ignore[union-attr]
    sturdy = loaded.endpoint("sturdy", "m")
    assert sturdy is not None and sturdy.timeout == 0.5 and sturdy.breaker is None  # its target wins


def test_exponential_backoff_stays_within_bounds() -> None:
    policy = RetryPolicy(policy="exponential", initial_interval=0.5, max_interval=2.0, max_retries=6)
    delays = list(policy.delays())
    assert len(delays) == 6
    assert 0.25 <= delays[0] <= 0.75 and all(d <= 3.0 for d in delays)  # ±50% around the interval
