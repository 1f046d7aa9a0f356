"""What a sidecar does with another app's workflow messages, each in one transaction before it acknowledges.

daprd runs a remote activity in the target app's activity actor and a remote child in its workflow actor,
and sends results back to the caller's workflow actor (AddWorkflowEvent). Here the caller's outbox
delivers: "activity" (an ActivityRequest, run on this app's workers), "child" (the child's
ExecutionStarted), "event" (a result or a recursive terminate for an instance of this app) and "forget".
Deliveries may repeat (the caller retries until acknowledged): calls are recorded once per (caller,
instance, execution, task id) and results are taken once per awaited task, so nothing runs or is recorded
twice. A call's record goes once its caller has its result: the caller then queues "forget" behind any copy
of the call still in its outbox (each app's messages are delivered in order, one at a time), so when the
forget arrives no copy of the call can follow it.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from sidecar.workflows import outbox, store
from sidecar.workflows.history import kind, pb
from sidecar.workflows.lifecycle import Effects, create_child, post
from sidecar.workflows.store import ActivityRow

__all__ = ["answer_activity", "receive", "remote_key"]

log = logging.getLogger("sidecar.workflows.crossapp")

_SEP = "\x1f"
_REMOTE = _SEP + "remote" + _SEP  # activity rows run for another app: never a workflow instance id here
_RESULTS = ("taskCompleted", "taskFailed", "childWorkflowInstanceCompleted", "childWorkflowInstanceFailed")


def remote_key(app_id: str, instance_id: str, execution_id: str) -> str:
    """The `wf_activities` key of an activity run for `app_id`'s instance (kept apart from this app's)."""
    return _REMOTE + _SEP.join((app_id, execution_id, instance_id))


def _parse_key(key: str) -> tuple[str, str, str] | None:
    if not key.startswith(_REMOTE):
        return None
    app_id, execution_id, instance_id = key[len(_REMOTE) :].split(_SEP, 2)
    return app_id, instance_id, execution_id


def receive(
    conn: sqlite3.Connection,
    fx: Effects,
    caller: str,
    what: str,
    instance_id: str,
    execution_id: str,
    body: bytes,
    extra: bytes | None,
    now: float,
) -> None:
    """Record one message of app `caller` (see the module docstring); raises ValueError if unknown."""
    if what == "activity":
        _activity(conn, fx, caller, instance_id, execution_id, body)
    elif what == "child":
        _child(conn, fx, caller, body, extra, now)
    elif what == "event":
        _event(conn, fx, caller, instance_id, execution_id, body)
    elif what == "forget":
        outbox.forget_remote_call(conn, caller, instance_id, execution_id, int(body))
    else:
        raise ValueError(f"unknown cross-app workflow message {what!r}")


def _activity(
    conn: sqlite3.Connection, fx: Effects, caller: str, instance_id: str, execution_id: str, body: bytes
) -> None:
    request = pb.ActivityRequest.FromString(body)
    if not outbox.first_remote_call(conn, caller, instance_id, execution_id, request.taskId):
        log.debug("activity %s#%d of app %r received again; ignored", instance_id, request.taskId, caller)
        return
    act = ActivityRow(remote_key(caller, instance_id, execution_id), 0, request.taskId, body)
    store.add_activity(conn, act)
    fx.activities.append(act)


def answer_activity(conn: sqlite3.Connection, fx: Effects, row: ActivityRow, result: Any) -> bool:
    """If `row` ran for another app: queue its result (TaskCompleted/TaskFailed) for that app, once."""
    parsed = _parse_key(row.instance_id)
    if parsed is None:
        return False
    caller, instance_id, execution_id = parsed
    if store.take_activity(conn, row.instance_id, row.generation, row.task_id):
        outbox.outbox_add(conn, caller, "event", instance_id, execution_id, result.SerializeToString())
        fx.sent = True
    return True


def _child(
    conn: sqlite3.Connection, fx: Effects, caller: str, body: bytes, extra: bytes | None, now: float
) -> None:
    ev = pb.HistoryEvent.FromString(body)
    started = ev.executionStarted
    parent = started.parentInstance
    parent_id = parent.workflowInstance.instanceId
    parent_execution = parent.workflowInstance.executionId.value
    if not outbox.first_remote_call(conn, caller, parent_id, parent_execution, parent.taskScheduledId):
        log.debug("child %s of app %r received again; ignored", started.workflowInstance.instanceId, caller)
        return
    child_id = started.workflowInstance.instanceId
    router = ev.router if ev.HasField("router") else None
    refusal = create_child(
        conn, fx, parent, child_id=child_id, spec=started, router=router, now=now, propagated=extra
    )
    if refusal is None:
        outbox.set_remote_parent(conn, child_id, caller)
        return
    outbox.outbox_add(conn, caller, "event", parent_id, parent_execution, refusal)
    fx.sent = True


def _event(
    conn: sqlite3.Connection, fx: Effects, caller: str, instance_id: str, execution_id: str, body: bytes
) -> None:
    ev = pb.HistoryEvent.FromString(body)
    k = kind(ev)
    if k in _RESULTS:
        task_id = getattr(ev, k).taskScheduledId
        # Whether taken, stale or a repeat: the call has its answer, so the app that ran it may forget it.
        outbox.outbox_add(conn, caller, "forget", instance_id, execution_id, str(task_id).encode())
        fx.sent = True
        if not outbox.take_remote_task(conn, instance_id, execution_id, task_id):
            log.debug("result for %s from app %r is stale or a repeat; ignored", instance_id, caller)
            return
        ev.router.sourceAppID = caller  # the history shows which app answered, as daprd's does
        post(conn, fx, instance_id, ev)
    elif k == "executionTerminated":
        if outbox.remote_parent(conn, instance_id) == caller and post(conn, fx, instance_id, ev):
            fx.changed.add(instance_id)
    else:
        log.warning("ignoring a %r event from app %r for %s", k, caller, instance_id)
