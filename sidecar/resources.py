"""The Dapr resource files daprd reads (`--resources-path`): YAML documents found and sorted into
components and subscriptions for one app id, as daprd's disk loader does (`*.yaml`/`*.yml` files,
multi-document, valid unique names, `scopes`). What a component becomes is `sidecar.components`' part.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sidecar.pubsub.subscriptions import DeclarativeSubscription

__all__ = [
    "ComponentError",
    "Resource",
    "read_resources",
    "resource_documents",
    "resource_type",
]

log = logging.getLogger("sidecar.components")

_COMPONENT_API = "dapr.io/v1alpha1"
_SUBSCRIPTION_APIS = ("dapr.io/v1alpha1", "dapr.io/v2alpha1")


class ComponentError(Exception):
    """A resources file cannot be used (bad YAML, missing field, unresolvable secret). Fix the file."""


@dataclass(frozen=True)
class Resource:
    file: Path
    doc: Mapping[str, Any]

    @property
    def name(self) -> str:
        meta = self.doc.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""

    @property
    def spec(self) -> Mapping[str, Any]:
        spec = self.doc.get("spec") or {}
        if not isinstance(spec, Mapping):
            raise self.error("`spec` must be a mapping")
        return spec

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.doc.get("scopes") or ())

    def error(self, message: str) -> ComponentError:
        what = f"{self.doc.get('kind', 'resource')} {self.name!r}" if self.name else "a resource"
        return ComponentError(f"{self.file}: {what}: {message}")


def resource_type(resource: Resource) -> str:
    return str(resource.spec.get("type") or "").lower()


def resource_documents(paths: Iterable[Path | str], kind: str) -> list[tuple[Path, Mapping[str, Any]]]:
    """Every YAML document of `kind` in `paths`, with its file (for resources applied elsewhere)."""
    found: list[tuple[Path, Mapping[str, Any]]] = []
    for file in _files(paths):
        try:
            docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ComponentError(f"{file}: invalid YAML: {exc}") from None
        found += [(file, d) for d in docs if isinstance(d, Mapping) and d.get("kind") == kind]
    return found


def _files(paths: Iterable[Path | str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for entry in sorted(path.iterdir(), key=lambda p: p.name):
                if entry.is_file() and entry.suffix.lower() in (".yaml", ".yml"):
                    files.append(entry)
                elif entry.is_file():
                    log.warning("A non-YAML resource file %s was detected, it will not be loaded", entry)
        else:
            raise ComponentError(f"{path}: resources path does not exist")
    return files


def read_resources(
    paths: Iterable[Path | str], app_id: str
) -> tuple[list[Resource], list[DeclarativeSubscription]]:
    components_: list[Resource] = []
    subscriptions: list[Resource] = []
    for file in _files(paths):
        try:
            docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d is not None]
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ComponentError(f"{file}: invalid YAML: {exc}") from None
        for doc in docs:
            if not isinstance(doc, Mapping):
                raise ComponentError(f"{file}: a YAML document is not a mapping")
            resource = Resource(file, doc)
            kind, api = doc.get("kind"), doc.get("apiVersion")
            if kind == "Component" and api == _COMPONENT_API:
                components_.append(resource)
            elif kind == "Subscription" and api in _SUBSCRIPTION_APIS:
                subscriptions.append(resource)
            elif kind == "WorkflowAccessPolicy" and (not resource.scopes or app_id in resource.scopes):
                # An allow-list skipped in silence would let every app call what it is meant to guard.
                raise resource.error(
                    "not supported by the embedded sidecar: cross-app workflow calls would not be checked "
                    "against it; remove it (or scope it to other apps), or run this app beside daprd"
                )
            else:
                log.debug("%s: skipping %s %s (not used by the embedded sidecar)", file, api, kind)
    return (
        _in_scope(components_, app_id),
        [_subscription(r) for r in _in_scope(subscriptions, app_id)],
    )


def _in_scope(resources: list[Resource], app_id: str) -> list[Resource]:
    """daprd's filter: valid unique names first (even out of scope), then `scopes`."""
    seen: dict[str, Resource] = {}
    kept: list[Resource] = []
    for resource in resources:
        name = resource.name
        if not name or name in (".", "..") or "/" in name or "%" in name:
            raise resource.error(f"invalid name {name!r}: `metadata.name` must be a path segment")
        if name in seen:
            raise resource.error(f"duplicate definition (first in {seen[name].file})")
        seen[name] = resource
        if resource.scopes and app_id not in resource.scopes:
            log.debug("%s %s is not scoped to app %s", resource.doc.get("kind"), name, app_id)
            continue
        kept.append(resource)
    return kept


def _subscription(resource: Resource) -> DeclarativeSubscription:
    spec = resource.spec
    pubsubname, topic = spec.get("pubsubname"), spec.get("topic")
    if not pubsubname or not topic:
        raise resource.error("`spec.pubsubname` and `spec.topic` are required")
    if resource.doc.get("apiVersion") == "dapr.io/v1alpha1":
        routes: dict[str, Any] = {"rules": [], "default": str(spec.get("route") or "")}
    else:
        raw = spec.get("routes") or {}
        if not isinstance(raw, Mapping):
            raise resource.error("`spec.routes` must be a mapping")
        rules = [
            {"match": str(r.get("match") or ""), "path": str(r.get("path") or "")}
            for r in raw.get("rules") or []
            if isinstance(r, Mapping)
        ]
        routes = {"rules": rules, "default": str(raw.get("default") or "")}
    return DeclarativeSubscription(
        name=resource.name,
        pubsubname=str(pubsubname),
        topic=str(topic),
        routes=routes,
        dead_letter_topic=str(spec.get("deadLetterTopic") or "") or None,
        metadata={str(k): str(v) for k, v in (spec.get("metadata") or {}).items()},
        scopes=resource.scopes,
        bulk_subscribe=_bulk_subscribe(resource),
    )


def _bulk_subscribe(resource: Resource) -> Mapping[str, Any] | None:
    bulk = resource.spec.get("bulkSubscribe")
    if bulk is None:
        return None
    if not isinstance(bulk, Mapping):
        raise resource.error("`spec.bulkSubscribe` must be a mapping")
    return bulk
