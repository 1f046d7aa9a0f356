"""Stateful-history deltas on the wire, driven through the SDK's generated stubs (no SDK worker).

A stream that advertised WORKER_CAPABILITY_STATEFUL_HISTORY gets `cachedHistory{eventCount}` and only
the committed events it lacks; a legacy stream, a new stream and a new generation get everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
import grpc
import pytest
from google.protobuf import wrappers_pb2

from sidecar.workflows.history import pb
from tests.sidecar.workflows.support import HEALTH, STATEFUL, RawWorker, WorkflowSidecar


@pytest.fixture()
def stub(sidecar: WorkflowSidecar) -> Iterator[Any]:
    with grpc.insecure_channel(sidecar.address) as channel:
        yield stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]


def kinds(events: Any) -> list[str]:
    return [e.WhichOneof("eventType") for e in events]


def answer(stub: Any, item: Any, *actions: Any) -> None:
    stub.CompleteOrchestratorTask(
        pb.WorkflowResponse(
            instanceId=item.workflowRequest.instanceId,
            actions=list(actions),
            completionToken=item.completionToken,
        )
    )


def raise_event(stub: Any, instance_id: str, name: str) -> None:
    stub.RaiseEvent(pb.RaiseEventRequest(instanceId=instance_id, name=name))


def finish(stub: Any, worker: RawWorker, instance_id: str) -> None:
    raise_event(stub, instance_id, "end")
    item = worker.next()
    done = pb.CompleteWorkflowAction(
        workflowStatus=pb.ORCHESTRATION_STATUS_COMPLETED, result=wrappers_pb2.StringValue(value='"ok"')
    )
    answer(stub, item, pb.WorkflowAction(id=99, completeWorkflow=done))


def turn(stub: Any, worker: RawWorker, instance_id: str, event_name: str) -> Any:
    """Raise an event and return the turn it causes (the request and its item)."""
    raise_event(stub, instance_id, event_name)
    item = worker.next()
    assert item.workflowRequest.instanceId == instance_id
    return item


def test_capable_stream_gets_deltas_legacy_and_new_streams_full(stub: Any) -> None:
    warm = RawWorker(stub, capabilities=(HEALTH, STATEFUL))
    pending = stub.StartInstance.future(pb.CreateInstanceRequest(instanceId="sw-1", name="wf"))
    item = warm.next()
    assert not item.workflowRequest.HasField("cachedHistory") and not item.workflowRequest.pastEvents
    answer(stub, item)
    pending.result(10)

    # The worker held an empty history: the second turn is a full send (durabletask-go: 0 < n).
    item = turn(stub, warm, "sw-1", "a")
    assert not item.workflowRequest.HasField("cachedHistory")
    assert kinds(item.workflowRequest.pastEvents) == ["workflowStarted", "executionStarted"]
    answer(stub, item)

    item = turn(stub, warm, "sw-1", "b")
    request = item.workflowRequest
    assert request.HasField("cachedHistory") and request.cachedHistory.eventCount == 2
    assert kinds(request.pastEvents) == ["workflowStarted", "eventRaised"]
    assert request.pastEvents[1].eventRaised.name == "a"
    assert kinds(request.newEvents) == ["workflowStarted", "eventRaised"]
    answer(stub, item)
    warm.close()

    # What a worker whose cache missed fetches: the whole committed history.
    history = stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId="sw-1")).events
    assert len(history) == 6

    legacy = RawWorker(stub, capabilities=(HEALTH,))
    item = turn(stub, legacy, "sw-1", "c")
    assert not item.workflowRequest.HasField("cachedHistory")
    assert list(item.workflowRequest.pastEvents) == list(history)
    answer(stub, item)
    item = turn(stub, legacy, "sw-1", "d")
    assert not item.workflowRequest.HasField("cachedHistory")
    assert len(item.workflowRequest.pastEvents) == 8
    answer(stub, item)
    legacy.close()

    again = RawWorker(stub, capabilities=(HEALTH, STATEFUL))
    item = turn(stub, again, "sw-1", "e")  # a new stream is cold
    assert not item.workflowRequest.HasField("cachedHistory")
    assert len(item.workflowRequest.pastEvents) == 10
    answer(stub, item)
    item = turn(stub, again, "sw-1", "f")
    assert item.workflowRequest.cachedHistory.eventCount == 10
    assert len(item.workflowRequest.pastEvents) == 2

    # Continue-as-new: the new generation starts from an empty history and is sent in full again.
    can = pb.CompleteWorkflowAction(workflowStatus=pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW)
    answer(stub, item, pb.WorkflowAction(id=1, completeWorkflow=can))
    item = again.next()
    assert not item.workflowRequest.HasField("cachedHistory") and not item.workflowRequest.pastEvents
    assert kinds(item.workflowRequest.newEvents) == ["workflowStarted", "executionStarted"]
    answer(stub, item)
    item = turn(stub, again, "sw-1", "g")
    assert not item.workflowRequest.HasField("cachedHistory")
    assert kinds(item.workflowRequest.pastEvents) == ["workflowStarted", "executionStarted"]
    answer(stub, item)
    item = turn(stub, again, "sw-1", "h")
    assert item.workflowRequest.cachedHistory.eventCount == 2
    assert [e.eventRaised.name for e in item.workflowRequest.pastEvents[1:]] == ["g"]
    answer(stub, item)
    finish(stub, again, "sw-1")
    again.close()


def test_redispatch_on_the_same_stream_names_what_was_last_sent(stub: Any, sidecar: WorkflowSidecar) -> None:
    """A turn re-sent after a timeout claims the history of the previous send: a worker that never
    ran that send holds fewer events, its length check fails and it fetches the history."""
    worker = RawWorker(stub, capabilities=(HEALTH, STATEFUL))
    pending = stub.StartInstance.future(pb.CreateInstanceRequest(instanceId="sw-2", name="wf"))
    answer(stub, worker.next())
    pending.result(10)
    answer(stub, turn(stub, worker, "sw-2", "a"))  # full send of 2 events
    lost = turn(stub, worker, "sw-2", "b")
    assert lost.workflowRequest.cachedHistory.eventCount == 2
    sidecar.clock.advance(400)  # the turn timeout (300 s): sent again under a new token
    again = worker.next()
    assert again.completionToken != lost.completionToken
    assert again.workflowRequest.cachedHistory.eventCount == 4
    assert not again.workflowRequest.pastEvents
    assert list(again.workflowRequest.newEvents)[1:] == list(lost.workflowRequest.newEvents)[1:]
    answer(stub, again)
    finish(stub, worker, "sw-2")
    worker.close()
