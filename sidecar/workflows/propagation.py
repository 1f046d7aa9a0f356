"""History propagation: a workflow hands its own history (and with LINEAGE its ancestors') to what it calls.

`ScheduleTaskAction` / `CreateChildWorkflowAction.historyPropagationScope` ask for a `PropagatedHistory`
on the activity's `ActivityRequest` or on every `WorkflowRequest` of the child, which the SDK exposes as
`get_propagated_history()` (durabletask-go backend/runtimestate/propagation.go; no signing here).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sidecar.workflows import store
from sidecar.workflows.history import pb
from sidecar.workflows.store import InstanceRow

__all__ = ["Outgoing", "assemble"]

NONE = pb.HISTORY_PROPAGATION_SCOPE_NONE
LINEAGE = pb.HISTORY_PROPAGATION_SCOPE_LINEAGE


def assemble(
    scope: int, received: Any, *, app_id: str, instance_id: str, workflow_name: str, own: list[bytes]
) -> Any:
    """The PropagatedHistory for `scope`: the chunks received from the caller's own parent (LINEAGE
    only, passed through verbatim), then one chunk of the caller's events; None for scope NONE."""
    if scope == NONE:
        return None
    chunks: list[Any] = []
    if scope == LINEAGE and received is not None:
        chunks.extend(received.chunks)
    if own:
        chunks.append(
            pb.PropagatedHistoryChunk(
                appId=app_id, instanceId=instance_id, workflowName=workflow_name, rawEvents=own
            )
        )
    history = pb.PropagatedHistory(chunks=chunks)
    history.scope = scope  # type: ignore[assignment]  # the enum's ValueType is an int at runtime
    return history


class Outgoing:
    """Propagation from one instance while a turn of it is committed.

    The caller's chunk is its history as durabletask-go's applier sees it when it meets the action:
    the committed events, this turn's new events and the events recorded for the turn's earlier
    actions, up to and including the action's own `TaskScheduled` / `ChildWorkflowInstanceCreated`.
    The committed history is read only if some action asks for propagation.
    """

    def __init__(self, conn: sqlite3.Connection, row: InstanceRow, app_id: str, recorded: list[Any]) -> None:
        self._conn = conn
        self._row = row
        self._app_id = app_id
        self._recorded = recorded  # this turn's events so far, appended to by the caller
        self._committed: list[bytes] | None = None
        self._received: Any = None
        self._received_loaded = False

    def received(self) -> Any:
        """The PropagatedHistory this instance itself received, or None."""
        if not self._received_loaded:
            blob = store.propagated(self._conn, self._row.id)
            self._received = None if blob is None else pb.PropagatedHistory.FromString(blob)
            self._received_loaded = True
        return self._received

    def for_action(self, scope: int, recorded_event: Any) -> Any:
        """What to attach to the activity or child an action with `scope` starts (None for NONE)."""
        if scope == NONE:
            return None
        return self._assemble(scope, [recorded_event])

    def for_next_generation(self) -> bytes | None:
        """Continue-as-new: a workflow that received history forwards it, with the scope it was given,
        plus the ending generation's events, to its next generation (durabletask-go canForwardScope)."""
        received = self.received()
        if received is None or received.scope == NONE:
            return None
        return bytes(self._assemble(received.scope, []).SerializeToString())

    def _assemble(self, scope: int, extra: list[Any]) -> Any:
        if self._committed is None:
            self._committed = store.history_blobs(self._conn, self._row.id)
        own = self._committed + [e.SerializeToString() for e in [*self._recorded, *extra]]
        return assemble(
            scope,
            self.received(),
            app_id=self._app_id,
            instance_id=self._row.id,
            workflow_name=self._row.name,
            own=own,
        )
