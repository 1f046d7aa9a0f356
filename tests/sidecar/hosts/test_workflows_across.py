"""Workflows that call another app through the real SDK: two embedded sidecars on one host registry, app
`orders` (the workflows) and app `billing` (activities and a child workflow, registered on its worker only),
each with its own `WorkflowRuntime`. Results come back durably, once, with the router in history."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
import grpc
import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus
from dapr.ext.workflow.workflow_management import WorkflowHistoryEventType as Kind

from sidecar import ManualClock
from sidecar.hosts.peers import CALLER_APP_HEADER, SECRET_HEADER, WORKFLOW_FIELD_PREFIX
from sidecar.wire.http1 import Http1Client
from sidecar.workflows.history import pb
from tests.sidecar.hosts.workflow_apps import (
    BILLING,
    ORDERS,
    App,
    finished,
    gate,
    order,
    order_child,
    order_declined,
    order_slow,
    ran,
    register_billing,
    register_orders,
)
from tests.sidecar.workflows.support import close_client, eventually, start_worker, stop_worker
from tests.stack import SidecarProcess


def raw_history(port: int, iid: str) -> list[pb.HistoryEvent]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
        return list(stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId=iid)).events)


def test_an_activity_of_another_app_returns_its_result(
    orders_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    before = ran["charge"]
    iid = orders_client.schedule_new_workflow(order, input=21)
    assert finished(orders_client, iid) == (WorkflowStatus.COMPLETED, 42)
    assert ran["charge"] - before == 1
    events = raw_history(workflow_apps[0].grpc_port, iid)
    scheduled = next(e for e in events if e.HasField("taskScheduled"))
    assert (scheduled.router.sourceAppID, scheduled.router.targetAppID) == (ORDERS, BILLING)
    completed = next(e for e in events if e.HasField("taskCompleted"))
    assert (
        completed.router.sourceAppID == BILLING
        and completed.taskCompleted.taskScheduledId == scheduled.eventId
    )


def test_a_failing_activity_of_another_app_surfaces_as_task_failed(orders_client: DaprWorkflowClient) -> None:
    iid = orders_client.schedule_new_workflow(order_declined, input=7)
    status, output = finished(orders_client, iid)
    assert status == WorkflowStatus.COMPLETED
    assert output == ["ValueError", "card declined for 7"]
    kinds = [e.event_type for e in orders_client.get_workflow_history(iid)]
    assert kinds.count(Kind.TASK_FAILED) == 1


def test_a_child_workflow_of_another_app_completes_and_fails(
    orders_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    iid = orders_client.schedule_new_workflow(order_child, input=5)
    assert finished(orders_client, iid) == (WorkflowStatus.COMPLETED, {"charged": 10})
    billing = DaprWorkflowClient(host="127.0.0.1", port=str(workflow_apps[1].grpc_port))
    try:
        child = billing.get_workflow_state(f"{iid}-inv")
        assert child is not None and child.runtime_status == WorkflowStatus.COMPLETED
        assert orders_client.get_workflow_state(f"{iid}-inv") is None  # the child lives in billing, not here
        history = raw_history(workflow_apps[1].grpc_port, f"{iid}-inv")
        started = next(e for e in history if e.HasField("executionStarted")).executionStarted
        assert (
            started.parentInstance.appID == ORDERS
            and started.parentInstance.workflowInstance.instanceId == iid
        )

        failing = orders_client.schedule_new_workflow(order_child, input=60)
        status, output = finished(orders_client, failing)
        assert status == WorkflowStatus.COMPLETED and output[0] == "failed"
        assert "too much: 120" in output[1]
        failed_child = billing.get_workflow_state(f"{failing}-inv")
        assert failed_child is not None and failed_child.runtime_status == WorkflowStatus.FAILED
    finally:
        close_client(billing)
    kinds = [e.event_type for e in orders_client.get_workflow_history(failing)]
    assert Kind.CHILD_WORKFLOW_INSTANCE_FAILED in kinds


def test_a_repeated_delivery_runs_the_activity_once(workflow_apps: tuple[App, App]) -> None:
    """The caller retries until acknowledged: the same message delivered twice is recorded once."""
    orders, billing = workflow_apps
    assert billing.sidecar is not None and billing.sidecar.sidecar.membership is not None
    secret = billing.sidecar.sidecar.membership.registry.secret
    request = pb.ActivityRequest(
        name="charge",
        workflowInstance=pb.WorkflowInstance(instanceId="ghost-1"),
        taskId=3,
    )
    request.input.value = "4"
    headers = {
        SECRET_HEADER: secret,
        CALLER_APP_HEADER: "elsewhere",
        WORKFLOW_FIELD_PREFIX + "instance": "ghost-1",
        WORKFLOW_FIELD_PREFIX + "execution": "e1",
    }
    before = ran["charge"]

    async def deliver_twice() -> list[int]:
        http = Http1Client("127.0.0.1", billing.ports["http_port"], timeout=10)
        try:
            statuses = []
            for _ in range(2):
                reply = await http.request(
                    "POST", "/v1.0-internal/workflows/activity", request.SerializeToString(), headers
                )
                statuses.append(reply.status)
            return statuses
        finally:
            await http.close()

    assert orders.sidecar is not None
    assert orders.sidecar.call(deliver_twice()) == [204, 204]
    eventually(lambda: ran["charge"] - before == 1, timeout=10)
    with pytest.raises(AssertionError):
        eventually(lambda: ran["charge"] - before > 1, timeout=1.0)


def remote_calls(app: App) -> list[tuple[str, str, str, int]]:
    """The "call already seen" records of `app`'s sidecar (read from its database file)."""
    with closing(sqlite3.connect(app.data / "sidecar.db")) as conn:
        return conn.execute("SELECT * FROM wf_remote_calls").fetchall()


