"""Which app runs a workflow's activity or child workflow: here, or another app reached through the outbox.

As in daprd, a call whose `router.targetAppID` names another app goes to that app's sidecar (daprd calls
the target app's activity or workflow actor; here the outbox carries it, see crossapp.py and courier.py)
and its result comes back as an event for this instance. A client request whose router targets another app
is run by that app's sidecar (`foreign_target`; daprd invokes that app's workflow actor likewise).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

import grpc

from sidecar.workflows import outbox, store
from sidecar.workflows.control import WorkflowError
from sidecar.workflows.history import event, pb, string_value
from sidecar.workflows.lifecycle import Effects, remote_target, start_child
from sidecar.workflows.store import ActivityRow, InstanceRow

__all__ = ["dispatch_activity", "dispatch_child", "foreign_target", "routed"]

log = logging.getLogger("sidecar.workflows.routing")


def routed(router: Any, app_id: str) -> Any:
    """The router recorded in history: this app as its source (as daprd records it), or None."""
    if router is None:
        return None
    recorded = pb.TaskRouter()
    recorded.CopyFrom(router)
    if not recorded.sourceAppID:
        recorded.sourceAppID = app_id
    return recorded


def dispatch_activity(
    conn: sqlite3.Connection, fx: Effects, row: InstanceRow, recorded: Any, request: Any
) -> None:
    """Queue the activity of `recorded` (a TaskScheduled event): on this app's workers, or for the app its
    router targets (awaited by (instance, execution, task id), so a result arriving twice counts once)."""
    target = remote_target(recorded)
    if target is None:
        act = ActivityRow(row.id, row.generation, recorded.eventId, request.SerializeToString())
        store.add_activity(conn, act)
        fx.activities.append(act)
        return
    outbox.add_remote_task(conn, row.id, row.execution_id, recorded.eventId, target)
    outbox.outbox_add(conn, target, "activity", row.id, row.execution_id, request.SerializeToString())
    fx.sent = True
    log.debug("workflow %s: activity %d goes to app %r", row.id, recorded.eventId, target)


def dispatch_child(
    conn: sqlite3.Connection,
    fx: Effects,
    row: InstanceRow,
    recorded: Any,
    now: float,
    propagated: bytes | None,
    app_id: str,
) -> bool:
    """Create the child of `recorded` (a ChildWorkflowInstanceCreated event) here, or ask the app its router
    targets to create it; False if it could not be created here (its failure is queued for the parent)."""
    spec = recorded.childWorkflowInstanceCreated
    router = recorded.router if recorded.HasField("router") else None
    target = remote_target(recorded)
    if target is None:
        return start_child(
            conn,
            fx,
            row,
            task_id=recorded.eventId,
            child_id=spec.instanceId,
            spec=spec,
            router=router,
            now=now,
            propagated=propagated,
        )
    started = pb.ExecutionStartedEvent(
        name=spec.name,
        workflowInstance=pb.WorkflowInstance(instanceId=spec.instanceId),
        parentInstance=pb.ParentInstanceInfo(
            taskScheduledId=recorded.eventId,
            name=string_value(row.name),
            workflowInstance=pb.WorkflowInstance(
                instanceId=row.id, executionId=string_value(row.execution_id)
            ),
            appID=app_id,
        ),
    )
    if spec.HasField("input"):
        started.input.CopyFrom(spec.input)
    if spec.HasField("version"):
        started.version.CopyFrom(spec.version)
    body = event(now, router=router, executionStarted=started).SerializeToString()
    outbox.add_remote_task(conn, row.id, row.execution_id, recorded.eventId, target)
    outbox.outbox_add(conn, target, "child", row.id, row.execution_id, body, propagated)
    fx.sent = True
    log.debug("workflow %s: child %s goes to app %r", row.id, spec.instanceId, target)
    return True


# daprd's common.ValidAppID, checked before routing (the id names the target's workflow actor type).
_VALID_APP_ID = re.compile(r"[A-Za-z0-9_-]+")


def foreign_target(request: Any, app_id: str) -> str | None:
    """The other app a client request's router targets (None: this app); INVALID_ARGUMENT, with daprd's
    ErrInvalidWorkflowAppID text, for an app id daprd would refuse."""
    target = str(request.router.targetAppID) if request.HasField("router") else ""
    if not target or target == app_id:
        return None
    if not _VALID_APP_ID.fullmatch(target):
        raise WorkflowError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"workflow app ID '{target}' is invalid: only alphanumeric, dash and underscore characters "
            "are allowed",
        )
    return target
