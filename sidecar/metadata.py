"""The sidecar's metadata, as daprd reports it: app id, runtime version, features, active actors,
components, subscriptions and the app connection (with its health probe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dapr.proto.runtime.v1 import metadata_pb2

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["RUNTIME_VERSION", "grpc_metadata", "metadata_of"]

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


def grpc_metadata(meta: dict[str, Any]) -> metadata_pb2.GetMetadataResponse:
    """`metadata_of`'s answer as gRPC `GetMetadata` sends it (the same facts, protobuf field names)."""
    pb = metadata_pb2
    actors = [pb.ActiveActorsCount(type=a["type"], count=a["count"]) for a in meta.get("actors", [])]
    runtime = meta["actorRuntime"]
    out = pb.GetMetadataResponse(
        id=meta["id"],
        runtime_version=meta["runtimeVersion"],
        enabled_features=meta.get("enabledFeatures", []),
        active_actors_count=actors,
        registered_components=[
            pb.RegisteredComponents(
                name=c["name"], type=c["type"], version=c["version"], capabilities=c.get("capabilities", [])
            )
            for c in meta.get("components", [])
        ],
        extended_metadata=meta.get("extended", {}),
        subscriptions=[
            pb.PubsubSubscription(
                pubsub_name=s["pubsubname"],
                topic=s["topic"],
                metadata=s.get("metadata", {}),
                rules=pb.PubsubSubscriptionRules(
                    rules=[pb.PubsubSubscriptionRule(**r) for r in s.get("rules", [])]
                ),
                dead_letter_topic=s.get("deadLetterTopic", ""),
                type=pb.PubsubSubscriptionType.Value(s["type"]),
            )
            for s in meta.get("subscriptions", [])
        ],
        actor_runtime=pb.ActorRuntime(
            runtime_status=pb.ActorRuntime.ActorRuntimeStatus.Value(runtime["runtimeStatus"]),
            active_actors=actors,
            host_ready=runtime["hostReady"],
            placement=runtime["placement"],
        ),
    )
    app = meta.get("appConnectionProperties")
    if app is not None:
        health = app.get("health") or {}
        out.app_connection_properties.CopyFrom(
            pb.AppConnectionProperties(
                port=app["port"],
                protocol=app["protocol"],
                channel_address=app["channelAddress"],
                max_concurrency=app.get("maxConcurrency", 0),
                health=pb.AppConnectionHealthProperties(
                    health_check_path=health.get("healthCheckPath", ""),
                    health_probe_interval=health.get("healthProbeInterval", ""),
                    health_probe_timeout=health.get("healthProbeTimeout", ""),
                    health_threshold=health.get("healthThreshold", 0),
                )
                if health
                else None,
            )
        )
    return out
