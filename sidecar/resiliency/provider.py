"""The `kind: Resiliency` resources of one sidecar, merged as daprd merges them, and the policy each call
gets: an app endpoint, an actor (before and after its turn is taken), a component (its operations, and a
pub/sub component's deliveries).

Named targets win; otherwise daprd's default policies (`DefaultAppRetryPolicy`, `DefaultRetryPolicy`,
`DefaultStatestoreComponentOutboundTimeoutPolicy`, ...) apply. Breakers are kept per app endpoint (an LRU of
`circuitBreakerCacheSize`), per actor type or type and id, and per component, as daprd keeps them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.actors.timefmt import parse_go_duration
from sidecar.resiliency.breaker import BreakerSpec, CircuitBreaker
from sidecar.resiliency.policy import Policy, RetryPolicy
from sidecar.resources import ComponentError, resource_documents

__all__ = ["Names", "Resiliency", "load_resiliency"]

_API = "dapr.io/v1alpha1"
_ENDPOINT_CACHE, _ACTOR_CACHE = 100, 5000
_BUILT_IN = frozenset(
    f"DaprBuiltIn{name}Retries"
    for name in ("Service", "Actor", "ActorReminder", "ActorNotFound", "Initialization")
)


@dataclass(frozen=True)
class Names:
    """The policy names one target (or direction) sets; "" for none."""

    timeout: str = ""
    retry: str = ""
    breaker: str = ""
    scope: str = ""  # actors: type, id or both
    cache_size: int = 0

    @staticmethod
    def of(raw: Mapping[str, Any]) -> Names:
        return Names(
            str(raw.get("timeout") or ""),
            str(raw.get("retry") or ""),
            str(raw.get("circuitBreaker") or ""),
            str(raw.get("circuitBreakerScope") or ""),
            int(raw.get("circuitBreakerCacheSize") or 0),
        )


@dataclass
class Resiliency:
    """Every policy and target of the sidecar's Resiliency resources, and the breakers in use."""

    timeouts: dict[str, float] = field(default_factory=dict)
    retries: dict[str, RetryPolicy] = field(default_factory=dict)
    breakers: dict[str, BreakerSpec] = field(default_factory=dict)
    apps: dict[str, Names] = field(default_factory=dict)
    actors: dict[str, Names] = field(default_factory=dict)
    components: dict[str, dict[str, Names]] = field(default_factory=dict)  # name -> inbound/outbound
    _live: dict[str, OrderedDict[str, CircuitBreaker]] = field(default_factory=dict)
    # `_defaults` by its arguments: the policies are fixed once loaded, and every call asks again
    _default_names: dict[tuple[tuple[str, ...], str, bool], Names] = field(default_factory=dict)

    def endpoint(self, app_id: str, method: str) -> Policy | None:
        """daprd's `EndpointPolicy(app, app:method)`: None when nothing applies."""
        names = self.apps.get(app_id) or self._defaults("App")
        if not (names.timeout or names.retry or names.breaker):
            return None
        key = f"{app_id}:{method}"
        cache = (f"app/{app_id}", names.cache_size or _ENDPOINT_CACHE)
        return self._policy(f"endpoint[{app_id}, {key}]", names, cache, key)

    def actor(self, actor_type: str, actor_id: str) -> Policy | None:
        """daprd's `ActorPreLockPolicy`: retries and the breaker, around the call in the calling sidecar."""
        names = self.actors.get(actor_type) or self._defaults("Actor", scope="type")
        if not (names.retry or names.breaker):
            return None
        key = actor_type if names.scope == "type" else f"{actor_type}-{actor_id}"  # "both" as daprd: by id
        cache = (f"actor/{actor_type}", names.cache_size or _ACTOR_CACHE)
        return self._policy(
            f"actor[{actor_type}, {actor_id}]", Names("", names.retry, names.breaker), cache, key
        )

    def actor_timeout(self, actor_type: str) -> float | None:
        """daprd's `ActorPostLockPolicy`: the timeout of the app call once the actor's turn is taken."""
        names = self.actors.get(actor_type) or self._defaults("Actor")
        return self.timeouts[names.timeout] if names.timeout else None

    def component_outbound(self, name: str, kind: str) -> Policy | None:
        """daprd's `ComponentOutboundPolicy`; `kind` is its component type (Statestore, Pubsub, Binding)."""
        names = self._component(name, kind, "Outbound")
        if not (names.timeout or names.retry or names.breaker):
            return None
        return self._policy(f"component[{name}] output", names, (f"component/{name}", 0), name)

    def component_inbound(self, name: str, kind: str) -> tuple[float | None, RetryPolicy | None] | None:
        """The timeout and retry of daprd's `ComponentInboundPolicy` (a pub/sub component's deliveries);
        None when no policy applies. Its breaker is refused at load, or, from a broad default, not applied."""
        names = self._component(name, kind, "Inbound")
        if not (names.timeout or names.retry):
            return None
        timeout = self.timeouts[names.timeout] if names.timeout else None
        return timeout or None, self.retries.get(names.retry)

    def _component(self, name: str, kind: str, direction: str) -> Names:
        target = self.components.get(name)
        if target is not None:
            return target[direction.lower()]
        return self._defaults(f"{kind}Component{direction}", f"Component{direction}", "Component")

    def applied_components(
        self, kinds: Mapping[str, str], wrapped: Iterable[str], inputs: Iterable[str] = ()
    ) -> None:
        """Refuse what would not be applied (raises ComponentError). `kinds`: every component's daprd type
        by name; `wrapped`: the types whose outbound operations take policies; `inputs`: the input bindings.
        Inbound policies apply to pub/sub deliveries (timeout, retries) only: one for another component,
        an inbound breaker, or an outbound policy for a kind not wrapped is refused when named or set by a
        typed default (`Default<Type>Component<Direction>...`); the broad defaults (`DefaultComponent*`,
        `Default*`) reach only what is applied."""
        for name, target in self.components.items():
            inbound = target["inbound"]
            if inbound != Names() and name in kinds and (kinds[name] != "Pubsub" or inbound.breaker):
                raise ComponentError(
                    f"Resiliency targets.components.{name}.inbound: the embedded sidecar applies inbound "
                    "policies to pub/sub deliveries only, as a timeout per attempt and retries (its durable "
                    "broker's redelivery); not to input bindings, and no inbound circuit breaker"
                )
        for name, kind in kinds.items():
            typed = self._defaults(f"{kind}ComponentInbound", "ComponentInbound", top=False)
            if name in inputs and typed != Names() or kind == "Pubsub" and typed.breaker:
                raise ComponentError(
                    f"Resiliency default policies {_listed(typed)} apply to the inbound side of component "
                    f"{name!r}: the embedded sidecar applies inbound policies to pub/sub deliveries only, "
                    "with no circuit breaker"
                )
            named = self.components[name]["outbound"] if name in self.components else Names()
            outbound = named if named != Names() else self._defaults(f"{kind}ComponentOutbound", top=False)
            if outbound != Names() and kind not in wrapped:
                raise ComponentError(
                    f"Resiliency outbound policies {_listed(outbound)} for component {name!r} ({kind}): the "
                    f"embedded sidecar applies outbound policies to {', '.join(wrapped)} components only"
                )

    def _defaults(self, *levels: str, scope: str = "", top: bool = True) -> Names:
        """daprd's default policy names, most specific level first, then (`top`) `Default<Kind>Policy`."""
        found = self._default_names.get((levels, scope, top))
        if found is None:
            found = self._default_names[levels, scope, top] = self._find_defaults(levels, scope, top)
        return found

    def _find_defaults(self, levels: tuple[str, ...], scope: str, top: bool) -> Names:

        def pick(kind: str, known: Mapping[str, Any]) -> str:
            for level in (*levels, "") if top else levels:
                if f"Default{level}{kind}Policy" in known:
                    return f"Default{level}{kind}Policy"
            return ""

        names = Names(pick("Timeout", self.timeouts), pick("Retry", self.retries))
        return Names(names.timeout, names.retry, pick("CircuitBreaker", self.breakers), scope)

    def _policy(self, name: str, names: Names, cache: tuple[str, int], key: str) -> Policy | None:
        if not (names.timeout or names.retry or names.breaker):
            return None
        breaker = self._breaker(names.breaker, cache, key) if names.breaker else None
        timeout = self.timeouts[names.timeout] if names.timeout else None
        return Policy(name, timeout or None, self.retries[names.retry] if names.retry else None, breaker)

    def _breaker(self, spec_name: str, cache: tuple[str, int], key: str) -> CircuitBreaker:
        where, size = cache
        live = self._live.setdefault(where, OrderedDict())
        breaker = live.get(key)
        if breaker is None:
            spec = self.breakers[spec_name]
            breaker = live[key] = CircuitBreaker(key if size else f"{spec_name}-{key}", spec)
            if size and len(live) > size:
                live.popitem(last=False)
        live.move_to_end(key)
        return breaker


