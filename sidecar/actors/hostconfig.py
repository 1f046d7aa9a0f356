"""What the app says about its actors in `GET /dapr/config`: hosted types, idle timeouts, reentrancy.

daprd reads it once, after the app port accepts connections; a non-200 answer means "hosts no actors".
Invalid durations fall back to daprd's defaults with a warning, as daprd does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sidecar.actors.timefmt import parse_go_duration

__all__ = ["DEFAULT_IDLE_TIMEOUT", "HostConfig", "TypeConfig", "parse_host_config"]

log = logging.getLogger("sidecar.actors")

DEFAULT_IDLE_TIMEOUT = 3600.0  # daprd DefaultIdleTimeout: 60 min
DEFAULT_MAX_STACK_DEPTH = 32


@dataclass(frozen=True)
class TypeConfig:
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    reentrancy: bool = False
    max_stack_depth: int = DEFAULT_MAX_STACK_DEPTH


@dataclass(frozen=True)
class HostConfig:
    entities: frozenset[str] = frozenset()
    types: dict[str, TypeConfig] = field(default_factory=dict)
    drain_ongoing_call_timeout: float = 60.0

    def for_type(self, actor_type: str) -> TypeConfig:
        return self.types.get(actor_type, TypeConfig())


def _duration(value: object, default: float, what: str) -> float:
    if not isinstance(value, str) or not value:
        return default
    try:
        return parse_go_duration(value)
    except ValueError:
        log.warning("invalid %s %r in app config; using default %ss", what, value, default)
        return default


def _reentrancy(value: object, default: tuple[bool, int]) -> tuple[bool, int]:
    if not isinstance(value, dict):
        return default
    enabled = bool(value.get("enabled", False))
    depth = value.get("maxStackDepth")
    return enabled, depth if isinstance(depth, int) and depth > 0 else DEFAULT_MAX_STACK_DEPTH


def parse_host_config(body: bytes) -> HostConfig:
    """Parse the app's `/dapr/config` JSON; unknown keys are ignored (e.g. `actorScanInterval`)."""
    try:
        raw = json.loads(body or b"{}")
    except ValueError:
        log.warning("app config is not JSON; hosting no actors")
        return HostConfig()
    if not isinstance(raw, dict):
        return HostConfig()
    entities = frozenset(str(e) for e in raw.get("entities") or [])
    idle = _duration(raw.get("actorIdleTimeout"), DEFAULT_IDLE_TIMEOUT, "actorIdleTimeout")
    reentrant, depth = _reentrancy(raw.get("reentrancy"), (False, DEFAULT_MAX_STACK_DEPTH))
    base = TypeConfig(idle_timeout=idle, reentrancy=reentrant, max_stack_depth=depth)
    types = {t: base for t in entities}
    for item in raw.get("entitiesConfig") or []:
        if not isinstance(item, dict):
            continue
        for t in item.get("entities") or []:
            if t not in entities:
                log.warning("entitiesConfig names actor type %r that is not in entities; ignored", t)
                continue
            r_on, r_depth = _reentrancy(item.get("reentrancy"), (base.reentrancy, base.max_stack_depth))
            types[t] = TypeConfig(
                idle_timeout=_duration(item.get("actorIdleTimeout"), idle, "actorIdleTimeout"),
                reentrancy=r_on,
                max_stack_depth=r_depth,
            )
    drain = _duration(raw.get("drainOngoingCallTimeout"), 60.0, "drainOngoingCallTimeout")
    return HostConfig(entities=entities, types=types, drain_ongoing_call_timeout=drain)
