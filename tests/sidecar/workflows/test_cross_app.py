"""Workflow calls that name an app (`app_id=`) through the real SDK: this app's id runs here as before;
another app's id fails the task (or the client request) at once with a message naming what is
unsupported, never acting on this app.

The "remote" activity and child workflow are registered on this app's worker too, so a call routed to
the wrong app would visibly run instead of failing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    TaskFailedError,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)
from dapr.ext.workflow.workflow_management import WorkflowHistoryEventType as Kind

from sidecar.clock import ManualClock
from sidecar.workflows.routing import CROSS_APP_ERROR
from tests.sidecar.workflows.support import WorkflowSidecar, running_worker

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


def catch_activity(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    try:
        yield ctx.call_activity(charge, input=amount, app_id=OTHER)
    except TaskFailedError as exc:
        return [exc.details.error_type, exc.details.message]
    return "ran"


def catch_child(ctx: DaprWorkflowContext, child_id: str):  # type: ignore[no-untyped-def]
    try:
        yield ctx.call_child_workflow(invoice, input=1, instance_id=child_id, app_id=OTHER)
    except TaskFailedError as exc:
        return [exc.details.error_type, exc.details.message]
    return "ran"


def unhandled(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(charge, input=amount, app_id=OTHER))


def register(rt: WorkflowRuntime) -> None:
    for wf in (invoice, same_app, catch_activity, catch_child, unhandled):
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


def expected(what: str) -> str:
    return (
        f"cross-app workflow calls are not supported by the embedded sidecar: {what} targets app "
        f"'{OTHER}' (this sidecar is app '{APP}'"
    )


def test_this_apps_own_id_runs_here(client: DaprWorkflowClient) -> None:
    before = ran["charge"]
    iid = client.schedule_new_workflow(same_app, input=5)
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, "[10, 10]")
    assert ran["charge"] - before == 2  # once by the workflow, once by its child


def test_another_apps_activity_fails_and_can_be_caught(
    client: DaprWorkflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = ran["charge"]
    with caplog.at_level(logging.WARNING, logger="sidecar.workflows.routing"):
        iid = client.schedule_new_workflow(catch_activity, input=3)
        status, output = finished(client, iid)
    assert status == WorkflowStatus.COMPLETED
    error_type, message = json.loads(output or "null")
    assert error_type == CROSS_APP_ERROR and message.startswith(expected("activity 'charge'"))
    assert ran["charge"] == before  # never run on this app's worker
    failed = [e for e in client.get_workflow_history(iid) if e.event_type == Kind.TASK_FAILED]
    assert len(failed) == 1 and failed[0].failure_details is not None
    assert failed[0].failure_details.error_type == CROSS_APP_ERROR
    warnings = [r for r in caplog.records if r.name == "sidecar.workflows.routing"]
    assert len(warnings) == 1 and iid in warnings[0].getMessage()
    assert warnings[0].levelno == logging.WARNING


def test_another_apps_child_workflow_fails_and_can_be_caught(client: DaprWorkflowClient) -> None:
    before = ran["charge"]
    iid = client.schedule_new_workflow(catch_child, input="remote-child-1")
    status, output = finished(client, iid)
    assert status == WorkflowStatus.COMPLETED
    error_type, message = json.loads(output or "null")
    assert error_type == CROSS_APP_ERROR and message.startswith(expected("child workflow 'invoice'"))
    assert ran["charge"] == before  # the child (which calls charge) never ran here
    assert client.get_workflow_state("remote-child-1") is None  # no child was created here
    kinds = [e.event_type for e in client.get_workflow_history(iid)]
    assert Kind.CHILD_WORKFLOW_INSTANCE_CREATED in kinds and Kind.CHILD_WORKFLOW_INSTANCE_FAILED in kinds


def test_an_unhandled_cross_app_failure_fails_the_workflow(client: DaprWorkflowClient) -> None:
    before = ran["charge"]
    iid = client.schedule_new_workflow(unhandled, input=4)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "TaskFailedError"
    assert expected("activity 'charge'") in state.failure_details.message
    assert ran["charge"] == before


def test_a_rerun_from_another_apps_activity_fails_it_again(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(unhandled, input=6)
    assert finished(client, iid)[0] == WorkflowStatus.FAILED
    scheduled = next(e for e in client.get_workflow_history(iid) if e.event_type == Kind.TASK_SCHEDULED)
    before = ran["charge"]
    rerun = client.rerun_workflow_from_event(iid, scheduled.event_id, new_instance_id=f"{iid}-rerun")
    state = client.wait_for_workflow_completion(rerun, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details is not None
    assert expected("activity 'charge'") in state.failure_details.message
    assert ran["charge"] == before


def test_client_requests_routed_to_another_app_are_refused(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(same_app, input=1, app_id=APP)  # this app's id: served here
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, "[2, 2]")
    state = client.get_workflow_state(iid, app_id=APP)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    with pytest.raises(grpc.RpcError) as start:
        client.schedule_new_workflow(same_app, input=1, instance_id="remote-start-1", app_id=OTHER)
    assert start.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert expected("StartInstance") in str(start.value.details())
    assert client.get_workflow_state("remote-start-1") is None  # nothing was started here
    with pytest.raises(grpc.RpcError) as get:
        client.get_workflow_state(iid, app_id=OTHER)  # this app's instance of that id is not the one meant
    assert get.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert expected("GetInstance") in str(get.value.details())