def test_the_record_of_a_call_goes_once_the_caller_has_its_result(
    orders_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    """Billing forgets an activity call and a child call of orders once orders took their results."""
    orders, billing = workflow_apps
    one = orders_client.schedule_new_workflow(order, input=2)
    two = orders_client.schedule_new_workflow(order_child, input=4)
    assert finished(orders_client, one) == (WorkflowStatus.COMPLETED, 4)
    assert finished(orders_client, two) == (WorkflowStatus.COMPLETED, {"charged": 8})
    eventually(lambda: not [r for r in remote_calls(billing) if r[1] in (one, two)], timeout=10)


def test_a_call_to_an_absent_app_waits_and_completes_once_it_is_back(
    orders_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    orders, billing = workflow_apps
    billing.stop()
    try:
        before = ran["charge"]
        iid = orders_client.schedule_new_workflow(order, input=8)
        with pytest.raises(TimeoutError):
            orders_client.wait_for_workflow_completion(iid, timeout_in_seconds=2)
        state = orders_client.get_workflow_state(iid)
        assert state is not None and state.runtime_status == WorkflowStatus.RUNNING
    finally:
        billing.start()
    assert finished(orders_client, iid) == (WorkflowStatus.COMPLETED, 16)
    assert ran["charge"] - before == 1


def test_the_other_apps_sidecar_restarting_mid_call_still_records_the_result_once(
    orders_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    """Billing's sidecar stops while its worker runs the activity: it re-runs it after its restart (activities
    are at least once, as in daprd) and the orders workflow records exactly one result."""
    orders, billing = workflow_apps
    gate.clear()
    before = ran["slow_charge"]
    iid = orders_client.schedule_new_workflow(order_slow, input=1)
    eventually(lambda: ran["slow_charge"] - before == 1, timeout=10)
    billing.stop_sidecar()
    gate.set()  # the worker's answer finds no sidecar
    billing.stop_worker()
    billing.start()
    assert finished(orders_client, iid) == (WorkflowStatus.COMPLETED, 2)
    kinds = [e.event_type for e in orders_client.get_workflow_history(iid)]
    assert kinds.count(Kind.TASK_COMPLETED) == 1
    assert ran["slow_charge"] - before in (1, 2)


@pytest.mark.slow
def test_billing_killed_with_minus_9_mid_activity_still_records_one_result(tmp_path: Path) -> None:
    billing = SidecarProcess(
        tmp_path / "billing", app_id=BILLING, args=("--registry-dir", str(tmp_path / "registry"))
    )
    billing.start()
    orders = App(tmp_path / "orders", ORDERS, ManualClock(), tmp_path / "registry", register_orders).start()
    worker = start_worker(billing.grpc, register_billing)
    client = DaprWorkflowClient(host="127.0.0.1", port=str(orders.grpc_port))
    try:
        gate.clear()
        before = ran["slow_charge"]
        iid = client.schedule_new_workflow(order_slow, input=41)
        eventually(lambda: ran["slow_charge"] - before == 1, timeout=20)
        billing.kill9()  # the activity's answer has nowhere to go; billing's own record of the call survives
        gate.set()
        billing.start()  # same gRPC port: the worker reconnects and is given the activity again
        assert finished(client, iid, timeout=60) == (WorkflowStatus.COMPLETED, 42)
        kinds = [e.event_type for e in client.get_workflow_history(iid)]
        assert kinds.count(Kind.TASK_COMPLETED) == 1
        assert ran["slow_charge"] - before == 2  # at least once: run again after the crash, recorded once
    finally:
        gate.set()
        close_client(client)
        stop_worker(worker)
        orders.stop()
        billing.stop()
