"""The `--config` file: a Dapr `Configuration` resource. We read preview features and workflow concurrency
limits; everything else (tracing, metrics, access control...) is accepted and logged as not applied."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DaprConfiguration", "load_configuration"]

log = logging.getLogger("sidecar.config")

_APPLIED = {"features", "workflow"}


@dataclass(frozen=True)
class DaprConfiguration:
    features: dict[str, bool] = field(default_factory=dict)
    max_concurrent_workflows: int | None = None
    max_concurrent_activities: int | None = None

    def feature(self, name: str, default: bool = False) -> bool:
        return self.features.get(name, default)

    def enabled_features(self) -> list[str]:
        return sorted(k for k, v in self.features.items() if v)


def _positive_int(value: Any, what: str, path: Path) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{path}: {what} must be a non-negative integer, got {value!r}")
    return value or None


def load_configuration(path: Path | None) -> DaprConfiguration:
    """Load a Configuration YAML; a missing path gives the defaults, a bad file is a startup error."""
    if path is None:
        return DaprConfiguration()
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read Dapr configuration {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "Configuration":
        raise ValueError(f"{path}: expected a Dapr resource of kind Configuration")
    spec = doc.get("spec") or {}
    features = {
        str(f["name"]): bool(f.get("enabled", False))
        for f in spec.get("features") or []
        if isinstance(f, dict) and "name" in f
    }
    wf = spec.get("workflow") or {}
    ignored = sorted(set(spec) - _APPLIED)
    if ignored:
        log.info(
            "configuration %s: sections not applied by the embedded sidecar: %s",
            path,
            ", ".join(ignored),
        )
    return DaprConfiguration(
        features=features,
        max_concurrent_workflows=_positive_int(
            wf.get("maxConcurrentWorkflowInvocations"), "maxConcurrentWorkflowInvocations", path
        ),
        max_concurrent_activities=_positive_int(
            wf.get("maxConcurrentActivityInvocations"), "maxConcurrentActivityInvocations", path
        ),
    )
