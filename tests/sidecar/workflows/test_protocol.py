"""Wire-level behaviour a worker relies on, driven through the SDK's generated stubs (no SDK worker).

Completion tokens, re-dispatch after a dropped stream or an unanswered item, health pings, the
turn contract (WorkflowStarted first, persisted version), concurrency limits and unknown methods.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
import dapr.ext.workflow._durabletask.internal.protos as pb
import grpc
import pytest
from google.protobuf import empty_pb2, wrappers_pb2

from sidecar.clock import ManualClock
from tests.sidecar.workflows.support import RawWorker, WorkflowSidecar, eventually


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[WorkflowSidecar]:
    served = WorkflowSidecar(
        tmp_path_factory.mktemp("wfp") / "sidecar.db",
        clock,
        turn_timeout=60,
        activity_timeout=60,
        health_ping_interval=0.2,
        max_concurrent_activities=1,
        max_concurrent_workflows=1,
    ).start()
    yield served
    served.stop()


@pytest.fixture()
def channel(sidecar: WorkflowSidecar) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(sidecar.address) as ch:
        yield ch


@pytest.fixture()
def stub(channel: grpc.Channel) -> Any:
    return stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture()
def workers(stub: Any) -> Iterator[list[RawWorker]]:
    opened: list[RawWorker] = []
    yield opened
    for w in opened:
        w.close()


def start(stub: Any, instance_id: str, name: str = "wf") -> Any:
    """StartInstance waits for the first turn while a worker is connected: call it as a future."""
    return stub.StartInstance.future(pb.CreateInstanceRequest(instanceId=instance_id, name=name))


def status(stub: Any, instance_id: str) -> int:
    res = stub.GetInstance(pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=True))
    return int(res.workflowState.workflowStatus) if res.exists else -1


def complete(stub: Any, item: Any, result: str = '"done"', token: str | None = None) -> None:
    action = pb.WorkflowAction(
        id=1,
        completeWorkflow=pb.CompleteWorkflowAction(
            workflowStatus=pb.ORCHESTRATION_STATUS_COMPLETED,
            result=wrappers_pb2.StringValue(value=result),
        ),
    )
    stub.CompleteOrchestratorTask(
        pb.WorkflowResponse(
            instanceId=item.workflowRequest.instanceId,
            actions=[action],
            completionToken=item.completionToken if token is None else token,
        )
    )


def test_hello_and_unknown_method_named(channel: grpc.Channel, stub: Any) -> None:
    assert stub.Hello(empty_pb2.Empty()) == empty_pb2.Empty()
    abandon = channel.unary_unary("/TaskHubSidecarService/AbandonTaskActivityWorkItem")
    with pytest.raises(grpc.RpcError) as err:
        abandon(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "AbandonTaskActivityWorkItem" in (err.value.details() or "")


def test_first_turn_starts_with_workflow_started(
    stub: Any, workers: list[RawWorker], clock: ManualClock
) -> None:
    workers.append(w := RawWorker(stub))
    pending = start(stub, "p-first")
    item = w.next()
    request = item.workflowRequest
    kinds = [e.WhichOneof("eventType") for e in request.newEvents]
    assert kinds == ["workflowStarted", "executionStarted"]
    assert not request.pastEvents
    assert abs(request.newEvents[0].timestamp.ToSeconds() - clock.now()) < 5
    assert request.executionId.value
    done = pb.WorkflowAction(
        id=1,
        completeWorkflow=pb.CompleteWorkflowAction(workflowStatus=pb.ORCHESTRATION_STATUS_COMPLETED),
    )
    stub.CompleteWorkflowTask(  # the non-deprecated alias of CompleteOrchestratorTask
        pb.WorkflowResponse(instanceId="p-first", actions=[done], completionToken=item.completionToken)
    )
    assert pending.result(10).instanceId == "p-first"
    assert status(stub, "p-first") == pb.ORCHESTRATION_STATUS_COMPLETED


def test_stale_token_is_ignored(stub: Any, workers: list[RawWorker]) -> None:
    workers.append(w := RawWorker(stub))
    pending = start(stub, "p-stale")
    item = w.next()
    complete(stub, item, token="not-the-token")
    assert status(stub, "p-stale") == pb.ORCHESTRATION_STATUS_PENDING
    complete(stub, item, result='"real"')
    pending.result(10)
    res = stub.GetInstance(pb.GetInstanceRequest(instanceId="p-stale", getInputsAndOutputs=True))
    assert res.workflowState.output.value == '"real"'


def test_dropped_stream_redispatches_turn(stub: Any, workers: list[RawWorker]) -> None:
    first = RawWorker(stub)
    pending = start(stub, "p-drop")
    lost = first.next()
    first.close()
    workers.append(second := RawWorker(stub))
    again = second.next()
    assert again.workflowRequest.instanceId == "p-drop"
    assert again.completionToken != lost.completionToken
    complete(stub, lost)  # the superseded dispatch's answer does not count
    assert status(stub, "p-drop") == pb.ORCHESTRATION_STATUS_PENDING
    complete(stub, again)
    pending.result(10)
    assert status(stub, "p-drop") == pb.ORCHESTRATION_STATUS_COMPLETED


def test_unanswered_turn_is_redispatched_after_timeout(
    stub: Any, workers: list[RawWorker], clock: ManualClock
) -> None:
    workers.append(w := RawWorker(stub))
    pending = start(stub, "p-hung")
    first = w.next()
    with pytest.raises(queue.Empty):
        w.next(timeout=0.5)
    clock.advance(61)
    again = w.next()
    assert again.workflowRequest.instanceId == "p-hung"
    assert again.completionToken != first.completionToken
    complete(stub, again)
    pending.result(10)


def test_health_pings_only_for_capable_workers(stub: Any, workers: list[RawWorker]) -> None:
    workers.append(capable := RawWorker(stub))
    workers.append(legacy := RawWorker(stub, capabilities=()))
    eventually(lambda: capable.pings >= 2)
    assert legacy.pings == 0


def test_activity_results_need_the_current_token_once(stub: Any, workers: list[RawWorker]) -> None:
    workers.append(w := RawWorker(stub))
    pending = start(stub, "p-act")
    turn = w.next()
    schedule = [
        pb.WorkflowAction(id=i, scheduleTask=pb.ScheduleTaskAction(name="act", taskExecutionId=f"x{i}"))
        for i in (1, 2)
    ]
    stub.CompleteOrchestratorTask(
        pb.WorkflowResponse(
            instanceId="p-act",
            actions=schedule,
            completionToken=turn.completionToken,
            version=pb.WorkflowVersion(name="v7", patches=["p1"]),
        )
    )
    pending.result(10)
    first = w.next()
    assert first.activityRequest.workflowInstance.instanceId == "p-act"
    assert first.activityRequest.taskExecutionId in ("x1", "x2")
    with pytest.raises(queue.Empty):  # max_concurrent_activities=1: the second waits
        w.next(timeout=0.5)
    result = pb.ActivityResponse(
        instanceId="p-act",
        taskId=first.activityRequest.taskId,
        result=wrappers_pb2.StringValue(value="1"),
        completionToken="stale",
    )
    stub.CompleteActivityTask(result)
    with pytest.raises(queue.Empty):
        w.next(timeout=0.3)
    result.completionToken = first.completionToken
    stub.CompleteActivityTask(result)
    stub.CompleteActivityTask(result)  # a duplicate is dropped
    items = [w.next(), w.next()]
    kinds = sorted(i.WhichOneof("request") for i in items)
    assert kinds == ["activityRequest", "workflowRequest"]
    turn2 = next(i for i in items if i.HasField("workflowRequest")).workflowRequest
    started = turn2.pastEvents[0]
    assert started.workflowStarted.version.name == "v7"  # persisted onto the turn's WorkflowStarted
    assert list(started.workflowStarted.version.patches) == ["p1"]
    new_kinds = [e.WhichOneof("eventType") for e in turn2.newEvents]
    assert new_kinds == ["workflowStarted", "taskCompleted"]
    history = stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId="p-act")).events
    assert [e.eventId for e in history if e.HasField("taskScheduled")] == [1, 2]
    complete(stub, next(i for i in items if i.HasField("workflowRequest")))
    eventually(lambda: status(stub, "p-act") == pb.ORCHESTRATION_STATUS_COMPLETED)


def test_wait_for_start_parks_for_unknown_instances(stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.WaitForInstanceStart(pb.GetInstanceRequest(instanceId="p-nobody"), timeout=0.3)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not stub.GetInstance(pb.GetInstanceRequest(instanceId="p-nobody")).exists


def test_forced_termination_when_worker_ignores_it(stub: Any, workers: list[RawWorker]) -> None:
    workers.append(w := RawWorker(stub))
    pending = start(stub, "p-term")
    first = w.next()
    stub.CompleteOrchestratorTask(
        pb.WorkflowResponse(instanceId="p-term", completionToken=first.completionToken)
    )
    pending.result(10)
    assert status(stub, "p-term") == pb.ORCHESTRATION_STATUS_RUNNING
    terminating = stub.TerminateInstance.future(
        pb.TerminateRequest(instanceId="p-term", output=wrappers_pb2.StringValue(value='"bye"'))
    )
    turn = w.next()
    assert turn.workflowRequest.newEvents[1].HasField("executionTerminated")
    timer = pb.WorkflowAction(id=1, createTimer=pb.CreateTimerAction())
    stub.CompleteOrchestratorTask(
        pb.WorkflowResponse(instanceId="p-term", actions=[timer], completionToken=turn.completionToken)
    )
    terminating.result(10)
    res = stub.GetInstance(pb.GetInstanceRequest(instanceId="p-term", getInputsAndOutputs=True))
    assert res.workflowState.workflowStatus == pb.ORCHESTRATION_STATUS_TERMINATED
    assert res.workflowState.output.value == '"bye"'


def test_workflow_turn_limit(stub: Any, workers: list[RawWorker]) -> None:
    workers.append(w := RawWorker(stub))
    one, two = start(stub, "p-lim-1"), start(stub, "p-lim-2")
    first = w.next()
    with pytest.raises(queue.Empty):  # max_concurrent_workflows=1: the other instance waits
        w.next(timeout=0.5)
    complete(stub, first)
    second = w.next()
    assert {first.workflowRequest.instanceId, second.workflowRequest.instanceId} == {
        "p-lim-1",
        "p-lim-2",
    }
    complete(stub, second)
    one.result(10), two.result(10)


def schedule_one(stub: Any, turn: Any) -> None:
    action = pb.WorkflowAction(id=1, scheduleTask=pb.ScheduleTaskAction(name="act"))
    stub.CompleteOrchestratorTask(
        pb.WorkflowResponse(
            instanceId=turn.workflowRequest.instanceId,
            actions=[action],
            completionToken=turn.completionToken,
        )
    )


def test_late_result_never_reaches_a_recreated_instance(stub: Any, workers: list[RawWorker]) -> None:
    workers.append(w := RawWorker(stub))
    pending = start(stub, "p-reuse")
    schedule_one(stub, w.next())
    pending.result(10)
    old_activity = w.next()
    terminating = stub.TerminateInstance.future(pb.TerminateRequest(instanceId="p-reuse"))
    terminate_turn = w.next()
    stub.CompleteOrchestratorTask(
        pb.WorkflowResponse(
            instanceId="p-reuse",
            actions=[
                pb.WorkflowAction(
                    id=-1,
                    completeWorkflow=pb.CompleteWorkflowAction(
                        workflowStatus=pb.ORCHESTRATION_STATUS_TERMINATED
                    ),
                )
            ],
            completionToken=terminate_turn.completionToken,
        )
    )
    terminating.result(10)
    stub.PurgeInstances(pb.PurgeInstancesRequest(instanceId="p-reuse"))
    pending = start(stub, "p-reuse")
    schedule_one(stub, w.next())
    pending.result(10)

    def answer(item: Any, value: str) -> None:
        stub.CompleteActivityTask(
            pb.ActivityResponse(
                instanceId="p-reuse",
                taskId=1,
                result=wrappers_pb2.StringValue(value=value),
                completionToken=item.completionToken,
            )
        )

    answer(old_activity, '"old"')  # the purged incarnation's activity finishes late
    new_activity = w.next()
    assert new_activity.completionToken != old_activity.completionToken
    answer(new_activity, '"new"')
    turn = w.next()
    results = [
        e.taskCompleted.result.value for e in turn.workflowRequest.newEvents if e.HasField("taskCompleted")
    ]
    assert results == ['"new"']
    complete(stub, turn)
    eventually(lambda: status(stub, "p-reuse") == pb.ORCHESTRATION_STATUS_COMPLETED)


def test_unanswered_activity_is_redispatched_after_timeout(
    stub: Any, workers: list[RawWorker], clock: ManualClock
) -> None:
    workers.append(w := RawWorker(stub))
    pending = start(stub, "p-slow-act")
    schedule_one(stub, w.next())
    pending.result(10)
    first = w.next()
    with pytest.raises(queue.Empty):
        w.next(timeout=0.3)
    clock.advance(61)
    again = w.next()
    assert again.activityRequest.taskId == first.activityRequest.taskId
    assert again.completionToken != first.completionToken
    stub.CompleteActivityTask(
        pb.ActivityResponse(instanceId="p-slow-act", taskId=1, completionToken=again.completionToken)
    )
    complete(stub, w.next())
    eventually(lambda: status(stub, "p-slow-act") == pb.ORCHESTRATION_STATUS_COMPLETED)
