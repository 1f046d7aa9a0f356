"""Workflows that call another app through the real SDK: two embedded sidecars on one host registry, app
`orders` (the workflows) and app `billing` (activities and a child workflow, registered on its worker only),
each with its own `WorkflowRuntime`. Results come back durably, once, with the router in history."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
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

from sidecar import ManualClock
from sidecar.hosts.peers import CALLER_APP_HEADER, SECRET_HEADER, WORKFLOW_FIELD_PREFIX
from sidecar.thread import SidecarThread
from sidecar.wire.http1 import Http1Client
from sidecar.workflows.history import pb
from tests.sidecar.workflows.support import close_client, eventually, fresh, start_worker, stop_worker
from tests.stack import SidecarProcess, sidecar_thread

ORDERS = "orders"
BILLING = "billing"
ran: Counter[str] = Counter()
gate = threading.Event()


def charge(ctx: WorkflowActivityContext, amount: int) -> int:
    ran["charge"] += 1
    return amount * 2


def decline(ctx: WorkflowActivityContext, amount: int) -> int:
    ran["decline"] += 1
    raise ValueError(f"card declined for {amount}")


def slow_charge(ctx: WorkflowActivityContext, amount: int) -> int:
    ran["slow_charge"] += 1
    gate.wait(20)
    return amount + 1


def invoice(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    """Billing's own workflow, run as a child of an orders workflow."""
    charged = yield ctx.call_activity(charge, input=amount)
    if charged > 100:
        raise ValueError(f"too much: {charged}")
    return {"charged": charged}


def order(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity("charge", input=amount, app_id=BILLING))


def order_declined(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    try:
        yield ctx.call_activity("decline", input=amount, app_id=BILLING)
    except TaskFailedError as exc:
        return [exc.details.error_type, exc.details.message]
    return "not failed"


def order_child(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    try:
        return (
            yield ctx.call_child_workflow(
                "invoice", input=amount, instance_id=f"{ctx.instance_id}-inv", app_id=BILLING
            )
        )
    except TaskFailedError as exc:
        return ["failed", exc.details.message]


def order_slow(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity("slow_charge", input=amount, app_id=BILLING))


def invoice_slow(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(slow_charge, input=amount))


def order_child_slow(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    inv = f"{ctx.instance_id}-inv"
    return (yield ctx.call_child_workflow("invoice_slow", input=amount, instance_id=inv, app_id=BILLING))


def awaiting(ctx: DaprWorkflowContext, prefix: str):  # type: ignore[no-untyped-def]
    """Billing's workflow that ends on an event, driven by a client of orders' sidecar."""
    got = yield ctx.wait_for_external_event("go")
    return f"{prefix}{got}"


def register_orders(rt: WorkflowRuntime) -> None:
    for wf in (order, order_declined, order_child, order_slow, order_child_slow):
        rt.register_workflow(fresh(wf))


def register_billing(rt: WorkflowRuntime) -> None:
    rt.register_workflow(fresh(invoice))
    rt.register_workflow(fresh(invoice_slow))
    rt.register_workflow(fresh(awaiting))
    for act in (charge, decline, slow_charge):
        rt.register_activity(fresh(act))


class App:
    """One app's sidecar (restartable on its ports and data) and its workflow worker."""

    def __init__(
        self,
        data: Path,
        app_id: str,
        clock: ManualClock,
        registry: Path,
        register: Callable[[WorkflowRuntime], None],
    ) -> None:
        self.data, self.app_id, self.clock, self.registry, self.register = (
            data,
            app_id,
            clock,
            registry,
            register,
        )
        self.ports: dict[str, int] = {}
        self.sidecar: SidecarThread | None = None
        self.worker: WorkflowRuntime | None = None

    def start(self) -> App:
        self.sidecar = sidecar_thread(
            self.data, app_id=self.app_id, clock=self.clock, registry_dir=self.registry, **self.ports
        ).start()
        self.ports = {"http_port": self.sidecar.http_port, "grpc_port": self.sidecar.grpc_port}
        self.worker = start_worker(self.sidecar.grpc_port, self.register)
        return self

    def stop_sidecar(self) -> None:
        if self.sidecar is not None:
            self.sidecar.stop()
            self.sidecar = None

    def stop_worker(self) -> None:
        if self.worker is not None:
            stop_worker(self.worker)
            self.worker = None

    def stop(self) -> None:
        self.stop_sidecar()
        self.stop_worker()

    @property
    def grpc_port(self) -> int:
        return self.ports["grpc_port"]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, App]]:
    tmp = tmp_path_factory.mktemp("xwf")
    clock = ManualClock()
    billing = App(tmp / "billing", BILLING, clock, tmp / "registry", register_billing).start()
    orders = App(tmp / "orders", ORDERS, clock, tmp / "registry", register_orders).start()
    try:
        yield orders, billing
    finally:
        gate.set()
        orders.stop()
        billing.stop()


@pytest.fixture(scope="module")
def client(apps: tuple[App, App]) -> Iterator[DaprWorkflowClient]:
    wf_client = DaprWorkflowClient(host="127.0.0.1", port=str(apps[0].grpc_port))
    yield wf_client
    close_client(wf_client)


@pytest.fixture(scope="module")
def billing_client(apps: tuple[App, App]) -> Iterator[DaprWorkflowClient]:
    wf_client = DaprWorkflowClient(host="127.0.0.1", port=str(apps[1].grpc_port))
    yield wf_client
    close_client(wf_client)


def finished(client: DaprWorkflowClient, iid: str, timeout: int = 20) -> tuple[WorkflowStatus, Any]:
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state is not None
    return state.runtime_status, json.loads(state.serialized_output or "null")


def raw_history(port: int, iid: str) -> list[pb.HistoryEvent]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
        return list(stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId=iid)).events)


