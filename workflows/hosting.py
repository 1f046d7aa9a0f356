"""Hosting series in an app: the worker (a `WorkflowRuntime` running the series workflow and activities)
and the handles the API uses (`SeriesService`, `WorkflowInspector`), opened and closed by a lifespan.

The composition root calls `start_worker` and `open_series` with what it read from its settings; nothing
here reads the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from dapr.aio.clients import DaprClient
from dapr.ext.workflow import WorkflowRuntime
from dapr.ext.workflow.aio import DaprWorkflowClient
from dapr.ext.workflow.logger import LoggerOptions

from workflows.activities import ListActorFactory, SeriesActivities
from workflows.config import SeriesSettings
from workflows.inspection import WorkflowInspector
from workflows.runtime import register_series
from workflows.series_client import SeriesService
from workflows.taskhub import TaskHub, close_workflow_client
from workflows.webhooks import AttemptInput, AttemptResult, register_webhooks

__all__ = ["SeriesHandles", "open_series", "start_worker"]

log = logging.getLogger("workflows.hosting")


def start_worker(
    settings: SeriesSettings,
    *,
    host: str,
    grpc_port: int,
    list_actor: ListActorFactory | None = None,
    webhook_attempt: Callable[[AttemptInput], Awaitable[AttemptResult]] | None = None,
    **runtime_options: object,
) -> WorkflowRuntime:
    """A started `WorkflowRuntime` on the sidecar at `host:grpc_port` with the series registered.

    It runs on its own threads; call `.shutdown()` when the app stops. The SDK reads `DAPR_API_TOKEN`
    from `dapr.conf.settings`, so configure those first. `start()` blocks until the stream is up.
    """
    runtime = WorkflowRuntime(host=host, port=str(grpc_port), **runtime_options)  # type: ignore[arg-type]
    activities = SeriesActivities(settings, dapr_address=f"{host}:{grpc_port}", list_actor=list_actor)
    register_series(runtime, activities)
    if webhook_attempt is not None:  # webhook deliveries run on the same worker
        register_webhooks(runtime, webhook_attempt)
    runtime.start()  # type: ignore[no-untyped-call]
    log.info("series worker connected to %s:%d", host, grpc_port)
    return runtime


@dataclass
class SeriesHandles:
    """What the series and workflow routes use; `aclose()` in the lifespan that opened them."""

    service: SeriesService
    inspector: WorkflowInspector
    workflows: DaprWorkflowClient
    taskhub: TaskHub

    async def aclose(self) -> None:
        await self.taskhub.aclose()
        await close_workflow_client(self.workflows)


def open_series(
    settings: SeriesSettings,
    *,
    dapr: DaprClient,
    host: str,
    grpc_port: int,
    api_token: str | None,
    list_actor: ListActorFactory,
    clock: Callable[[], datetime],
    on_started: Callable[[str], None] | None = None,
    logger_options: LoggerOptions | None = None,
) -> SeriesHandles:
    """Open the API-side handles on the running loop (`dapr` is the app's gRPC `DaprClient`);
    `on_started(workflow)` is called for each workflow instance the service starts; `logger_options` go
    to the SDK's workflow client."""
    workflows = DaprWorkflowClient(host=host, port=str(grpc_port), logger_options=logger_options)
    service = SeriesService(
        workflows, dapr, settings, list_actor=list_actor, clock=clock, on_started=on_started
    )
    taskhub = TaskHub(f"{host}:{grpc_port}", api_token)
    return SeriesHandles(service, WorkflowInspector(service, taskhub), workflows, taskhub)
