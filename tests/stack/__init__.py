"""The one test stack factory (as temporal's samples share one environment fixture): every suite gets its
processes and engines here, so each boots them the same way.

- `full`: the whole engine (sidecar, app channel, public API): `stack_fixture`, `running_stack`.
- `sidecars`: the sidecar alone or with a suite's own app: `sidecar_config`, `sidecar_thread`,
  `running_sidecar`, `restartable_sidecar` (stop and start the sidecar or the worker, back on the same
  ports and data dir), `SidecarProcess` (a child process to kill -9).
- `workers`: workflow workers on a sidecar: `start_worker`, `running_worker`.
- `engines`: one engine below the HTTP API, for unit suites: `open_scheduler`, `WorkflowSidecar`.
- `routes`: a feature's routes served with the sidecar's error mapping: `serve_routes`, `routes_fixture`,
  `open_pubsub`.

Names are imported on first use: a process that needs one part (the kill -9 workflow sidecar) does not
pay for importing the app.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.stack.engines import (
        ServedWorkflows,
        WorkflowSidecar,
        close_scheduler,
        open_scheduler,
        serve_workflow_engine,
    )
    from tests.stack.full import Stack, running_stack, stack_fixture, stack_settings
    from tests.stack.routes import PubSubSidecar, open_pubsub, routes_app, routes_fixture, serve_routes
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
    "ServedWorkflows",
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

# The modules, lightest first: a name is looked up in their `__all__`, importing only up to its own.
_MODULES = ("engines", "workers", "routes", "sidecars", "full")


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            found = importlib.import_module(f"{__name__}.{module}")
            if name in found.__all__:
                return getattr(found, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
