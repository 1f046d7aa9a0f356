"""`--metrics-port`: a small Prometheus endpoint with the sidecar's gauges (daprd serves far more; these are
the ones that are free to compute here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["build_metrics_app"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def build_metrics_app(sidecar: Sidecar) -> Starlette:
    async def metrics(request: Request) -> Response:
        app_id = _escape(sidecar.config.app_id)
        lines = [
            "# HELP dapr_runtime_ready 1 when the sidecar is fully ready (app config read).",
            "# TYPE dapr_runtime_ready gauge",
            f'dapr_runtime_ready{{app_id="{app_id}"}} {int(sidecar.ready.is_set())}',
            "# HELP dapr_actor_active_actors Active actors by type.",
            "# TYPE dapr_actor_active_actors gauge",
        ]
        for actor_type, count in sorted(sidecar.actor_host.active_counts().items()):
            lines.append(
                f'dapr_actor_active_actors{{app_id="{app_id}",actor_type="{_escape(actor_type)}"}} {count}'
            )
        lines += [
            "# HELP dapr_scheduler_jobs Durable scheduler jobs (reminders and workflow timers).",
            "# TYPE dapr_scheduler_jobs gauge",
            f'dapr_scheduler_jobs{{app_id="{app_id}"}} {await sidecar.scheduler.count()}',
            "# HELP dapr_scheduler_jobs_in_memory Jobs due soon held in memory.",
            "# TYPE dapr_scheduler_jobs_in_memory gauge",
            f'dapr_scheduler_jobs_in_memory{{app_id="{app_id}"}} {sidecar.scheduler.loaded_count()}',
        ]
        lines += [
            "# HELP dapr_pubsub_pending_messages Messages queued or in delivery, by topic.",
            "# TYPE dapr_pubsub_pending_messages gauge",
        ]
        for (pubsub, topic), count in sorted(sidecar.pubsub.pending().items()):
            labels = f'app_id="{app_id}",pubsub="{_escape(pubsub)}",topic="{_escape(topic)}"'
            lines.append(f"dapr_pubsub_pending_messages{{{labels}}} {count}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])