def _listed(names: Names) -> str:
    return ", ".join(n for n in (names.timeout, names.retry, names.breaker) if n)


def load_resiliency(paths: Iterable[Path | str], app_id: str) -> Resiliency:
    """Every Resiliency resource in `paths` scoped to `app_id`, merged; raises ComponentError naming the
    file and resource of anything invalid or not applied."""
    merged = Resiliency()
    for file, doc in resource_documents(paths, "Resiliency"):
        scopes = doc.get("scopes") or []
        if doc.get("apiVersion") != _API or (scopes and app_id not in scopes):
            continue
        name = str((doc.get("metadata") or {}).get("name") or "")
        try:
            _decode(doc.get("spec") or {}, merged)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ComponentError(f"{file}: Resiliency {name!r}: {exc}") from None
    try:
        _check_references(merged)
    except ValueError as exc:
        raise ComponentError(f"Resiliency: {exc}") from None
    return merged


def _decode(spec: Mapping[str, Any], into: Resiliency) -> None:
    policies = spec.get("policies") or {}
    unknown = set(policies) - {"timeouts", "retries", "circuitBreakers"}
    unknown |= {f"targets.{k}" for k in set(spec.get("targets") or {}) - {"apps", "actors", "components"}}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    for name, value in (policies.get("timeouts") or {}).items():
        into.timeouts[str(name)] = _duration(value)
    for name, raw in (policies.get("retries") or {}).items():
        _fields(f"retry policy {name}", raw, _RETRY_FIELDS)
        _fields(f"retry policy {name} matching", raw.get("matching"), _MATCHING_FIELDS)
        if name in _BUILT_IN:
            raise ValueError(
                f"retry policy {name} overrides one of daprd's built-in retries, which the embedded "
                "sidecar does not have: it would not be applied"
            )
        into.retries[str(name)] = _retry(raw)
    for name, raw in (policies.get("circuitBreakers") or {}).items():
        _fields(f"circuit breaker {name}", raw, _BREAKER_FIELDS)
        into.breakers[str(name)] = _breaker(str(name), raw or {})
    targets = spec.get("targets") or {}
    for app, raw in (targets.get("apps") or {}).items():
        _fields(f"app target {app}", raw, _TARGET_FIELDS | {"circuitBreakerCacheSize"})
        into.apps[str(app)] = Names.of(raw or {})
    for actor_type, raw in (targets.get("actors") or {}).items():
        _fields(f"actor target {actor_type}", raw, _TARGET_FIELDS | _ACTOR_FIELDS)
        names = Names.of(raw or {})
        if names.breaker and not names.scope:
            raise ValueError(f"actor {actor_type}: actor circuit breakers must include scope")
        if names.scope not in ("", "type", "id", "both"):
            raise ValueError(f"actor {actor_type}: unknown circuit breaker scope {names.scope!r}")
        into.actors[str(actor_type)] = Names(names.timeout, names.retry, names.breaker, names.scope or "type")
    for component, raw in (targets.get("components") or {}).items():
        raw = raw or {}
        _fields(f"component target {component}", raw, frozenset({"inbound", "outbound"}))
        for direction in ("inbound", "outbound"):
            _fields(f"component target {component} {direction}", raw.get(direction), _TARGET_FIELDS)
        into.components[str(component)] = {
            "inbound": Names.of(raw.get("inbound") or {}),
            "outbound": Names.of(raw.get("outbound") or {}),
        }


