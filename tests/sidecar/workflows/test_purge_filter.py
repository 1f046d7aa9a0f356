"""`PurgeInstances` with a `purgeInstanceFilter` (created-time range and runtime statuses), through the SDK's
generated gRPC stub against the sidecar's workflow service; instances are run by the real SDK worker and
created at different dev-clock instants."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
import dapr.ext.workflow._durabletask.internal.protos as pb
import grpc
import pytest
from dapr.ext.workflow import DaprWorkflowClient, DaprWorkflowContext, WorkflowRuntime, WorkflowStatus
from google.protobuf import timestamp_pb2

from sidecar.clock import ManualClock
from sidecar.workflows import control
from tests.sidecar.workflows.support import WorkflowSidecar, running_worker

DAY = 86_400.0


def done(ctx: DaprWorkflowContext, value: str) -> str:
    return value


def broken(ctx: DaprWorkflowContext, value: str) -> str:
    raise ValueError(value)


def blocked(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    yield ctx.wait_for_external_event("never")


def blocked_parent(ctx: DaprWorkflowContext, child_id: str):  # type: ignore[no-untyped-def]
    yield ctx.call_child_workflow(blocked, instance_id=child_id)


def _register(runtime: WorkflowRuntime) -> None:
    for workflow in (done, broken, blocked, blocked_parent):
        runtime.register_workflow(workflow)


@pytest.fixture(scope="module")
def worker(sidecar: WorkflowSidecar) -> Iterator[None]:
    with running_worker(sidecar, _register):
        yield


@pytest.fixture()
def stub(sidecar: WorkflowSidecar) -> Iterator[Any]:
    with grpc.insecure_channel(sidecar.address) as channel:
        yield stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]


def _ts(instant: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(instant * 1e9))
    return ts


def _purge(stub: Any, **spec: Any) -> Any:
    request = pb.PurgeInstancesRequest(purgeInstanceFilter=pb.PurgeInstanceFilter(**spec), recursive=True)
    return stub.PurgeInstances(request)


def _finish(client: DaprWorkflowClient, workflow: Any, iid: str, value: str | None = None) -> None:
    client.schedule_new_workflow(workflow, input=value or iid, instance_id=iid)
    client.wait_for_workflow_completion(iid, timeout_in_seconds=15)


def _exists(client: DaprWorkflowClient, iid: str) -> bool:
    return client.get_workflow_state(iid) is not None


def test_filter_purges_terminal_instances_in_range_and_status(
    worker: None, client: DaprWorkflowClient, clock: ManualClock, stub: Any
) -> None:
    _finish(client, done, "old-done")
    _finish(client, broken, "old-failed")
    client.schedule_new_workflow(blocked, instance_id="old-running")
    client.wait_for_workflow_start("old-running", timeout_in_seconds=15)
    client.schedule_new_workflow(blocked, instance_id="old-terminated")
    client.wait_for_workflow_start("old-terminated", timeout_in_seconds=15)
    client.terminate_workflow("old-terminated")
    client.wait_for_workflow_completion("old-terminated", timeout_in_seconds=15)
    clock.advance(10 * DAY)
    boundary = clock.now()
    _finish(client, done, "new-done")
    assert client.get_workflow_state("old-failed").runtime_status == WorkflowStatus.FAILED  # type: ignore[union-attr]

    # Statuses narrow the match: only the completed one of the old ones.
    response = _purge(
        stub, createdTimeTo=_ts(boundary - 1), runtimeStatus=[pb.ORCHESTRATION_STATUS_COMPLETED]
    )
    assert (response.deletedInstanceCount, response.isComplete.value) == (1, True)
    assert not _exists(client, "old-done") and _exists(client, "old-failed") and _exists(client, "new-done")

    # No statuses: every terminal status; the running one stays, and nothing after the range's end.
    response = _purge(stub, createdTimeTo=_ts(boundary - 1))
    assert response.deletedInstanceCount == 2
    assert not _exists(client, "old-failed") and not _exists(client, "old-terminated")
    assert _exists(client, "old-running") and _exists(client, "new-done")

    # The range's start is inclusive of what it names and excludes what came before.
    response = _purge(stub, createdTimeFrom=_ts(boundary))
    assert response.deletedInstanceCount == 1 and not _exists(client, "new-done")
    assert _purge(stub).deletedInstanceCount == 0
    client.terminate_workflow("old-running")


def test_filter_refuses_active_statuses(worker: None, stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _purge(stub, runtimeStatus=[pb.ORCHESTRATION_STATUS_RUNNING, pb.ORCHESTRATION_STATUS_COMPLETED])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ORCHESTRATION_STATUS_RUNNING" in (err.value.details() or "")


def test_filter_skips_a_tree_with_a_running_child_and_purges_children_with_the_root(
    worker: None, client: DaprWorkflowClient, clock: ManualClock, stub: Any
) -> None:
    clock.advance(DAY)
    start = clock.now()
    client.schedule_new_workflow(blocked_parent, input="kid-1", instance_id="parent-1")
    client.wait_for_workflow_start("kid-1", timeout_in_seconds=15)
    client.terminate_workflow("parent-1", recursive=False)  # the child keeps running
    client.wait_for_workflow_completion("parent-1", timeout_in_seconds=15)
    assert _purge(stub, createdTimeFrom=_ts(start)).deletedInstanceCount == 0
    assert _exists(client, "parent-1") and _exists(client, "kid-1")

    client.terminate_workflow("kid-1")
    client.wait_for_workflow_completion("kid-1", timeout_in_seconds=15)
    response = stub.PurgeInstances(
        pb.PurgeInstancesRequest(
            purgeInstanceFilter=pb.PurgeInstanceFilter(createdTimeFrom=_ts(start)), recursive=True
        )
    )
    assert response.deletedInstanceCount == 2  # parent and child, the child counted once
    assert not _exists(client, "parent-1") and not _exists(client, "kid-1")


def test_large_purge_goes_in_batches(
    worker: None, client: DaprWorkflowClient, clock: ManualClock, stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "PURGE_BATCH", 2)  # the sidecar runs in this process
    clock.advance(DAY)
    start = clock.now()
    for n in range(5):
        _finish(client, done, f"batch-{n}")
    counts = []
    while True:
        response = _purge(stub, createdTimeFrom=_ts(start))
        counts.append(response.deletedInstanceCount)
        if response.isComplete.value:
            break
    assert counts == [2, 2, 1]
    assert not any(_exists(client, f"batch-{n}") for n in range(5))