def test_an_activity_of_another_app_returns_its_result(
    client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    before = ran["charge"]
    iid = client.schedule_new_workflow(order, input=21)
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, 42)
    assert ran["charge"] - before == 1
    events = raw_history(apps[0].grpc_port, iid)
    scheduled = next(e for e in events if e.HasField("taskScheduled"))
    assert (scheduled.router.sourceAppID, scheduled.router.targetAppID) == (ORDERS, BILLING)
    completed = next(e for e in events if e.HasField("taskCompleted"))
    assert (
        completed.router.sourceAppID == BILLING
        and completed.taskCompleted.taskScheduledId == scheduled.eventId
    )


def test_a_failing_activity_of_another_app_surfaces_as_task_failed(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(order_declined, input=7)
    status, output = finished(client, iid)
    assert status == WorkflowStatus.COMPLETED
    assert output == ["ValueError", "card declined for 7"]
    kinds = [e.event_type for e in client.get_workflow_history(iid)]
    assert kinds.count(Kind.TASK_FAILED) == 1


def test_a_child_workflow_of_another_app_completes_and_fails(
    client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    iid = client.schedule_new_workflow(order_child, input=5)
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, {"charged": 10})
    billing = DaprWorkflowClient(host="127.0.0.1", port=str(apps[1].grpc_port))
    try:
        child = billing.get_workflow_state(f"{iid}-inv")
        assert child is not None and child.runtime_status == WorkflowStatus.COMPLETED
        assert client.get_workflow_state(f"{iid}-inv") is None  # the child lives in billing, not here
        history = raw_history(apps[1].grpc_port, f"{iid}-inv")
        started = next(e for e in history if e.HasField("executionStarted")).executionStarted
        assert (
            started.parentInstance.appID == ORDERS
            and started.parentInstance.workflowInstance.instanceId == iid
        )

        failing = client.schedule_new_workflow(order_child, input=60)
        status, output = finished(client, failing)
        assert status == WorkflowStatus.COMPLETED and output[0] == "failed"
        assert "too much: 120" in output[1]
        failed_child = billing.get_workflow_state(f"{failing}-inv")
        assert failed_child is not None and failed_child.runtime_status == WorkflowStatus.FAILED
    finally:
        close_client(billing)
    kinds = [e.event_type for e in client.get_workflow_history(failing)]
    assert Kind.CHILD_WORKFLOW_INSTANCE_FAILED in kinds


def test_a_repeated_delivery_runs_the_activity_once(apps: tuple[App, App]) -> None:
    """The caller retries until acknowledged: the same message delivered twice is recorded once."""
    orders, billing = apps
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


def purge(port: int, iid: str, *, recursive: bool) -> int:
    """PurgeInstances on the sidecar at `port`: how many instances it deleted."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
        request = pb.PurgeInstancesRequest(instanceId=iid, recursive=recursive)
        return int(stub.PurgeInstances(request).deletedInstanceCount)


def test_a_recursive_purge_purges_the_children_another_app_runs(
    client: DaprWorkflowClient, billing_client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    orders, billing = apps
    kept = client.schedule_new_workflow(order_child, input=1)
    gone = client.schedule_new_workflow(order_child, input=2)
    assert finished(client, kept)[0] == finished(client, gone)[0] == WorkflowStatus.COMPLETED
    assert purge(orders.grpc_port, kept, recursive=False) == 1
    assert billing_client.get_workflow_state(f"{kept}-inv") is not None  # not recursive: stays
    assert purge(orders.grpc_port, gone, recursive=True) == 2
    assert client.get_workflow_state(gone) is None
    assert billing_client.get_workflow_state(f"{gone}-inv") is None

    # A child purged already on its app (as daprd's purgeidempotent): the parent's purge still succeeds.
    again = client.schedule_new_workflow(order_child, input=3)
    assert finished(client, again)[0] == WorkflowStatus.COMPLETED
    assert purge(billing.grpc_port, f"{again}-inv", recursive=False) == 1
    assert purge(orders.grpc_port, again, recursive=True) == 1
    assert client.get_workflow_state(again) is None


def test_a_recursive_purge_fails_while_a_child_of_another_app_runs(
    client: DaprWorkflowClient, billing_client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    orders = apps[0]
    gate.clear()
    before = ran["slow_charge"]
    iid = client.schedule_new_workflow(order_child_slow, input=1)
    try:
        eventually(lambda: ran["slow_charge"] - before == 1, timeout=10)
        client.terminate_workflow(iid, recursive=False)
        assert finished(client, iid)[0] == WorkflowStatus.TERMINATED
        with pytest.raises(grpc.RpcError) as refused:
            purge(orders.grpc_port, iid, recursive=True)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"failed to purge child workflow '{iid}-inv' of app 'billing'" in str(refused.value.details())
        assert client.get_workflow_state(iid) is not None  # nothing of the tree was deleted
    finally:
        gate.set()
    assert finished(billing_client, f"{iid}-inv")[0] == WorkflowStatus.COMPLETED
    assert purge(orders.grpc_port, iid, recursive=True) == 2
    assert billing_client.get_workflow_state(f"{iid}-inv") is None


def test_the_record_of_a_call_goes_once_the_caller_has_its_result(
    client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    """Billing forgets an activity call and a child call of orders once orders took their results."""
    orders, billing = apps
    one = client.schedule_new_workflow(order, input=2)
    two = client.schedule_new_workflow(order_child, input=4)
    assert finished(client, one) == (WorkflowStatus.COMPLETED, 4)
    assert finished(client, two) == (WorkflowStatus.COMPLETED, {"charged": 8})
    eventually(lambda: not [r for r in remote_calls(billing) if r[1] in (one, two)], timeout=10)


def test_a_call_to_an_absent_app_waits_and_completes_once_it_is_back(
    client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    orders, billing = apps
    billing.stop()
    try:
        before = ran["charge"]
        iid = client.schedule_new_workflow(order, input=8)
        with pytest.raises(TimeoutError):
            client.wait_for_workflow_completion(iid, timeout_in_seconds=2)
        state = client.get_workflow_state(iid)
        assert state is not None and state.runtime_status == WorkflowStatus.RUNNING
    finally:
        billing.start()
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, 16)
    assert ran["charge"] - before == 1


def test_the_other_apps_sidecar_restarting_mid_call_still_records_the_result_once(
    client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    """Billing's sidecar stops while its worker runs the activity: it re-runs it after its restart (activities
    are at least once, as in daprd) and the orders workflow records exactly one result."""
    orders, billing = apps
    gate.clear()
    before = ran["slow_charge"]
    iid = client.schedule_new_workflow(order_slow, input=1)
    eventually(lambda: ran["slow_charge"] - before == 1, timeout=10)
    billing.stop_sidecar()
    gate.set()  # the worker's answer finds no sidecar
    billing.stop_worker()
    billing.start()
    assert finished(client, iid) == (WorkflowStatus.COMPLETED, 2)
    kinds = [e.event_type for e in client.get_workflow_history(iid)]
    assert kinds.count(Kind.TASK_COMPLETED) == 1
    assert ran["slow_charge"] - before in (1, 2)


def test_client_requests_naming_another_app_act_on_that_apps_instance(
    client: DaprWorkflowClient, billing_client: DaprWorkflowClient, apps: tuple[App, App]
) -> None:
    """As daprd (crossapp/ops): orders' client starts, reads, drives, ends and purges billing's instances."""
    billing = apps[1]
    iid = client.schedule_new_workflow("awaiting", input="paid:", instance_id="remote-1", app_id=BILLING)
    assert iid == "remote-1"
    assert client.get_workflow_state(iid) is None  # nothing of the name in orders
    started = client.wait_for_workflow_start(iid, timeout_in_seconds=10, app_id=BILLING)
    assert started is not None and started.name == "awaiting"
    client.pause_workflow(iid, app_id=BILLING)
    state = client.get_workflow_state(iid, app_id=BILLING)
    assert state is not None and state.runtime_status == WorkflowStatus.SUSPENDED
    client.resume_workflow(iid, app_id=BILLING)
    client.raise_workflow_event(iid, "go", data="42", app_id=BILLING)
    done = client.wait_for_workflow_completion(iid, timeout_in_seconds=10, app_id=BILLING)
    assert done is not None and json.loads(done.serialized_output or "null") == "paid:42"
    assert finished(billing_client, iid) == (WorkflowStatus.COMPLETED, "paid:42")
    client.purge_workflow(iid, app_id=BILLING)
    assert billing_client.get_workflow_state(iid) is None

    other = client.schedule_new_workflow("awaiting", input="", app_id=BILLING)
    with pytest.raises(TimeoutError):
        client.wait_for_workflow_completion(other, timeout_in_seconds=1, app_id=BILLING)
    assert billing.sidecar is not None
    waiting = billing.sidecar.sidecar.workflows._waiters._by_id  # the routed wait ended with its deadline
    eventually(lambda: other not in waiting, timeout=5)
    client.terminate_workflow(other, app_id=BILLING)
    assert finished(billing_client, other)[0] == WorkflowStatus.TERMINATED

    with pytest.raises(grpc.RpcError) as unknown:  # billing's answer comes back as it gave it
        client.raise_workflow_event("remote-none", "go", app_id=BILLING)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as invalid:  # daprd's ErrInvalidWorkflowAppID
        client.get_workflow_state(iid, app_id="bad.app.id")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "workflow app ID 'bad.app.id' is invalid" in str(invalid.value.details())
    with pytest.raises(grpc.RpcError) as absent:
        client.schedule_new_workflow("awaiting", input="", app_id="nobody")
    assert absent.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no sidecar of app 'nobody'" in str(absent.value.details())


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
