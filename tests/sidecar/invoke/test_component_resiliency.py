"""`components` targets, outbound: a state store's operations (an ETag mismatch is a failure, retried and
counted by the breaker, as daprd's runner counts any component error), an output binding's calls (timeout
and retries), pub/sub publishing; and what the embedded sidecar refuses at load, not to leave it unapplied."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sidecar.components import ComponentError, load_components
from sidecar.pubsub.broker import BrokerClosed
from sidecar.resiliency import load_resiliency
from sidecar.resiliency.components import WRAPPED_KINDS, apply_outbound, delivery_retry, publish_guard
from sidecar.thread import SidecarThread
from tests.harness import bound_socket
from tests.sidecar.invoke import invoke_app
from tests.sidecar.invoke.conftest import resiliency
from tests.stack import running_sidecar

COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: web
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: url
    value: http://127.0.0.1:{port}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: refused-orders
spec:
  pubsubname: pubsub
  topic: refused
  routes:
    default: /guarded/deliveries
"""

RESILIENCY = resiliency(
    "component-resiliency",
    """\
    components:
      statestore:
        outbound: {retry: twice, circuitBreaker: three-strikes}
      web:
        outbound: {timeout: quick, retry: twice}
      pubsub:
        outbound: {retry: twice, circuitBreaker: three-strikes}
        inbound: {timeout: quick, retry: twice}
""",
)


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    tmp: Path = tmp_path_factory.mktemp("component-resiliency")
    sock = bound_socket()
    (tmp / "resources").mkdir()
    (tmp / "resources" / "components.yaml").write_text(COMPONENTS.format(port=sock.getsockname()[1]))
    (tmp / "resources" / "resiliency.yaml").write_text(RESILIENCY)
    with running_sidecar(
        tmp / "data",
        lambda _: invoke_app.build(),
        app_id="components",
        sock=sock,
        resources_paths=[tmp / "resources"],
    ) as (sidecar, _):
        yield sidecar


def _client(sidecar: SidecarThread) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{sidecar.http_port}/v1.0", timeout=30)


def test_state_store_failures_trip_its_breaker(sidecar: SidecarThread) -> None:
    with _client(sidecar) as c:
        assert c.post("/state/statestore", json=[{"key": "k", "value": 1}]).status_code == 204
        assert c.get("/state/statestore/k").json() == 1
        for _ in range(3):  # an ETag mismatch is not retried (daprd), but the breaker counts it
            stale = c.post("/state/statestore", json=[{"key": "k", "value": 2, "etag": "9999"}])
            assert stale.status_code == 409
        # Three failures in a row tripped the store's breaker: every operation on it now fails at once.
        refused = c.get("/state/statestore/k")
        assert refused.status_code == 500
        assert refused.json()["errorCode"] == "ERR_STATE_GET"
        message = "fail to get k from state store statestore: circuit breaker is open"
        assert refused.json()["message"] == message


def test_output_binding_calls_get_timeout_and_retries(sidecar: SidecarThread) -> None:
    with _client(sidecar) as c:
        flaky = {"operation": "get", "metadata": {"path": "/flaky?key=binding&fail=2"}}
        reply = c.post("/bindings/web", json=flaky)
        assert (reply.status_code, reply.text) == (200, "3")  # two 503s retried
        slow = c.post("/bindings/web", json={"operation": "get", "metadata": {"path": "/slow"}})
        assert slow.status_code == 500
        assert slow.json()["message"] == "error invoking output binding web: context deadline exceeded"


def test_publishing_runs_under_the_pubsub_policy(sidecar: SidecarThread, tmp_path: Path) -> None:
    with _client(sidecar) as c:
        assert c.post("/publish/pubsub/orders", json={"n": 1}).status_code == 204
    # A failing publish (a closed broker) is retried, then the breaker refuses at once.
    (tmp_path / "r.yaml").write_text(RESILIENCY)
    guard = publish_guard(load_resiliency([tmp_path], "any"))
    attempts = []

    async def closed() -> int:
        attempts.append(1)
        raise BrokerClosed("pubsub pubsub is closed")

    for expected in ("pubsub pubsub is closed", "circuit breaker is open"):
        with pytest.raises(BrokerClosed, match=expected):
            asyncio.run(guard("pubsub", closed))
    assert len(attempts) == 3