# The fields of daprd's Resiliency types (pkg/apis/resiliency/v1alpha1): daprd drops any other when it
# parses the resource, so one here would silently do nothing; it is refused instead.
_RETRY_FIELDS = frozenset({"policy", "duration", "maxInterval", "maxRetries", "matching"})
_MATCHING_FIELDS = frozenset({"httpStatusCodes", "gRPCStatusCodes"})
_BREAKER_FIELDS = frozenset({"maxRequests", "interval", "timeout", "trip"})
_TARGET_FIELDS = frozenset({"timeout", "retry", "circuitBreaker"})
_ACTOR_FIELDS = frozenset({"circuitBreakerScope", "circuitBreakerCacheSize"})


def _fields(where: str, raw: Any, known: frozenset[str]) -> None:
    unknown = sorted(set(raw or {}) - known)
    if unknown:
        raise ValueError(
            f"{where}: {', '.join(unknown)} is not a field of daprd's Resiliency resource (daprd drops it "
            f"unread); known: {', '.join(sorted(known))}"
        )


def _check_references(r: Resiliency) -> None:
    targets = [(f"app {k}", v) for k, v in r.apps.items()] + [(f"actor {k}", v) for k, v in r.actors.items()]
    targets += [(f"component {k} {d}", v) for k, both in r.components.items() for d, v in both.items()]
    for where, names in targets:
        for kind, value, known in (
            ("timeout", names.timeout, r.timeouts),
            ("retry", names.retry, r.retries),
            ("circuit breaker", names.breaker, r.breakers),
        ):
            if value and value not in known:
                raise ValueError(f"{where}: no {kind} policy {value!r}")


