"""A checker for Component, Configuration, Resiliency and Subscription resources: what daprd 1.16 accepts.

`problems(doc)` lists every finding: fields outside the schema (`dapr_schemas`), component metadata that
the component type does not read (`dapr_fields`), values daprd cannot parse (durations, booleans), and
resiliency targets naming undefined policies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from sidecar.bindings.schedule import ScheduleError, parse_schedule
from tests.deploy.dapr_fields import ALLOWED_VALUES, BOOLEANS, COMPONENT_METADATA, DURATIONS
from tests.deploy.dapr_schemas import SCHEMAS

__all__ = ["go_duration", "problems"]

_GO_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)"
_GO_DURATION = re.compile(rf"(?:{_GO_PART})+")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRIP = re.compile(r"^(consecutiveFailures|requests|totalFailures)\s*(>=|>|==)\s*\d+$")


def go_duration(text: str) -> float | None:
    """Seconds in a Go `time.ParseDuration` string (daprd also takes a bare integer as milliseconds)."""
    if re.fullmatch(r"\d+", text):
        return int(text) / 1000
    if not _GO_DURATION.fullmatch(text):
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in re.findall(_GO_PART, text))


def problems(doc: Mapping[str, Any]) -> list[str]:
    """Every reason daprd would refuse `doc`, ignore part of it, or not mean what it says."""
    kind = doc.get("kind")
    where = f"{kind} {doc.get('metadata', {}).get('name', '?')!r}"
    schema = SCHEMAS.get(str(kind))
    if schema is None:
        return [f"{where}: not a Dapr resource kind this checker knows"]
    found = [
        f"{where}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)
    ]
    if found:
        return found
    spec = doc.get("spec") or {}
    checks = {"Component": _component, "Configuration": _configuration, "Resiliency": _resiliency}
    return [f"{where}: {p}" for p in checks.get(str(kind), lambda _: iter(()))(spec)]


def _component(spec: Mapping[str, Any]) -> Iterator[str]:
    key = (str(spec["type"]), str(spec["version"]))
    if key not in COMPONENT_METADATA:
        yield f"type {key[0]} {key[1]} is unknown here (add its fields to dapr_fields.COMPONENT_METADATA)"
        return
    accepted, required = COMPONENT_METADATA[key]
    names = [str(item["name"]) for item in spec["metadata"]]
    for name in sorted({n for n in names if names.count(n) > 1}):
        yield f"metadata {name!r} is given more than once"
    for name in names:
        if name not in accepted:
            yield f"metadata {name!r} is not a field of {key[0]} {key[1]}"
    for name in sorted(required - set(names)):
        yield f"metadata {name!r} is required by {key[0]} {key[1]}"
    for item in spec["metadata"]:
        sources = [k for k in ("value", "secretKeyRef", "envRef") if k in item]
        if len(sources) != 1:
            yield f"metadata {item['name']!r} needs one of value, secretKeyRef, envRef (has {sources})"
            continue
        if "value" not in item:
            continue
        value, name = item["value"], str(item["name"])
        if not isinstance(value, str):
            yield f"metadata {name!r}: write the value as a string (daprd passes its JSON text through)"
        elif name in DURATIONS and go_duration(value) is None:
            yield f"metadata {name!r}: {value!r} is not a duration"
        elif name in BOOLEANS and value.lower() not in ("true", "false"):
            yield f"metadata {name!r}: {value!r} is not true or false"
        elif name in ALLOWED_VALUES and value not in ALLOWED_VALUES[name]:
            yield f"metadata {name!r}: {value!r} is not one of {sorted(ALLOWED_VALUES[name])}"
        elif name == "schedule" and (reason := _schedule_problem(value)):
            yield f"metadata {name!r}: {value!r} is not a schedule daprd's cron accepts: {reason}"


def _schedule_problem(value: str) -> str | None:
    # The sidecar's parser is checked against dapr/kit's rules and wording (tests/sidecar/bindings).
    try:
        parse_schedule(value)
    except ScheduleError as exc:
        return str(exc)
    return None


def _configuration(spec: Mapping[str, Any]) -> Iterator[str]:
    tracing = spec.get("tracing")
    if tracing is not None:
        try:
            rate = float(tracing["samplingRate"])
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            yield f"tracing.samplingRate {tracing['samplingRate']!r} is not a number from 0 to 1"
    stores = [s["storeName"] for s in (spec.get("secrets") or {}).get("scopes", [])]
    for store in sorted({s for s in stores if stores.count(s) > 1}):
        yield f"secrets.scopes lists {store!r} twice"


def _resiliency(spec: Mapping[str, Any]) -> Iterator[str]:
    policies = spec["policies"]
    defined = {kind: set(policies.get(kind) or {}) for kind in ("timeouts", "retries", "circuitBreakers")}
    for name, value in (policies.get("timeouts") or {}).items():
        if go_duration(str(value)) is None:
            yield f"timeout {name!r}: {value!r} is not a duration"
    for name, retry in (policies.get("retries") or {}).items():
        for field in ("duration", "maxInterval"):
            if field in retry and go_duration(str(retry[field])) is None:
                yield f"retry {name!r}: {field} {retry[field]!r} is not a duration"
    for name, breaker in (policies.get("circuitBreakers") or {}).items():
        for field in ("interval", "timeout"):
            if field in breaker and go_duration(str(breaker[field])) is None:
                yield f"circuit breaker {name!r}: {field} {breaker[field]!r} is not a duration"
        if not _TRIP.fullmatch(str(breaker.get("trip", ""))):
            yield f"circuit breaker {name!r}: trip {breaker.get('trip')!r} is not 'consecutiveFailures > N'"
    targets = spec["targets"]
    named: list[tuple[str, Mapping[str, Any]]] = []
    for kind in ("apps", "actors"):
        named += [(f"{kind}.{n}", t) for n, t in (targets.get(kind) or {}).items()]
    for name, target in (targets.get("components") or {}).items():
        named += [(f"components.{name}.{d}", target[d]) for d in ("inbound", "outbound") if d in target]
    kinds = {"timeout": "timeouts", "retry": "retries", "circuitBreaker": "circuitBreakers"}
    for where, target in named:
        for field, kind in kinds.items():
            if field in target and target[field] not in defined[kind]:
                yield f"target {where}: {field} {target[field]!r} is not defined in policies.{kind}"
    for name, target in (targets.get("actors") or {}).items():
        if "circuitBreaker" in target and "circuitBreakerScope" not in target:
            yield f"target actors.{name}: a circuit breaker needs circuitBreakerScope (else daprd refuses it)"