def test_deliveries_follow_the_pubsub_inbound_policy(sidecar: SidecarThread) -> None:
    invoke_app.GUARDED["deliveries"] = 500  # a retriable failure (daprd's RETRY)
    with _client(sidecar) as c:
        assert c.post("/publish/pubsub/refused", json={"n": 1}).status_code == 204
    deadline = time.monotonic() + 10
    while invoke_app.GUARDED_CALLS.get("deliveries", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)  # the broker's own schedule would have made a 4th attempt by now (at 0.7 s)
    assert invoke_app.GUARDED_CALLS["deliveries"] == 3  # the delivery and the policy's two retries


def test_an_inbound_policy_as_a_delivery_schedule(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        RESILIENCY.replace(
            "twice: {policy: constant, duration: 0s, maxRetries: 2}",
            "twice: {policy: exponential, maxInterval: 1s, maxRetries: 4}",
        )
    )
    schedule = delivery_retry(load_resiliency([tmp_path], "any"))
    pubsub = schedule("pubsub")
    assert pubsub is not None and pubsub.attempts == 5 and pubsub.timeout == 0.3
    assert list(pubsub.delays()) == [0.5, 0.75, 1.0, 1.0]  # dapr/kit's 500 ms, times 1.5, up to 1 s
    assert schedule("other") is None  # no inbound policy: the broker's own schedule


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (
            ("outbound: {timeout: quick, retry: twice}", "inbound: {retry: twice}"),
            "targets.components.web.inbound: the embedded sidecar applies inbound policies to pub/sub",
        ),
        (
            ("      web:\n", "      vault:\n"),
            "outbound policies quick, twice for component 'vault' \\(Secretstore\\)",
        ),
        (
            (
                "outbound: {retry: twice, circuitBreaker: three-strikes}\n",
                "inbound: {circuitBreaker: three-strikes}\n",
            ),
            "targets.components.statestore.inbound: .* and no inbound circuit breaker",
        ),
        (
            ("      twice:", "      DefaultComponentInboundRetryPolicy: {maxRetries: 1}\n      twice:"),
            "DefaultComponentInboundRetryPolicy apply to the inbound side of component 'cron'",
        ),
    ],
)
def test_what_is_not_applied_is_refused(tmp_path: Path, change: tuple[str, str], refusal: str) -> None:
    (tmp_path / "r.yaml").write_text(RESILIENCY.replace(*change))
    kinds = {"statestore": "Statestore", "web": "Binding", "pubsub": "Pubsub", "vault": "Secretstore"}
    with pytest.raises(ComponentError, match=refusal):
        load_resiliency([tmp_path], "any").applied_components(
            {**kinds, "cron": "Binding"}, WRAPPED_KINDS, {"cron"}
        )


def test_broad_defaults_reach_the_wrapped_kinds_only(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        RESILIENCY.replace("      twice:", "      DefaultRetryPolicy: {}\n      twice:")
    )
    loaded = load_resiliency([tmp_path], "any")
    loaded.applied_components({"vault": "Secretstore", "other": "Statestore"}, WRAPPED_KINDS)  # accepted
    other = loaded.component_outbound("other", "Statestore")
    assert other is not None and other.retry is not None and other.retry.max_retries == -1


def test_an_outbound_policy_for_a_conversation_or_crypto_component_stops_start_up(tmp_path: Path) -> None:
    """Their calls take no policy here: naming one is refused, not left unapplied in silence."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (tmp_path / "components.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: llm\n"
        "spec:\n  type: conversation.echo\n  version: v1\n---\n"
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: vault\n"
        "spec:\n  type: crypto.dapr.localstorage\n  version: v1\n  metadata:\n"
        f"  - name: path\n    value: {keys}\n"
    )
    for name, kind in (("llm", "Conversation"), ("vault", "Crypto")):
        (tmp_path / "r.yaml").write_text(
            "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: r\nspec:\n  policies:\n"
            "    retries:\n      twice: {policy: constant, duration: 0s, maxRetries: 2}\n"
            f"  targets:\n    components:\n      {name}:\n        outbound: {{retry: twice}}\n"
        )
        components = load_components([tmp_path], app_id="any", data_dir=tmp_path / "data")
        with pytest.raises(ComponentError, match=f"component '{name}' \\({kind}\\)"):
            apply_outbound(load_resiliency([tmp_path], "any"), components)