def _duration(value: Any) -> float:
    """daprd's `parseDuration`: a bare integer is milliseconds, else a Go duration."""
    text = str(value).strip()
    return int(text) / 1000 if text.lstrip("-").isdigit() else parse_go_duration(text)


def _breaker(name: str, raw: Mapping[str, Any]) -> BreakerSpec:
    trip = raw.get("trip")
    return BreakerSpec(
        name,
        max_requests=int(raw.get("maxRequests") or 1),
        interval=_seconds(raw.get("interval"), 0.0),
        timeout=_seconds(raw.get("timeout"), 60.0),
        trip=BreakerSpec.compile_trip(str(trip)) if trip else None,
    )


def _retry(raw: Mapping[str, Any]) -> RetryPolicy:
    policy = str(raw.get("policy") or "constant").lower()
    if policy not in ("constant", "exponential"):
        raise ValueError(f"retry policy {policy!r} is neither constant nor exponential")
    base = RetryPolicy()
    matching = raw.get("matching") or {}
    return RetryPolicy(
        policy=policy,
        duration=_seconds(raw.get("duration"), base.duration),
        max_interval=_seconds(raw.get("maxInterval"), base.max_interval),
        max_retries=int(raw["maxRetries"]) if raw.get("maxRetries") is not None else base.max_retries,
        http_codes=_codes(matching.get("httpStatusCodes"), 100, 599),
        grpc_codes=_codes(matching.get("gRPCStatusCodes"), 0, 16),
    )


def _seconds(value: Any, default: float) -> float:
    return default if value is None else parse_go_duration(str(value))


def _codes(patterns: Any, least: int, most: int) -> tuple[tuple[int, int], ...] | None:
    """daprd's `parsePatterns`: `429,500-599` (each within 100-599) or gRPC codes `1-4,14` (0-16); None
    when not given (every code is retried)."""
    if not patterns:
        return None
    ranges = []
    for part in str(patterns).split(","):
        lo, _, hi = part.strip().partition("-")
        start, end = int(lo), int(hi or lo)
        if not least <= start <= end <= most:
            raise ValueError(f"invalid status code range {part.strip()!r} (valid: {least}-{most})")
        ranges.append((start, end))
    return tuple(ranges)
