"""The factory's restart promise (`tests.stack.restartable_sidecar`): a stopped sidecar comes back on the same
ports and data dir while its app stays up, and a restarted worker picks up a workflow the first one left."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from dapr.ext.workflow import DaprWorkflowClient, DaprWorkflowContext, WorkflowRuntime, WorkflowStatus
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sidecar import ManualClock
from tests.stack import restartable_sidecar


def app(_: object) -> Starlette:
    return Starlette(routes=[Route("/ping", lambda _: PlainTextResponse("pong"))])


def waits_for_go(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    return (yield ctx.wait_for_external_event("go"))


def register(runtime: WorkflowRuntime) -> None:
    # A new function object per worker: the SDK refuses to register one object twice.
    def waits(ctx: DaprWorkflowContext, arg: None):  # type: ignore[no-untyped-def]
        return (yield from waits_for_go(ctx, arg))

    runtime.register_workflow(waits, name="waits")


def test_a_restarted_engine_comes_back_on_its_ports_and_data(tmp_path: Path) -> None:
    with restartable_sidecar(
        tmp_path, app, app_id="restarts", clock=ManualClock(), register=register
    ) as engine:
        ports = (engine.http_port, engine.grpc_port)
        state = f"http://127.0.0.1:{engine.http_port}/v1.0/state/statestore"
        assert httpx.post(state, json=[{"key": "k", "value": "kept"}]).status_code == 204
        client = DaprWorkflowClient(host="127.0.0.1", port=str(engine.grpc_port))
        iid = client.schedule_new_workflow("waits")
        client.wait_for_workflow_start(iid, timeout_in_seconds=10)

        engine.stop_engine()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{state}/k")
        assert engine.app is not None and httpx.get(f"{engine.app.url}/ping").text == "pong"  # the app stays

        engine.start_engine()  # the sidecar, then a worker with the same registrations
        assert (engine.http_port, engine.grpc_port) == ports
        assert httpx.get(f"{state}/k").json() == "kept"
        client.raise_workflow_event(iid, "go", data="after")
        done = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
        assert done is not None and done.runtime_status == WorkflowStatus.COMPLETED
        assert done.serialized_output == '"after"'
        client.close()  # type: ignore[no-untyped-call]
