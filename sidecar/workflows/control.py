"""Client operations on instances (start, raise, terminate, suspend, resume, purge), as transactions.

Each function validates against the committed state and queues events in the instance's inbox; the
turn that delivers them changes the status. Errors follow daprd's wording where clients match on it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import grpc

from sidecar.workflows import store
from sidecar.workflows.history import STALLED, SUSPENDED, TERMINAL, event, kind, pb, seconds
from sidecar.workflows.lifecycle import Effects, child_ids, create_instance, post
from sidecar.workflows.store import InstanceRow

__all__ = [
    "WorkflowError",
    "effectively_suspended",
    "purge",
    "raise_event",
    "remote_children",
    "request_resume",
    "request_suspend",
    "request_terminate",
    "start",
]


class WorkflowError(Exception):
    """A request the engine refuses; `status` is the gRPC code returned to the caller."""

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _no_such_instance(instance_id: str) -> WorkflowError:
    # The SDK client matches on "no such instance exists" (dapr_workflow_client.py get_workflow_state).
    return WorkflowError(
        grpc.StatusCode.NOT_FOUND, f"unable to find workflow '{instance_id}': no such instance exists"
    )


def _existing(conn: sqlite3.Connection, instance_id: str) -> InstanceRow:
    row = store.get_instance(conn, instance_id)
    if row is None:
        raise _no_such_instance(instance_id)
    return row


def start(conn: sqlite3.Connection, request: Any, instance_id: str, now: float) -> Effects:
    """StartInstance: an active id is ALREADY_EXISTS, a terminal one is reused."""
    if not request.name:
        raise WorkflowError(grpc.StatusCode.INVALID_ARGUMENT, "a workflow name is required")
    fx = Effects()
    scheduled = (
        seconds(request.scheduledStartTimestamp) if request.HasField("scheduledStartTimestamp") else None
    )
    ok = create_instance(
        conn,
        fx,
        instance_id=instance_id,
        name=request.name,
        input=request.input if request.HasField("input") else None,
        version=request.version if request.HasField("version") and request.version.value else None,
        now=now,
        scheduled_start=scheduled,
    )
    if not ok:
        raise WorkflowError(
            grpc.StatusCode.ALREADY_EXISTS,
            f"an active workflow with ID '{instance_id}' already exists",
        )
    return fx


def raise_event(conn: sqlite3.Connection, request: Any, now: float) -> Effects:
    fx = Effects()
    row = _existing(conn, request.instanceId)
    if row.status in TERMINAL:
        return fx  # accepted and dropped, as daprd does
    if row.status == STALLED:
        raise WorkflowError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"workflow '{row.id}' is stalled and does not accept events",
        )
    raised = pb.EventRaisedEvent(name=request.name)
    if request.HasField("input"):
        raised.input.CopyFrom(request.input)
    post(conn, fx, row.id, event(now, eventRaised=raised))
    return fx


def request_terminate(conn: sqlite3.Connection, request: Any, now: float) -> Effects:
    fx = Effects()
    row = _existing(conn, request.instanceId)
    if row.status in TERMINAL:
        return fx
    terminated = pb.ExecutionTerminatedEvent(recurse=request.recursive)
    if request.HasField("output"):
        terminated.input.CopyFrom(request.output)
    post(conn, fx, row.id, event(now, executionTerminated=terminated))
    fx.changed.add(row.id)
    return fx


def effectively_suspended(conn: sqlite3.Connection, row: InstanceRow) -> bool:
    """Suspended once every queued suspend/resume is applied (the Python worker fails a workflow
    that receives `executionResumed` while not suspended, so resumes are sent only then)."""
    suspended = bool(row.suspended) or row.status == SUSPENDED
    for _, blob in store.inbox(conn, row.id):
        k = kind(pb.HistoryEvent.FromString(blob))
        if k == "executionSuspended":
            suspended = True
        elif k == "executionResumed":
            suspended = False
    return suspended


def request_suspend(conn: sqlite3.Connection, request: Any, now: float) -> tuple[Effects, bool]:
    """Queue a suspend; the flag says whether the caller should wait for it to apply."""
    fx = Effects()
    row = _existing(conn, request.instanceId)
    if row.status in TERMINAL or effectively_suspended(conn, row):
        return fx, False
    suspended = pb.ExecutionSuspendedEvent()
    if request.HasField("reason"):
        suspended.input.CopyFrom(request.reason)
    post(conn, fx, row.id, event(now, executionSuspended=suspended))
    return fx, row.start_due is None


def request_resume(conn: sqlite3.Connection, request: Any, now: float) -> tuple[Effects, bool]:
    fx = Effects()
    row = _existing(conn, request.instanceId)
    if row.status in TERMINAL or not effectively_suspended(conn, row):
        return fx, False
    resumed = pb.ExecutionResumedEvent()
    if request.HasField("reason"):
        resumed.input.CopyFrom(request.reason)
    post(conn, fx, row.id, event(now, executionResumed=resumed))
    return fx, row.start_due is None


# At most this many instances (roots and children) go in one filtered purge's transaction; the rest is
# left for the next call (`isComplete` false), so a large purge never holds the database for long.
PURGE_BATCH = 500


def purge(conn: sqlite3.Connection, request: Any) -> tuple[Effects, int, bool]:
    """Delete a terminal instance (and, if recursive, its children) with everything it owns; or, with a
    `purgeInstanceFilter`, every terminal instance it matches. The flag says whether nothing is left."""
    if request.HasField("purgeInstanceFilter"):
        return _purge_matching(conn, request)
    fx = Effects()
    doomed = _purge_tree(conn, _existing(conn, request.instanceId), request)
    _wipe(fx, conn, doomed)
    return fx, len(doomed), True


def remote_children(conn: sqlite3.Connection, request: Any) -> list[tuple[str, str]]:
    """(app, instance id) of the children other apps run, of every instance a recursive single-instance
    purge deletes here; FAILED_PRECONDITION / NOT_FOUND as the purge itself, before anything is deleted."""
    if not request.recursive or request.HasField("purgeInstanceFilter"):
        return []
    found: list[tuple[str, str]] = []
    for row in _purge_tree(conn, _existing(conn, request.instanceId), request):
        for pair in child_ids(conn, row.id, remote=True):
            app, _, child_id = pair.partition("\x00")
            found.append((app, child_id))
    return found


def _purge_matching(conn: sqlite3.Connection, request: Any) -> tuple[Effects, int, bool]:
    """Filtered purge (durabletask's `PurgeInstanceFilter`; daprd answers "multi-instance purge is not
    implemented"): created in `[createdTimeFrom, createdTimeTo]`, in one of `runtimeStatus` (default: every
    terminal status). Only terminal instances are purged, and a tree with a non-terminal member (a running
    child) is skipped, not failed, unless `force`."""
    spec = request.purgeInstanceFilter
    statuses = set(spec.runtimeStatus) or set(TERMINAL)
    active = sorted(pb.OrchestrationStatus.Name(s) for s in statuses - TERMINAL)
    if active:
        raise WorkflowError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"only terminal workflows can be purged; the filter names {', '.join(active)}",
        )
    created_from = seconds(spec.createdTimeFrom) if spec.HasField("createdTimeFrom") else None
    created_to = seconds(spec.createdTimeTo) if spec.HasField("createdTimeTo") else None
    fx = Effects()
    doomed: dict[str, InstanceRow] = {}
    complete = True
    for row in store.matching_instances(conn, sorted(statuses), created_from, created_to):
        if row.id in doomed:
            continue  # a child of a root already taken
        if len(doomed) >= PURGE_BATCH:
            complete = False
            break
        try:
            tree = _purge_tree(conn, row, request)
        except WorkflowError:
            continue
        doomed.update((r.id, r) for r in tree)
    _wipe(fx, conn, list(doomed.values()))
    return fx, len(doomed), complete


def _purge_tree(conn: sqlite3.Connection, root: InstanceRow, request: Any) -> list[InstanceRow]:
    """The instance and, if `recursive`, its descendants; FAILED_PRECONDITION if one is not terminal."""
    doomed: list[InstanceRow] = []
    pending = [root]
    while pending:
        row = pending.pop()
        if row.status not in TERMINAL and not request.force:
            raise WorkflowError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"workflow '{row.id}' has not yet completed: orchestration has not yet completed",
            )
        doomed.append(row)
        if request.recursive:
            for child_id in child_ids(conn, row.id):
                child = store.get_instance(conn, child_id)
                if child is not None and child.parent_id == row.id:
                    pending.append(child)
    return doomed


def _wipe(fx: Effects, conn: sqlite3.Connection, doomed: list[InstanceRow]) -> None:
    for row in doomed:
        store.wipe_instance(conn, row.id)
        fx.drop_jobs.append((row.id, None))
        fx.cancel.append((row.id, row.generation))
        fx.changed.add(row.id)
