"""The one test stack factory (as temporal's samples share one environment fixture): every suite gets its
processes and engines here, so each boots them the same way.

- `engine`: the whole engine (sidecar, app channel, public API): `stack_fixture`, `running_stack`.
- `sidecars`: the sidecar alone or with a suite's own app: `sidecar_config`, `sidecar_thread`,
  `running_sidecar`, `restartable_sidecar` (stop and start the sidecar or the worker, back on the same
  ports and data dir), `SidecarProcess` (a child process to kill -9).
- `workers`: workflow workers on a sidecar: `start_worker`, `running_worker`.
- `parts`: one engine below the HTTP API, for unit suites: `open_scheduler`, `WorkflowSidecar`,
  `open_pubsub`, `serve_routes`, `routes_fixture`.
"""

from tests.stack.engine import Stack, running_stack, stack_fixture, stack_settings
from tests.stack.parts import (
    PubSubSidecar,
    WorkflowSidecar,
    close_scheduler,
    open_pubsub,
    open_scheduler,
    routes_app,
    routes_fixture,
    serve_routes,
    serve_workflow_engine,
)
from tests.stack.sidecars import (
    Restartable,
    SidecarProcess,
    restartable_sidecar,
    running_sidecar,
    sidecar_config,
    sidecar_thread,
)
from tests.stack.workers import running_worker, start_worker, stop_worker

__all__ = [
    "PubSubSidecar",
    "Restartable",
    "SidecarProcess",
    "Stack",
    "WorkflowSidecar",
    "close_scheduler",
    "open_pubsub",
    "open_scheduler",
    "restartable_sidecar",
    "routes_app",
    "routes_fixture",
    "running_sidecar",
    "running_stack",
    "running_worker",
    "serve_routes",
    "serve_workflow_engine",
    "sidecar_config",
    "sidecar_thread",
    "stack_fixture",
    "stack_settings",
    "start_worker",
    "stop_worker",
]
