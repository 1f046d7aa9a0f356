"""Creating instances and passing messages between them (child start, child result, cascade terminate).

Everything here runs inside one database transaction and records what must happen after the commit
(dispatch, timers, waking waiters) in an `Effects`, so that nothing is dispatched that did not commit.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from sidecar.workflows import outbox, store
from sidecar.workflows.history import (
    COMPLETED,
    PENDING,
    TERMINAL,
    event,
    failure,
    kind,
    new_execution_id,
    pb,
    string_value,
)
from sidecar.workflows.store import ActivityRow, InstanceRow, TimerRow

__all__ = [
    "Effects",
    "cascade_terminate",
    "child_ids",
    "create_child",
    "create_instance",
    "start_child",
    "first_generation",
    "notify_parent",
    "post",
    "remote_target",
]


@dataclass
class Effects:
    """What a committed transaction asks the engine to do next."""

    ready: set[str] = field(default_factory=set)  # may run a turn now
    activities: list[ActivityRow] = field(default_factory=list)  # dispatch to a worker
    timers: list[TimerRow] = field(default_factory=list)  # arm in the scheduler
    starts: list[tuple[str, int, float]] = field(default_factory=list)  # scheduled starts to arm
    drop_jobs: list[tuple[str, int | None]] = field(default_factory=list)  # (id, generation|all)
    cancel: list[tuple[str, int]] = field(default_factory=list)  # activities no longer wanted
    changed: set[str] = field(default_factory=set)  # status may have changed: wake waiters
    stalled: set[str] = field(default_factory=set)
    sent: bool = False  # messages for other apps' sidecars were queued (outbox.outbox_add)

    def merge(self, other: Effects) -> None:
        self.ready |= other.ready
        self.activities += other.activities
        self.timers += other.timers
        self.starts += other.starts
        self.drop_jobs += other.drop_jobs
        self.cancel += other.cancel
        self.changed |= other.changed
        self.stalled |= other.stalled
        self.sent = self.sent or other.sent


def first_generation(now: float) -> int:
    """Generations start at the creation millisecond, so an id that is purged and created again
    never repeats a generation whose late activity results or timers might still arrive."""
    return int(now * 1000)


def create_instance(
    conn: sqlite3.Connection,
    fx: Effects,
    *,
    instance_id: str,
    name: str,
    input: Any,
    now: float,
    version: Any = None,
    parent: Any = None,
    router: Any = None,
    scheduled_start: float | None = None,
    propagated: bytes | None = None,
) -> bool:
    """Create a PENDING instance whose inbox holds its ExecutionStarted.

    A terminal instance with the same id is wiped first (Dapr >= 1.18 reuse rule); returns False,
    changing nothing, if an active instance holds the id. `propagated` is the serialized
    PropagatedHistory its caller hands it, sent with each of its turns.
    """
    old = store.get_instance(conn, instance_id)
    generation = first_generation(now)
    if old is not None:
        if old.status not in TERMINAL:
            return False
        store.wipe_instance(conn, instance_id)
        fx.drop_jobs.append((instance_id, None))
        fx.cancel.append((instance_id, old.generation))
        generation = max(generation, old.generation + 1)
    execution_id = new_execution_id()
    started = pb.ExecutionStartedEvent(
        name=name,
        workflowInstance=pb.WorkflowInstance(instanceId=instance_id, executionId=string_value(execution_id)),
    )
    if input is not None:
        started.input.CopyFrom(input)
    if version is not None:
        started.version.CopyFrom(version)
    if parent is not None:
        started.parentInstance.CopyFrom(parent)
    if scheduled_start is not None:
        started.scheduledStartTimestamp.FromNanoseconds(int(scheduled_start * 1e9))
    row = InstanceRow(
        id=instance_id,
        name=name,
        status=PENDING,
        generation=generation,
        execution_id=execution_id,
        created=now,
        last_updated=now,
        input=input.value if input is not None else None,
        version=version.value if version is not None and version.value else None,
    )
    if parent is not None:
        row.parent_id = parent.workflowInstance.instanceId
        row.parent_execution_id = parent.workflowInstance.executionId.value
        row.parent_task_id = parent.taskScheduledId
    due_later = scheduled_start is not None and scheduled_start > now
    if due_later:
        row.start_due = scheduled_start
        assert scheduled_start is not None
        fx.starts.append((instance_id, generation, scheduled_start))
    store.save_instance(conn, row)
    store.set_propagated(conn, instance_id, propagated)
    ev = event(now, router=router, executionStarted=started)
    store.inbox_append(conn, instance_id, [ev.SerializeToString()])
    if not due_later:
        fx.ready.add(instance_id)
    fx.changed.add(instance_id)
    return True


def post(conn: sqlite3.Connection, fx: Effects, instance_id: str, ev: Any) -> bool:
    """Queue an event for an active instance; False (and nothing queued) if it is gone or terminal."""
    row = store.get_instance(conn, instance_id)
    if row is None or row.status in TERMINAL:
        return False
    store.inbox_append(conn, instance_id, [ev.SerializeToString()])
    if kind(ev) == "executionTerminated" and row.start_due is not None:
        # Terminating a not-yet-started instance: deliver the start and the terminate together.
        row.start_due = None
        store.save_instance(conn, row)
    if row.start_due is None:
        fx.ready.add(instance_id)
    return True


def remote_target(recorded: Any) -> str | None:
    """The other app a recorded TaskScheduled or ChildWorkflowInstanceCreated is routed to, else None
    (routed events carry this app as `sourceAppID`, so a target equal to it runs here)."""
    if not recorded.HasField("router"):
        return None
    router = recorded.router
    target = str(router.targetAppID)
    return target if target and target != router.sourceAppID else None


def notify_parent(conn: sqlite3.Connection, fx: Effects, child: InstanceRow, now: float) -> None:
    """Tell a child's parent (if it still runs the same execution) that the child ended; a parent of
    another app is told through the outbox (its sidecar checks the execution)."""
    if child.parent_id is None or child.parent_task_id is None:
        return
    parent_app = outbox.remote_parent(conn, child.id)
    if parent_app is not None:
        ev = _child_outcome(child, child.parent_task_id, now)
        body = ev.SerializeToString()
        outbox.outbox_add(conn, parent_app, "event", child.parent_id, child.parent_execution_id or "", body)
        fx.sent = True
        return
    parent = store.get_instance(conn, child.parent_id)
    if parent is None or parent.status in TERMINAL:
        return
    if child.parent_execution_id and parent.execution_id != child.parent_execution_id:
        return  # the parent continued as new; that generation no longer waits for this child
    post(conn, fx, parent.id, _child_outcome(child, child.parent_task_id, now))


def _child_outcome(child: InstanceRow, task_id: int, now: float) -> Any:
    if child.status == COMPLETED:
        return event(
            now,
            childWorkflowInstanceCompleted=pb.ChildWorkflowInstanceCompletedEvent(
                taskScheduledId=task_id, result=string_value(child.output)
            ),
        )
    details = pb.TaskFailureDetails()
    if child.failure:
        details.ParseFromString(child.failure)
    return event(
        now,
        childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
            taskScheduledId=task_id, failureDetails=details
        ),
    )


def child_ids(conn: sqlite3.Connection, instance_id: str, *, remote: bool = False) -> list[str]:
    """Instance ids of the children recorded in the current generation's history that run here (with
    `remote`: (app, id) pairs of those another app runs, as "app\x00id")."""
    ids: list[str] = []
    for blob in store.history_blobs(conn, instance_id):
        ev = pb.HistoryEvent.FromString(blob)
        if kind(ev) == "childWorkflowInstanceCreated":
            target = remote_target(ev)
            if remote and target is not None:
                ids.append(f"{target}\x00{ev.childWorkflowInstanceCreated.instanceId}")
            elif not remote and target is None:
                ids.append(ev.childWorkflowInstanceCreated.instanceId)
    return ids


def cascade_terminate(conn: sqlite3.Connection, fx: Effects, parent_id: str, now: float) -> None:
    """Send a recursive terminate to every still-active child of a terminated parent (through the
    outbox to a child another app runs; its sidecar ignores it if the child has ended)."""
    ev = event(now, executionTerminated=pb.ExecutionTerminatedEvent(recurse=True))
    for child_id in child_ids(conn, parent_id):
        if post(conn, fx, child_id, ev):
            fx.changed.add(child_id)
    for pair in child_ids(conn, parent_id, remote=True):
        app, _, child_id = pair.partition("\x00")
        outbox.outbox_add(conn, app, "event", child_id, "", ev.SerializeToString())
        fx.sent = True


def start_child(
    conn: sqlite3.Connection,
    fx: Effects,
    parent_row: InstanceRow,
    *,
    task_id: int,
    child_id: str,
    spec: Any,
    router: Any,
    now: float,
    propagated: bytes | None = None,
) -> bool:
    """Create the child workflow `spec` (a CreateChildWorkflowAction or ChildWorkflowInstanceCreatedEvent)
    of `parent_row`; if an active instance holds `child_id`, post ChildWorkflowInstanceFailed
    (AlreadyExists) to the parent's inbox instead and return False."""
    parent = pb.ParentInstanceInfo(
        taskScheduledId=task_id,
        name=string_value(parent_row.name),
        workflowInstance=pb.WorkflowInstance(
            instanceId=parent_row.id, executionId=string_value(parent_row.execution_id)
        ),
    )
    refusal = create_child(
        conn, fx, parent, child_id=child_id, spec=spec, router=router, now=now, propagated=propagated
    )
    if refusal is not None:
        store.inbox_append(conn, parent_row.id, [refusal])
    return refusal is None


def create_child(
    conn: sqlite3.Connection,
    fx: Effects,
    parent: Any,
    *,
    child_id: str,
    spec: Any,
    router: Any,
    now: float,
    propagated: bytes | None,
) -> bytes | None:
    """Create the child `spec` (anything with name, input, version) of `parent` (ParentInstanceInfo); None
    once created, else the serialized ChildWorkflowInstanceFailed (AlreadyExists) for its parent."""
    ok = create_instance(
        conn,
        fx,
        instance_id=child_id,
        name=spec.name,
        input=spec.input if spec.HasField("input") else None,
        version=spec.version if spec.HasField("version") else None,
        parent=parent,
        router=router,
        now=now,
        propagated=propagated,
    )
    if ok:
        return None
    failed = pb.ChildWorkflowInstanceFailedEvent(
        taskScheduledId=parent.taskScheduledId,
        failureDetails=failure("AlreadyExists", f"an active workflow with ID '{child_id}' already exists"),
    )
    return bytes(event(now, childWorkflowInstanceFailed=failed).SerializeToString())
