"""Which app runs a workflow's activity or child workflow, and the refusal of calls meant for another app.

daprd sends a call whose `router.targetAppID` names another app to that app's workflow actors; the
embedded sidecar has no route to another app's workers or instances, so such a call fails at once (a
failed task, or a refused client request) instead of silently acting on this app.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import grpc

from sidecar.workflows import store
from sidecar.workflows.control import WorkflowError
from sidecar.workflows.history import event, failure, kind, pb

__all__ = ["CROSS_APP_ERROR", "refuse_cross_app_request", "refused"]

log = logging.getLogger("sidecar.workflows.routing")

CROSS_APP_ERROR = "CrossAppWorkflowCallUnsupported"


def refused(conn: sqlite3.Connection, instance_id: str, recorded: Any, app_id: str, now: float) -> bool:
    """Whether `recorded` (a TaskScheduled or ChildWorkflowInstanceCreated event) targets another app;
    if so its failure is queued in the instance's inbox (delivered next turn, as daprd delivers a
    task failure) and nothing is dispatched. An empty target or this app's id runs here."""
    failed = _refusal(recorded, app_id, instance_id, now)
    if failed is None:
        return False
    store.inbox_append(conn, instance_id, [failed.SerializeToString()])
    return True


def _refusal(recorded: Any, app_id: str, instance_id: str, now: float) -> Any | None:
    """The failure event answering `recorded` when its router targets another app, else None."""
    target = recorded.router.targetAppID if recorded.HasField("router") else ""
    if not target or target == app_id:
        return None
    k = kind(recorded)
    if k == "taskScheduled":
        what = f"activity {recorded.taskScheduled.name!r}"
    else:
        what = f"child workflow {recorded.childWorkflowInstanceCreated.name!r}"
    message = _unsupported(what, target, app_id)
    log.warning("workflow %s: %s; failing the task", instance_id, message)
    details = failure(CROSS_APP_ERROR, message)
    details.isNonRetriable = True
    if k == "taskScheduled":
        failed = pb.TaskFailedEvent(
            taskScheduledId=recorded.eventId,
            failureDetails=details,
            taskExecutionId=recorded.taskScheduled.taskExecutionId,
        )
        return event(now, taskFailed=failed)
    child = pb.ChildWorkflowInstanceFailedEvent(taskScheduledId=recorded.eventId, failureDetails=details)
    return event(now, childWorkflowInstanceFailed=child)


def refuse_cross_app_request(method: str, request: Any, app_id: str) -> None:
    """Refuse a client request (StartInstance, RaiseEvent, ...) whose router names another app, which
    would otherwise act on this app's instance of the same id; UNIMPLEMENTED, as nothing here can serve it."""
    target = request.router.targetAppID if request.HasField("router") else ""
    if target and target != app_id:
        message = _unsupported(method, target, app_id)
        log.warning("%s; refusing the request", message)
        raise WorkflowError(grpc.StatusCode.UNIMPLEMENTED, message)


def _unsupported(what: str, target: str, app_id: str) -> str:
    return (
        f"cross-app workflow calls are not supported by the embedded sidecar: {what} targets app "
        f"{target!r} (this sidecar is app {app_id!r} and serves only its own app's workflows)"
    )
