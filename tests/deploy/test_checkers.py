"""The checkers the other deployment tests rely on do find mistakes: each case breaks a real file one way."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.deploy.dapr_resources import go_duration, problems
from tests.deploy.rendering import REPO, k8s_problems, need

Doc = dict[str, Any]


def _load(relative: str) -> Doc:
    doc = yaml.safe_load((REPO / relative).read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and problems(doc) == []
    return doc


def _changed(doc: Doc, change: Callable[[Doc], None]) -> list[str]:
    broken = copy.deepcopy(doc)
    change(broken)
    return problems(broken)


def _set_metadata(doc: Doc, name: str, item: dict[str, Any]) -> None:
    doc["spec"]["metadata"] = [m for m in doc["spec"]["metadata"] if m["name"] != name] + [item]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["spec"]["tracing"].update(sampleRate="1"), "'sampleRate' was unexpected"),
        (lambda d: d["spec"]["tracing"].update(samplingRate="2"), "not a number from 0 to 1"),
        (
            lambda d: d["spec"]["workflow"].update(maxConcurrentWorkflows=5),
            "'maxConcurrentWorkflows' was unexpected",
        ),
        (lambda d: d["spec"]["secrets"]["scopes"][0].update(defaultAccess="block"), "'block' is not one of"),
        (lambda d: d.update(scopes=["todo-engine"]), "'scopes' was unexpected"),
    ],
)
def test_configuration_mistakes(change: Callable[[Doc], None], expected: str) -> None:
    assert any(expected in p for p in _changed(_load("dapr/config.yaml"), change))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["spec"]["policies"]["timeouts"].update(actorTurn="10 seconds"), "is not a duration"),
        (
            lambda d: d["spec"]["targets"]["actors"]["TodoListActor"].update(retry="retryForever"),
            "is not defined",
        ),
        (
            lambda d: d["spec"]["targets"]["actors"]["TodoListActor"].pop("circuitBreakerScope"),
            "needs circuitBreakerScope",
        ),
        # The pre-1.8 CRD called the directions input/output; daprd reads inbound/outbound.
        (
            lambda d: d["spec"]["targets"]["components"]["pubsub"].update(input={"retry": "publishRetry"}),
            "'input'",
        ),
        (
            lambda d: d["spec"]["policies"]["retries"]["actorRetry"].update(policy="linear"),
            "'linear' is not one of",
        ),
        (
            lambda d: d["spec"]["policies"]["circuitBreakers"]["actorBreaker"].update(trip="5 failures"),
            "trip",
        ),
    ],
)
def test_resiliency_mistakes(change: Callable[[Doc], None], expected: str) -> None:
    assert any(expected in p for p in _changed(_load("dapr/resiliency.yaml"), change))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: _set_metadata(d, "redisHosts", {"name": "redisHosts", "value": "x:6379"}), "not a field"),
        (lambda d: _set_metadata(d, "redisHost", {"name": "other", "value": "1"}), "'redisHost' is required"),
        (lambda d: d["spec"]["metadata"].append(dict(d["spec"]["metadata"][0])), "more than once"),
        (
            lambda d: _set_metadata(d, "enableTLS", {"name": "enableTLS", "value": "yes"}),
            "is not true or false",
        ),
        (lambda d: _set_metadata(d, "enableTLS", {"name": "enableTLS", "value": False}), "as a string"),
        (
            lambda d: _set_metadata(d, "processingTimeout", {"name": "processingTimeout", "value": "1 min"}),
            "duration",
        ),
        (
            lambda d: _set_metadata(
                d, "redisPassword", {"name": "redisPassword", "value": "x", "secretKeyRef": {"name": "s"}}
            ),
            "needs one of value, secretKeyRef, envRef",
        ),
        (lambda d: d["spec"].update(version="v2"), "pubsub.redis v2 is unknown"),
        (lambda d: d["spec"].pop("metadata"), "'metadata' is a required property"),
        (lambda d: d.update(auth={"secretstore": "kubernetes"}), "'secretstore' was unexpected"),
    ],
)
def test_component_mistakes(change: Callable[[Doc], None], expected: str) -> None:
    found = _changed(_load("deployments/k8s/base/dapr/pubsub.yaml"), change)
    assert any(expected in p for p in found), found


def test_unknown_kinds_are_reported() -> None:
    assert problems({"apiVersion": "dapr.io/v1alpha1", "kind": "HTTPEndpoint", "metadata": {"name": "x"}})


def test_kubernetes_schema_mistakes() -> None:
    need("kubernetes_validate", "kubernetes-validate")
    deployment = yaml.safe_load((REPO / "deployments/k8s/base/deployment.yaml").read_text(encoding="utf-8"))
    assert k8s_problems(deployment, "1.29.0") == []
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert "'livenesProbe' was unexpected" in k8s_problems(typo, "1.29.0")[0]
    wrong = copy.deepcopy(deployment)
    wrong["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"
    assert k8s_problems(wrong, "1.29.0")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20s", 20.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("250", 0.25),
        ("10 s", None),
        ("", None),
    ],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert go_duration(text) == seconds


def test_subscriptions_are_checked_too() -> None:
    subscription: dict[str, Any] = {
        "apiVersion": "dapr.io/v2alpha1",
        "kind": "Subscription",
        "metadata": {"name": "task-events"},
        "spec": {
            "pubsubname": "pubsub",
            "topic": "task-events",
            "routes": {"default": "/events/task-events"},
        },
        "scopes": ["todo-engine"],
    }
    assert problems(subscription) == []
    assert problems({**subscription, "apiVersion": "dapr.io/v1alpha1"})  # v1alpha1 needs `route` instead
    assert problems({**subscription, "spec": {**subscription["spec"], "deadLetter": "dead"}})
