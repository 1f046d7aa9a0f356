"""The Helm chart renders what kustomize renders: its defaults = the base, values-prod.yaml = overlays/prod.

Rendering uses Helm's own Go SDK (offline, as `helm template` does); the comparison ignores only the
labels Helm charts add by convention and the Namespace object (Helm's `--create-namespace` makes it).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.dapr_resources import problems
from tests.deploy.rendering import CHART, comparable, helm_template, k8s_problems, need, one

Docs = list[dict[str, Any]]


def _diff(left: Docs, right: Docs) -> list[str]:
    a, b = comparable(left), comparable(right)
    lines = [f"only in helm: {k}" for k in sorted(a.keys() - b.keys())]
    lines += [f"only in kustomize: {k}" for k in sorted(b.keys() - a.keys())]
    for key in sorted(a.keys() & b.keys()):
        if a[key] != b[key]:
            lines.append(f"{key} differs:\n  helm:      {a[key]}\n  kustomize: {b[key]}")
    return lines


def test_the_chart_lints_without_warnings() -> None:
    helm_python = need("helm_python", "helm-python-sdk")
    report = helm_python.lint(CHART, strict=True, kube_version="v1.29.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_default_values_render_the_kustomize_base(helm_default: Docs, base: Docs) -> None:
    assert _diff(helm_default, base) == []


def test_prod_values_render_the_prod_overlay(helm_prod: Docs, prod: Docs) -> None:
    assert _diff(helm_prod, prod) == []


def test_the_comparison_sees_one_changed_value(base: Docs) -> None:
    need("helm_python", "helm-python-sdk")
    changed = _diff(helm_template(CHART, values={"dapr": {"logLevel": "debug"}}), base)
    assert len(changed) == 1 and changed[0].startswith("('Deployment', 'todo-engine') differs")
    assert len(comparable(base)) == len(base) - 1 == 12


def test_another_release_renames_its_objects_and_keeps_the_app_id(k8s_versions: list[str]) -> None:
    need("helm_python", "helm-python-sdk")
    docs = helm_template(CHART, release="todo-staging", namespace="staging")
    found = [p for d in docs for p in (problems(d) if d["apiVersion"].startswith("dapr.io/") else [])]
    found += [
        p
        for d in docs
        if not d["apiVersion"].startswith("dapr.io/")
        for v in k8s_versions
        for p in k8s_problems(d, v)
    ]
    assert found == []
    assert {d["metadata"]["namespace"] for d in docs} == {"staging"}
    deployment = one(docs, "Deployment", "todo-staging")
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    assert notes["dapr.io/app-id"] == "todo-engine"
    config = one(docs, "Configuration", notes["dapr.io/config"])
    assert config["spec"]["accessControl"]["policies"][0]["namespace"] == "staging"
    assert one(docs, "RoleBinding")["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "namespace": "staging",
    }
    assert {tuple(c["scopes"]) for c in docs if c["kind"] == "Component"} == {("todo-engine",)}


def test_an_unknown_pubsub_type_stops_the_render() -> None:
    helm_python = need("helm_python", "helm-python-sdk")
    with pytest.raises(helm_python.HelmRenderError, match="must be redis or kafka"):
        helm_template(CHART, values={"dapr": {"pubsub": {"type": "nats"}}})
