"""The sidecar's metadata, as daprd reports it: app id, runtime version, features, active actors,
components, subscriptions and the app connection (with its health probe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["RUNTIME_VERSION", "metadata_of"]

RUNTIME_VERSION = "1.16.0-todo-engine"


def metadata_of(sidecar: Sidecar) -> dict[str, Any]:
    """What `GET /v1.0/metadata` and gRPC `GetMetadata` report, in daprd's shape."""
    actors = [{"type": t, "count": c} for t, c in sorted(sidecar.actor_host.active_counts().items())]
    meta: dict[str, Any] = {
        "id": sidecar.config.app_id,
        "runtimeVersion": RUNTIME_VERSION,
        "enabledFeatures": sidecar.dapr_config.enabled_features(),
        "actors": actors,
        "components": sidecar.components.describe(),
        "extended": {"daprRuntimeVersion": RUNTIME_VERSION, **sidecar.extended_metadata},
        "subscriptions": sidecar.pubsub.subscriptions(),
        "actorRuntime": {
            "runtimeStatus": "RUNNING" if sidecar.actor_host.ready.is_set() else "INITIALIZING",
            "activeActors": actors,
            "hostReady": sidecar.actor_host.ready.is_set(),
            "placement": "placement: connected (embedded, single host)",
        },
    }
    if sidecar.config.app_port is not None:
        meta["appConnectionProperties"] = {
            "port": sidecar.config.app_port,
            "protocol": sidecar.config.app_protocol,
            "channelAddress": sidecar.config.app_channel_address,
            "health": _health(sidecar),
        }
        if sidecar.config.app_max_concurrency:
            meta["appConnectionProperties"]["maxConcurrency"] = sidecar.config.app_max_concurrency
    return {k: v for k, v in meta.items() if v not in (None, [], {})}


def _health(sidecar: Sidecar) -> dict[str, Any]:
    """daprd's `appConnectionProperties.health` (the probe settings) plus the current status."""
    if sidecar.app_health is None:
        return {}
    health: dict[str, Any] = sidecar.app_health.settings.describe()
    health["status"] = "HEALTHY" if sidecar.app_health.is_healthy() else "UNHEALTHY"
    if sidecar.app_health.reason:
        health["reason"] = sidecar.app_health.reason
    return health
