"""Managing another app's workflow instances from `orders`: a recursive purge reaches the children billing
runs (and refuses while one still runs), and the client's requests that name billing act on billing's own
instances, as daprd's crossapp tests do."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
import grpc
import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

from sidecar.workflows.history import pb
from tests.sidecar.hosts.workflow_apps import BILLING, App, finished, gate, order_child, order_child_slow, ran
from tests.sidecar.workflows.support import close_client, eventually


@pytest.fixture(scope="module")
def billing_client(workflow_apps: tuple[App, App]) -> Iterator[DaprWorkflowClient]:
    wf_client = DaprWorkflowClient(host="127.0.0.1", port=str(workflow_apps[1].grpc_port))
    yield wf_client
    close_client(wf_client)


def purge(port: int, iid: str, *, recursive: bool) -> int:
    """PurgeInstances on the sidecar at `port`: how many instances it deleted."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
        request = pb.PurgeInstancesRequest(instanceId=iid, recursive=recursive)
        return int(stub.PurgeInstances(request).deletedInstanceCount)


def test_a_recursive_purge_purges_the_children_another_app_runs(
    orders_client: DaprWorkflowClient, billing_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    orders, billing = workflow_apps
    kept = orders_client.schedule_new_workflow(order_child, input=1)
    gone = orders_client.schedule_new_workflow(order_child, input=2)
    assert finished(orders_client, kept)[0] == finished(orders_client, gone)[0] == WorkflowStatus.COMPLETED
    assert purge(orders.grpc_port, kept, recursive=False) == 1
    assert billing_client.get_workflow_state(f"{kept}-inv") is not None  # not recursive: stays
    assert purge(orders.grpc_port, gone, recursive=True) == 2
    assert orders_client.get_workflow_state(gone) is None
    assert billing_client.get_workflow_state(f"{gone}-inv") is None

    # A child purged already on its app (as daprd's purgeidempotent): the parent's purge still succeeds.
    again = orders_client.schedule_new_workflow(order_child, input=3)
    assert finished(orders_client, again)[0] == WorkflowStatus.COMPLETED
    assert purge(billing.grpc_port, f"{again}-inv", recursive=False) == 1
    assert purge(orders.grpc_port, again, recursive=True) == 1
    assert orders_client.get_workflow_state(again) is None


def test_a_recursive_purge_fails_while_a_child_of_another_app_runs(
    orders_client: DaprWorkflowClient, billing_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    orders = workflow_apps[0]
    gate.clear()
    before = ran["slow_charge"]
    iid = orders_client.schedule_new_workflow(order_child_slow, input=1)
    try:
        eventually(lambda: ran["slow_charge"] - before == 1, timeout=10)
        orders_client.terminate_workflow(iid, recursive=False)
        assert finished(orders_client, iid)[0] == WorkflowStatus.TERMINATED
        with pytest.raises(grpc.RpcError) as refused:
            purge(orders.grpc_port, iid, recursive=True)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"failed to purge child workflow '{iid}-inv' of app 'billing'" in str(refused.value.details())
        assert orders_client.get_workflow_state(iid) is not None  # nothing of the tree was deleted
    finally:
        gate.set()
    assert finished(billing_client, f"{iid}-inv")[0] == WorkflowStatus.COMPLETED
    assert purge(orders.grpc_port, iid, recursive=True) == 2
    assert billing_client.get_workflow_state(f"{iid}-inv") is None


def test_client_requests_naming_another_app_act_on_that_apps_instance(
    orders_client: DaprWorkflowClient, billing_client: DaprWorkflowClient, workflow_apps: tuple[App, App]
) -> None:
    """As daprd (crossapp/ops): orders' client starts, reads, drives, ends and purges billing's instances."""
    billing = workflow_apps[1]
    iid = orders_client.schedule_new_workflow(
        "awaiting", input="paid:", instance_id="remote-1", app_id=BILLING
    )
    assert iid == "remote-1"
    assert orders_client.get_workflow_state(iid) is None  # nothing of the name in orders
    started = orders_client.wait_for_workflow_start(iid, timeout_in_seconds=10, app_id=BILLING)
    assert started is not None and started.name == "awaiting"
    orders_client.pause_workflow(iid, app_id=BILLING)
    state = orders_client.get_workflow_state(iid, app_id=BILLING)
    assert state is not None and state.runtime_status == WorkflowStatus.SUSPENDED
    orders_client.resume_workflow(iid, app_id=BILLING)
    orders_client.raise_workflow_event(iid, "go", data="42", app_id=BILLING)
    done = orders_client.wait_for_workflow_completion(iid, timeout_in_seconds=10, app_id=BILLING)
    assert done is not None and json.loads(done.serialized_output or "null") == "paid:42"
    assert finished(billing_client, iid) == (WorkflowStatus.COMPLETED, "paid:42")
    orders_client.purge_workflow(iid, app_id=BILLING)
    assert billing_client.get_workflow_state(iid) is None

    other = orders_client.schedule_new_workflow("awaiting", input="", app_id=BILLING)
    with pytest.raises(TimeoutError):
        orders_client.wait_for_workflow_completion(other, timeout_in_seconds=1, app_id=BILLING)
    assert billing.sidecar is not None
    waiting = billing.sidecar.sidecar.workflows._waiters._by_id  # the routed wait ended with its deadline
    eventually(lambda: other not in waiting, timeout=5)
    orders_client.terminate_workflow(other, app_id=BILLING)
    assert finished(billing_client, other)[0] == WorkflowStatus.TERMINATED

    with pytest.raises(grpc.RpcError) as unknown:  # billing's answer comes back as it gave it
        orders_client.raise_workflow_event("remote-none", "go", app_id=BILLING)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as invalid:  # daprd's ErrInvalidWorkflowAppID
        orders_client.get_workflow_state(iid, app_id="bad.app.id")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "workflow app ID 'bad.app.id' is invalid" in str(invalid.value.details())
    with pytest.raises(grpc.RpcError) as absent:
        orders_client.schedule_new_workflow("awaiting", input="", app_id="nobody")
    assert absent.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no sidecar of app 'nobody'" in str(absent.value.details())
