"""One orchestration turn: what a worker is sent, and how its `WorkflowResponse` is committed.

A turn delivers `WorkflowStarted` plus the inbox; the response's actions become history (each
recorded with `eventId = action.id`) and outbound work, all in the caller's single transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from sidecar.workflows import store
from sidecar.workflows.history import (
    CONTINUED_AS_NEW,
    PENDING,
    RUNNING,
    STALLED,
    SUSPENDED,
    TERMINAL,
    TERMINATED,
    event,
    failure,
    is_never,
    kind,
    new_execution_id,
    pb,
    string_value,
)
from sidecar.workflows.lifecycle import (
    Effects,
    cascade_terminate,
    notify_parent,
)
from sidecar.workflows.propagation import Outgoing
from sidecar.workflows.routing import dispatch_activity, dispatch_child, routed
from sidecar.workflows.store import InstanceRow, TimerRow
from sidecar.workflows.streams import delta_start

__all__ = ["TurnInput", "commit_turn", "load_turn"]

log = logging.getLogger("sidecar.workflows.turns")


@dataclass(frozen=True)
class TurnInput:
    """What the database holds for the next turn of an instance."""

    instance_id: str
    generation: int
    execution_id: str
    history: list[bytes]  # committed events from `cached` on
    inbox: list[tuple[int, bytes]]
    cached: int = 0  # leading committed events left out: the worker holds them (streams.py)
    history_len: int = 0
    propagated: bytes | None = None  # the PropagatedHistory the instance received


def load_turn(
    conn: sqlite3.Connection, instance_id: str, retry_stalled: bool, held: tuple[int, int] | None = None
) -> TurnInput | None:
    """The instance's next turn, or None if it has nothing to run (or may not run yet).

    `held` is what the receiving worker is believed to hold of the history (generation, events); the
    part it holds is neither read nor sent.
    """
    row = store.get_instance(conn, instance_id)
    if row is None or row.start_due is not None:
        return None
    if row.status in TERMINAL:
        store.delete_inbox(conn, instance_id, None)  # events for a finished instance are dropped
        return None
    retry = retry_stalled and row.status == STALLED
    if row.status == STALLED and not retry:
        return None
    inbox = store.inbox(conn, instance_id)
    if not inbox and not retry:
        return None
    cached = delta_start(held, row.generation, row.history_len)
    history = store.history_blobs(conn, instance_id, start=cached)
    return TurnInput(
        instance_id,
        row.generation,
        row.execution_id,
        history,
        inbox,
        cached=cached,
        history_len=row.history_len,
        propagated=store.propagated(conn, instance_id),
    )


def commit_turn(
    conn: sqlite3.Connection,
    *,
    instance_id: str,
    generation: int,
    inbox_ords: list[int],
    new_blobs: list[bytes],
    response: Any,
    now: float,
    app_id: str = "",
) -> Effects:
    """Apply a worker's response to the turn it answers (GO backend/orchestration.go applyResponse).

    `app_id` names this app in the history chunks handed to activities and children (propagation.py).
    """
    fx = Effects()
    row = store.get_instance(conn, instance_id)
    if row is None or row.generation != generation:
        return fx  # purged or replaced while the turn ran
    if row.status in TERMINAL:
        store.delete_inbox(conn, instance_id, None)
        return fx
    new_events = [pb.HistoryEvent.FromString(b) for b in new_blobs]
    if response.HasField("version") and (response.version.name or response.version.patches):
        # GO (backend/orchestration.go): the version and the patches the code took ride on the turn's
        # WorkflowStarted, so a replay of this turn finds them in history (`is_patched`).
        started = next((e for e in new_events if e.HasField("workflowStarted")), None)
        if started is not None:
            started.workflowStarted.version.CopyFrom(response.version)
    terminate = next((e for e in new_events if kind(e) == "executionTerminated"), None)
    for ev in new_events:
        _observe(row, ev)
    appended = list(new_events)
    outgoing = Outgoing(conn, row, app_id, appended)
    actions = list(response.actions)
    if terminate is not None:
        actions = _forced_termination(actions, terminate)

    completion: Any = None
    continued: Any = None
    for action in actions:
        which = action.WhichOneof("workflowActionType")
        if which == "completeWorkflow":
            status = action.completeWorkflow.workflowStatus
            if status == CONTINUED_AS_NEW:
                continued = action.completeWorkflow
                break  # later actions of a continue-as-new response are ignored
            completion = _completed_event(action, now)
            appended.append(completion)
            break  # first completion wins
        appended.append(_apply_action(conn, fx, row, action, now, outgoing, app_id))

    row.custom_status = response.customStatus.value if response.HasField("customStatus") else None
    if response.HasField("version") and response.version.name and not row.version:
        row.version = response.version.name
    row.last_updated = now
    store.delete_inbox(conn, instance_id, inbox_ords)
    if continued is not None:
        forwarded = outgoing.for_next_generation()
        _continue_as_new(conn, fx, row, continued, new_events, now)
        store.set_propagated(conn, instance_id, forwarded)
    else:
        store.append_history(conn, row, [e.SerializeToString() for e in appended])
        _derive_status(row, appended, completion)
    if completion is not None:
        _finish(conn, fx, row, completion, now, recurse=terminate is not None and _recurse(terminate))
    else:
        store.save_instance(conn, row)
        if row.status == STALLED:
            fx.stalled.add(instance_id)
        elif store.has_inbox(conn, instance_id):
            fx.ready.add(instance_id)
    fx.changed.add(instance_id)
    return fx


def _recurse(terminate: Any) -> bool:
    return bool(terminate.executionTerminated.recurse)


def _observe(row: InstanceRow, ev: Any) -> None:
    """Track the status-relevant events of a turn (suspend/resume, first start)."""
    k = kind(ev)
    if k == "executionSuspended":
        row.suspended = 1
    elif k == "executionResumed":
        row.suspended = 0
    elif k == "executionStarted" and row.started_at is None:
        row.started_at = ev.timestamp.seconds + ev.timestamp.nanos / 1e9


def _derive_status(row: InstanceRow, appended: list[Any], completion: Any) -> None:
    """Status from committed history (GO runtimestate.RuntimeStatus); CONTINUED_AS_NEW never shows."""
    if completion is not None:
        row.status = completion.executionCompleted.workflowStatus
    elif appended and kind(appended[-1]) == "executionStalled":
        row.status = STALLED
    elif row.history_len == 0:
        row.status = PENDING
    elif row.suspended:
        row.status = SUSPENDED
    else:
        row.status = RUNNING


def _forced_termination(actions: list[Any], terminate: Any) -> list[Any]:
    """A turn that carried a terminate must end the instance, with nothing else scheduled."""
    for action in actions:
        if (
            action.WhichOneof("workflowActionType") == "completeWorkflow"
            and action.completeWorkflow.workflowStatus != CONTINUED_AS_NEW
        ):
            return [action]
    forced = pb.WorkflowAction(
        id=-1,
        completeWorkflow=pb.CompleteWorkflowAction(workflowStatus=TERMINATED),
    )
    if terminate.executionTerminated.HasField("input"):
        forced.completeWorkflow.result.CopyFrom(terminate.executionTerminated.input)
    return [forced]


def _completed_event(action: Any, now: float) -> Any:
    done = action.completeWorkflow
    completed = pb.ExecutionCompletedEvent(workflowStatus=done.workflowStatus)
    if done.HasField("result"):
        completed.result.CopyFrom(done.result)
    if done.HasField("failureDetails"):
        completed.failureDetails.CopyFrom(done.failureDetails)
    return event(now, event_id=action.id, executionCompleted=completed)


def _apply_action(
    conn: sqlite3.Connection,
    fx: Effects,
    row: InstanceRow,
    action: Any,
    now: float,
    outgoing: Outgoing,
    app_id: str,
) -> Any:
    """Record one non-completing action as history and queue its side effect."""
    which = action.WhichOneof("workflowActionType")
    router = routed(action.router, app_id) if action.HasField("router") else None
    if which == "scheduleTask":
        task = action.scheduleTask
        scheduled = pb.TaskScheduledEvent(
            name=task.name,
            taskExecutionId=task.taskExecutionId,
            historyPropagationScope=task.historyPropagationScope,
        )
        request = pb.ActivityRequest(
            name=task.name,
            workflowInstance=pb.WorkflowInstance(
                instanceId=row.id, executionId=string_value(row.execution_id)
            ),
            taskId=action.id,
            taskExecutionId=task.taskExecutionId,
        )
        for msg in (scheduled, request):
            if task.HasField("version"):
                msg.version.CopyFrom(task.version)
            if task.HasField("input"):
                msg.input.CopyFrom(task.input)
        recorded = event(now, event_id=action.id, router=router, taskScheduled=scheduled)
        propagated = outgoing.for_action(task.historyPropagationScope, recorded)
        if propagated is not None:
            request.propagatedHistory.CopyFrom(propagated)
        dispatch_activity(conn, fx, row, recorded, request)
        return recorded
    if which == "createTimer":
        timer = action.createTimer
        created = pb.TimerCreatedEvent(name=timer.name)
        created.fireAt.CopyFrom(timer.fireAt)
        origin = timer.WhichOneof("origin")
        if origin:
            getattr(created, origin).CopyFrom(getattr(timer, origin))
        if not is_never(timer.fireAt):  # an indefinite wait's sentinel is recorded, never armed
            t = TimerRow(row.id, row.generation, action.id, timer.fireAt.seconds, timer.fireAt.nanos)
            store.add_timer(conn, t)
            fx.timers.append(t)
        return event(now, event_id=action.id, timerCreated=created)
    if which == "createChildWorkflow":
        return _create_child(conn, fx, row, action, router, now, outgoing, app_id)
    if which == "workflowVersionNotAvailable":
        stalled = pb.ExecutionStalledEvent(
            reason=pb.VERSION_NOT_AVAILABLE,
            description="the connected worker does not have the workflow version in history",
        )
        return event(now, event_id=action.id, executionStalled=stalled)
    # sendEvent, terminateWorkflow and createDetachedWorkflow are never emitted by the 1.19 SDK.
    log.error("instance %s: unsupported workflow action %r; failing it", row.id, which)
    done = pb.CompleteWorkflowAction(
        workflowStatus=pb.ORCHESTRATION_STATUS_FAILED,
        failureDetails=failure("UnsupportedAction", f"workflow action {which!r} is not supported"),
    )
    return _completed_event(pb.WorkflowAction(id=action.id, completeWorkflow=done), now)


def _create_child(
    conn: sqlite3.Connection,
    fx: Effects,
    row: InstanceRow,
    action: Any,
    router: Any,
    now: float,
    outgoing: Outgoing,
    app_id: str,
) -> Any:
    spec = action.createChildWorkflow
    child_id = spec.instanceId or f"{row.id}:{action.id:04x}"
    created = pb.ChildWorkflowInstanceCreatedEvent(
        instanceId=child_id,
        name=spec.name,
        historyPropagationScope=spec.historyPropagationScope,
    )
    if spec.HasField("version"):
        created.version.CopyFrom(spec.version)
    if spec.HasField("input"):
        created.input.CopyFrom(spec.input)
    if spec.HasField("retryParentInstanceInfo"):
        created.retryParentInstanceInfo.CopyFrom(spec.retryParentInstanceInfo)
    recorded = event(now, event_id=action.id, router=router, childWorkflowInstanceCreated=created)
    propagated = outgoing.for_action(spec.historyPropagationScope, recorded)
    blob = None if propagated is None else propagated.SerializeToString()
    dispatch_child(conn, fx, row, recorded, now, blob, app_id)
    return recorded


def _continue_as_new(
    conn: sqlite3.Connection,
    fx: Effects,
    row: InstanceRow,
    done: Any,
    new_events: list[Any],
    now: float,
) -> None:
    """Start a fresh generation: empty history, new execution id, status stays RUNNING."""
    old_started = next((e for e in new_events if kind(e) == "executionStarted"), None)
    if old_started is None:
        for blob in store.history_blobs(conn, row.id, limit=8):
            ev = pb.HistoryEvent.FromString(blob)
            if kind(ev) == "executionStarted":
                old_started = ev
                break
    conn.execute("DELETE FROM wf_history WHERE instance_id = ?", (row.id,))
    store.clear_instance_work(conn, row.id)
    fx.drop_jobs.append((row.id, row.generation))
    fx.cancel.append((row.id, row.generation))
    row.generation += 1
    row.history_len = 0
    row.execution_id = new_execution_id()
    started = pb.ExecutionStartedEvent(
        name=row.name,
        workflowInstance=pb.WorkflowInstance(instanceId=row.id, executionId=string_value(row.execution_id)),
    )
    router = None
    if old_started is not None:
        if old_started.executionStarted.HasField("parentInstance"):
            started.parentInstance.CopyFrom(old_started.executionStarted.parentInstance)
        if old_started.executionStarted.HasField("version"):
            started.version.CopyFrom(old_started.executionStarted.version)
        router = old_started.router if old_started.HasField("router") else None
    if done.HasField("result"):
        started.input.CopyFrom(done.result)
    row.input = done.result.value if done.HasField("result") else None
    row.created = now
    row.status = RUNNING
    row.suspended = 0
    blobs = [event(now, router=router, executionStarted=started).SerializeToString()]
    for carried in done.carryoverEvents:
        carried.timestamp.CopyFrom(event(now).timestamp)
        blobs.append(carried.SerializeToString())
    store.inbox_prepend(conn, row.id, blobs)


def _finish(
    conn: sqlite3.Connection, fx: Effects, row: InstanceRow, completion: Any, now: float, recurse: bool
) -> None:
    """The instance reached a terminal status: persist the outcome and tell parent and children."""
    done = completion.executionCompleted
    row.completed = now
    row.output = done.result.value if done.HasField("result") else None
    row.failure = done.failureDetails.SerializeToString() if done.HasField("failureDetails") else None
    store.save_instance(conn, row)
    store.delete_inbox(conn, row.id, None)
    store.clear_instance_work(conn, row.id)
    fx.drop_jobs.append((row.id, row.generation))
    fx.cancel.append((row.id, row.generation))
    notify_parent(conn, fx, row, now)
    if row.status == TERMINATED and recurse:
        cascade_terminate(conn, fx, row.id, now)
