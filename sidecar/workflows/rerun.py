"""RerunWorkflowFromEvent: fork a terminal instance's history at an activity, timer or child start.

The new instance gets the history before the chosen event plus that event (input optionally replaced,
`rerunParentInstanceInfo` set); every task, timer and child still open in it is dispatched again
(DAPR pkg/actors/targets/workflow/orchestrator/fork).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import grpc

from sidecar.workflows import store
from sidecar.workflows.control import WorkflowError
from sidecar.workflows.history import (
    RUNNING,
    TERMINAL,
    event,
    is_never,
    kind,
    new_execution_id,
    pb,
    string_value,
)
from sidecar.workflows.lifecycle import Effects, first_generation
from sidecar.workflows.propagation import assemble
from sidecar.workflows.routing import dispatch_activity, dispatch_child
from sidecar.workflows.store import InstanceRow, TimerRow

__all__ = ["rerun_from_event"]

_RERUNNABLE = ("taskScheduled", "timerCreated", "childWorkflowInstanceCreated")


def _bad(message: str) -> WorkflowError:
    return WorkflowError(grpc.StatusCode.INVALID_ARGUMENT, message)


def rerun_from_event(
    conn: sqlite3.Connection, request: Any, new_id: str, now: float, app_id: str = "app"
) -> Effects:
    source = store.get_instance(conn, request.sourceInstanceID)
    if source is None:
        raise WorkflowError(
            grpc.StatusCode.NOT_FOUND,
            f"unable to find workflow '{request.sourceInstanceID}': no such instance exists",
        )
    if source.status not in TERMINAL:
        raise _bad(f"workflow '{source.id}' is not in a terminal state")
    if source.parent_id is not None:
        raise _bad(f"workflow '{source.id}' is a child workflow and cannot be rerun")
    events = [pb.HistoryEvent.FromString(b) for b in store.history_blobs(conn, source.id)]
    index = next((i for i, e in enumerate(events) if e.eventId == request.eventID), None)
    if index is not None and kind(events[index]) == "detachedWorkflowInstanceCreated":
        raise _bad("cannot rerun from a detached workflow creation")
    if index is None or kind(events[index]) not in _RERUNNABLE:
        raise WorkflowError(
            grpc.StatusCode.NOT_FOUND,
            f"event {request.eventID} of workflow '{source.id}' is not a rerunnable event",
        )
    target = events[index]
    which = kind(target)
    if which == "timerCreated" and request.overwriteInput:
        raise _bad("a timer event accepts no input")
    if request.HasField("newChildWorkflowInstanceID") and which != "childWorkflowInstanceCreated":
        raise _bad("a new child workflow instance id needs a child workflow event")
    if store.get_instance(conn, new_id) is not None:
        raise WorkflowError(grpc.StatusCode.ALREADY_EXISTS, f"a workflow with ID '{new_id}' already exists")

    payload = getattr(target, which)
    payload.rerunParentInstanceInfo.instanceID = source.id
    if request.overwriteInput and which != "timerCreated":
        payload.ClearField("input")
        if request.HasField("input"):
            payload.input.CopyFrom(request.input)
    if which == "childWorkflowInstanceCreated" and request.HasField("newChildWorkflowInstanceID"):
        payload.instanceId = request.newChildWorkflowInstanceID
    target.timestamp.CopyFrom(event(now).timestamp)

    row = InstanceRow(
        id=new_id,
        name=source.name,
        status=RUNNING,
        generation=first_generation(now),
        execution_id=new_execution_id(),
        created=now,
        last_updated=now,
        started_at=now,
        input=source.input,
        version=source.version,
    )
    history = events[:index] + [target]
    for ev in history:
        if kind(ev) == "executionStarted":
            ev.executionStarted.workflowInstance.instanceId = new_id
            ev.executionStarted.workflowInstance.executionId.value = row.execution_id
    fx = Effects(changed={new_id})
    blobs = [e.SerializeToString() for e in history]
    # The fork keeps what the source received; re-sent work propagates the forked history (DAPR rerun.go).
    received = store.propagated(conn, source.id)
    store.set_propagated(conn, new_id, received)
    received_history = None if received is None else pb.PropagatedHistory.FromString(received)

    def outgoing(scope: int) -> Any:
        return assemble(
            scope, received_history, app_id=app_id, instance_id=new_id, workflow_name=row.name, own=blobs
        )

    _restart_open_work(conn, fx, row, history, now, outgoing, app_id)
    store.append_history(conn, row, blobs)
    store.save_instance(conn, row)
    return fx


def _restart_open_work(
    conn: sqlite3.Connection,
    fx: Effects,
    row: InstanceRow,
    history: list[Any],
    now: float,
    outgoing: Callable[[int], Any],
    app_id: str,
) -> None:
    done_tasks: set[int] = set()
    fired: set[int] = set()
    for ev in history:
        k = kind(ev)
        if k in ("taskCompleted", "taskFailed", "childWorkflowInstanceCompleted"):
            done_tasks.add(getattr(ev, k).taskScheduledId)
        elif k == "childWorkflowInstanceFailed":
            done_tasks.add(ev.childWorkflowInstanceFailed.taskScheduledId)
        elif k == "timerFired":
            fired.add(ev.timerFired.timerId)
    for ev in history:
        k = kind(ev)
        if k == "taskScheduled" and ev.eventId not in done_tasks:
            task = ev.taskScheduled
            request = pb.ActivityRequest(
                name=task.name,
                workflowInstance=pb.WorkflowInstance(
                    instanceId=row.id, executionId=string_value(row.execution_id)
                ),
                taskId=ev.eventId,
                taskExecutionId=task.taskExecutionId,
            )
            if task.HasField("input"):
                request.input.CopyFrom(task.input)
            if task.HasField("version"):
                request.version.CopyFrom(task.version)
            propagated = outgoing(task.historyPropagationScope)
            if propagated is not None:
                request.propagatedHistory.CopyFrom(propagated)
            dispatch_activity(conn, fx, row, ev, request)
        elif k == "timerCreated" and ev.eventId not in fired and not is_never(ev.timerCreated.fireAt):
            at = ev.timerCreated.fireAt
            timer = TimerRow(row.id, row.generation, ev.eventId, at.seconds, at.nanos)
            store.add_timer(conn, timer)
            fx.timers.append(timer)
        elif k == "childWorkflowInstanceCreated" and ev.eventId not in done_tasks:
            propagated = outgoing(ev.childWorkflowInstanceCreated.historyPropagationScope)
            blob = None if propagated is None else propagated.SerializeToString()
            if not dispatch_child(conn, fx, row, ev, now, blob, app_id):
                fx.ready.add(row.id)
