"""Workflow calls that name an app (`app_id=`) through the real SDK, on a sidecar without a host registry:
this app's id runs here as before; another app's id is never run here (the task waits for that app), and
client requests routed to another app fail (UNAVAILABLE: no registry to find that app's sidecar in).

The "remote" activity and child workflow are registered on this app's worker too, so a call routed to
the wrong app would visibly run here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)
from dapr.ext.workflow.workflow_management import WorkflowHistoryEventType as Kind

from sidecar.clock import ManualClock
from tests.sidecar.workflows.support import WorkflowSidecar, eventually, running_worker

APP = "orders"
OTHER = "billing"
ran: Counter[str] = Counter()


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[WorkflowSidecar]:
    served = WorkflowSidecar(tmp_path_factory.mktemp("wf") / "sidecar.db", clock, app_id=APP).start()
    yield served
    served.stop()


def charge(ctx: WorkflowActivityContext, amount: int) -> int:
    ran["charge"] += 1
    return amount * 2


def invoice(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(charge, input=amount))


def same_app(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    a = yield ctx.call_activity(charge, input=amount, app_id=APP)
    b = yield ctx.call_child_workflow(invoice, input=amount, app_id=APP)
    return [a, b]


def unhandled(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(charge, input=amount, app_id=OTHER))


def register(rt: WorkflowRuntime) -> None:
    for wf in (invoice, same_app, unhandled):
        rt.register_workflow(wf)
    rt.register_activity(charge)


@pytest.fixture(scope="module", autouse=True)
def worker(sidecar: WorkflowSidecar) -> Iterator[WorkflowRuntime]:
    with running_worker(sidecar, register) as rt:
        yield rt


def finished(client: DaprWorkflowClient, iid: str) -> tuple[WorkflowStatus, str | None]:
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None
    return state.runtime_status, state.serialized_output


def test_this_apps_own_id_runs_here(client: DaprWorkflowClient) -> None:
    before = ran["charge"]
    iid = client.schedule_new_workflow(same_app, input=5)
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, "[10, 10]")
    assert ran["charge"] - before == 2  # once by the workflow, once by its child


def test_another_apps_call_waits_while_that_app_cannot_be_reached(
    client: DaprWorkflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a host registry no other app is reachable: as daprd retries a call to an absent app, the
    task stays pending (the workflow keeps RUNNING) and the failure to dispatch is logged, naming the app;
    nothing runs on this app's worker (tests/sidecar/hosts/test_workflows_across.py covers delivery)."""
    before = ran["charge"]
    with caplog.at_level(logging.WARNING, logger="sidecar.workflows.courier"):
        iid = client.schedule_new_workflow(unhandled, input=4)
        eventually(lambda: any(OTHER in r.getMessage() for r in caplog.records), timeout=10)
    state = client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.RUNNING
    warning = next(r for r in caplog.records if r.name == "sidecar.workflows.courier")
    assert (
        "remote app 'billing'" in warning.getMessage() and "without a host registry" in warning.getMessage()
    )
    assert ran["charge"] == before  # never run on this app's worker
    kinds = [e.event_type for e in client.get_workflow_history(iid)]
    assert Kind.TASK_SCHEDULED in kinds and Kind.TASK_FAILED not in kinds
    client.terminate_workflow(iid)


def test_client_requests_routed_to_another_app_are_not_run_here(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(same_app, input=1, app_id=APP)  # this app's id: served here
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, "[2, 2]")
    state = client.get_workflow_state(iid, app_id=APP)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    with pytest.raises(grpc.RpcError) as start:
        client.schedule_new_workflow(same_app, input=1, instance_id="remote-start-1", app_id=OTHER)
    assert start.value.code() == grpc.StatusCode.UNAVAILABLE
    details = str(start.value.details())
    assert f"failed to route StartInstance to app {OTHER!r}: this sidecar runs without a host" in details
    assert client.get_workflow_state("remote-start-1") is None  # nothing was started here
    with pytest.raises(grpc.RpcError) as get:
        client.get_workflow_state(iid, app_id=OTHER)  # this app's instance of that id is not the one meant
    assert get.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"failed to route GetInstance to app {OTHER!r}" in str(get.value.details())
