"""The embedded sidecar refuses the production component types at start-up, naming the type and the file:
PostgreSQL, Redis, Kafka and Kubernetes Secrets run beside a real daprd only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.components import UnsupportedComponent, load_components
from tests.deploy.rendering import K8S

Docs = list[dict[str, Any]]


def _component_files() -> list[Path]:
    files = []
    for path in sorted(K8S.rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        if any(d.get("kind") == "Component" for d in docs):
            files.append(path)
    return files


def test_the_manifests_declare_production_components() -> None:
    names = sorted(str(p.relative_to(K8S)) for p in _component_files())
    assert names == [
        "base/dapr/pubsub.yaml",
        "base/dapr/secretstore.yaml",
        "base/dapr/statestore.yaml",
        "overlays/prod/pubsub-kafka.yaml",
    ]


@pytest.mark.parametrize("path", _component_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_each_is_refused_with_its_type_and_file(path: Path, tmp_path: Path) -> None:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    with pytest.raises(UnsupportedComponent) as refused:
        load_components([path], app_id="todo-engine", data_dir=tmp_path, environ={})
    message = str(refused.value)
    assert repr(doc["spec"]["type"]) in message
    assert str(path) in message
    assert "real daprd" in message
    assert list(tmp_path.iterdir()) == []  # nothing was created before the refusal


def test_a_whole_manifest_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedComponent, match="does not support"):
        load_components([K8S / "base" / "dapr"], app_id="todo-engine", data_dir=tmp_path, environ={})


def test_the_helm_charts_components_are_refused_too(helm_prod: Docs, tmp_path: Path) -> None:
    components = [d for d in helm_prod if d["kind"] == "Component"]
    assert len(components) == 3
    for doc in components:
        file = tmp_path / f"{doc['metadata']['name']}.yaml"
        file.write_text(yaml.safe_dump(doc), encoding="utf-8")
        with pytest.raises(UnsupportedComponent, match=doc["spec"]["type"].replace(".", r"\.")):
            load_components([file], app_id="todo-engine", data_dir=tmp_path / "data", environ={})
