"""The `--config` file: a Dapr `Configuration` resource. We read preview features, workflow concurrency
limits, secret scopes and the invocation access control list; everything else (tracing, metrics...) is
accepted and logged as not applied."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "AccessControlSpec",
    "AppOperation",
    "AppPolicy",
    "DaprConfiguration",
    "SecretScope",
    "load_configuration",
]

log = logging.getLogger("sidecar.config")

_APPLIED = {"features", "workflow", "secrets", "accessControl", "logging"}

ALLOW, DENY = "allow", "deny"


@dataclass(frozen=True)
class SecretScope:
    """`spec.secrets.scopes[]` for one secret store, decided as daprd's `SecretsScope.IsSecretAllowed`."""

    store: str
    default_access: str = ALLOW
    allowed: frozenset[str] = frozenset()
    denied: frozenset[str] = frozenset()

    def allows(self, key: str) -> bool:
        if self.allowed:  # an allow list decides alone
            return key in self.allowed
        if key in self.denied:
            return False
        return self.default_access.lower() != DENY


@dataclass(frozen=True)
class AppOperation:
    name: str
    verbs: tuple[str, ...] = ()
    action: str = ""


@dataclass(frozen=True)
class AppPolicy:
    app_id: str
    trust_domain: str
    namespace: str
    default_action: str = ""
    operations: tuple[AppOperation, ...] = ()


@dataclass(frozen=True)
class AccessControlSpec:
    """`spec.accessControl` as daprd's `ParseAccessControlSpec` leaves it (defaults set, policies checked)."""

    default_action: str
    trust_domain: str
    policies: tuple[AppPolicy, ...] = ()


@dataclass(frozen=True)
class DaprConfiguration:
    features: dict[str, bool] = field(default_factory=dict)
    max_concurrent_workflows: int | None = None
    max_concurrent_activities: int | None = None
    secret_scopes: dict[str, SecretScope] = field(default_factory=dict)
    access_control: AccessControlSpec | None = None
    # spec.logging.apiLogging: (enabled, omitHealthChecks)
    api_logging: tuple[bool, bool] = (False, False)

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
        secret_scopes=_secret_scopes(spec.get("secrets"), path),
        access_control=_access_control(spec.get("accessControl"), path),
        api_logging=_api_logging(spec.get("logging"), path),
        max_concurrent_workflows=_positive_int(
            wf.get("maxConcurrentWorkflowInvocations"), "maxConcurrentWorkflowInvocations", path
        ),
        max_concurrent_activities=_positive_int(
            wf.get("maxConcurrentActivityInvocations"), "maxConcurrentActivityInvocations", path
        ),
    )


def _api_logging(value: Any, path: Path) -> tuple[bool, bool]:
    """`spec.logging.apiLogging` as (enabled, omitHealthChecks). `obfuscateURLs` (daprd logs an endpoint's
    name, e.g. `SaveState`, instead of its path) is refused: the embedded sidecar's routes carry no names."""
    api = (value or {}).get("apiLogging") if isinstance(value, dict) else None
    if value is not None and not isinstance(value, dict) or api is not None and not isinstance(api, dict):
        raise ValueError(f"{path}: spec.logging.apiLogging must be a mapping")
    api = api or {}
    flags = {}
    for name in ("enabled", "omitHealthChecks", "obfuscateURLs"):
        flag = api.get(name, False)
        if not isinstance(flag, bool):
            raise ValueError(f"{path}: spec.logging.apiLogging.{name} must be true or false, got {flag!r}")
        flags[name] = flag
    if flags["obfuscateURLs"]:
        raise ValueError(
            f"{path}: spec.logging.apiLogging.obfuscateURLs is not supported by the embedded sidecar "
            "(daprd logs endpoint names, which its routes do not have); remove it or set it to false"
        )
    return flags["enabled"], flags["omitHealthChecks"]


def _strings(value: Any, what: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{path}: {what} must be a list of strings, got {value!r}")
    return tuple(value)


def _secret_scopes(section: Any, path: Path) -> dict[str, SecretScope]:
    scopes: dict[str, SecretScope] = {}
    for item in (section or {}).get("scopes") or []:
        if not isinstance(item, dict) or not item.get("storeName"):
            raise ValueError(f"{path}: every spec.secrets.scopes entry needs a storeName, got {item!r}")
        store = str(item["storeName"])
        scopes[store] = SecretScope(
            store,
            default_access=str(item.get("defaultAccess") or ALLOW),
            allowed=frozenset(_strings(item.get("allowedSecrets"), "allowedSecrets", path)),
            denied=frozenset(_strings(item.get("deniedSecrets"), "deniedSecrets", path)),
        )
    return scopes


def _access_control(section: Any, path: Path) -> AccessControlSpec | None:
    """daprd's `acl.ParseAccessControlSpec`: nothing set means no list at all; policies without a default
    action deny by default; a policy without appId, trustDomain or namespace fails the start."""
    if not section or not isinstance(section, dict):
        return None
    given = section.get("policies")
    raw_policies = given or []
    default = str(section.get("defaultAction") or "").lower()
    if not section.get("trustDomain") and not default and not raw_policies:
        return None
    if not default and given == []:  # an explicitly empty list of policies: allow, as daprd
        default = ALLOW
    elif not default:
        log.warning("No global default action has been specified. Setting default global action as Deny")
        default = DENY
    policies: list[AppPolicy] = []
    incomplete: list[str] = []
    for raw in raw_policies:
        app_id = str(raw.get("appId") or "")
        if not app_id or not raw.get("trustDomain") or not raw.get("namespace"):
            incomplete.append(app_id or "<no appId>")
            continue
        operations = tuple(
            AppOperation(
                name=str(op.get("name") or ""),
                verbs=_strings(op.get("httpVerb"), "httpVerb", path),
                action=str(op.get("action") or ""),
            )
            for op in raw.get("operations") or []
        )
        policies.append(
            AppPolicy(
                app_id=app_id,
                trust_domain=str(raw["trustDomain"]),
                namespace=str(raw["namespace"]),
                default_action=str(raw.get("defaultAction") or ""),
                operations=operations,
            )
        )
    if incomplete:
        raise ValueError(
            f"{path}: invalid access control spec: policies need appId, trustDomain and namespace "
            f"(incomplete: {', '.join(incomplete)})"
        )
    return AccessControlSpec(default, str(section.get("trustDomain") or "public"), tuple(policies))
