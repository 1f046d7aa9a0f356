"""What clients see of an instance: `WorkflowState` from the status columns, and long-poll waiters.

The status columns are written in the same transaction as the history they summarise, so a reader
never sees a status the history does not back (GO runtimestate.RuntimeStatus rules, see turns.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sidecar.workflows.history import PENDING, TERMINAL, pb, string_value, timestamp
from sidecar.workflows.store import InstanceRow

__all__ = ["Waiters", "has_started", "is_terminal", "workflow_state"]


def workflow_state(row: InstanceRow, with_payloads: bool) -> Any:
    """The `WorkflowState` message for GetInstance and the WaitFor* calls."""
    state = pb.WorkflowState(
        instanceId=row.id,
        name=row.name,
        workflowStatus=pb.OrchestrationStatus.ValueType(row.status),
        executionId=string_value(row.execution_id),
    )
    state.createdTimestamp.CopyFrom(timestamp(row.created))
    state.lastUpdatedTimestamp.CopyFrom(timestamp(row.last_updated))
    if row.completed is not None:
        state.completedTimestamp.CopyFrom(timestamp(row.completed))
    if row.started_at is not None:
        state.startedAt.CopyFrom(timestamp(row.started_at))
    if row.start_due is not None:
        state.scheduledStartTimestamp.CopyFrom(timestamp(row.start_due))
    if row.parent_id is not None:
        state.parentInstanceId.value = row.parent_id
    if row.version:
        state.version.value = row.version
    if with_payloads:
        if row.input is not None:
            state.input.value = row.input
        if row.output is not None:
            state.output.value = row.output
        if row.custom_status is not None:
            state.customStatus.value = row.custom_status
        if row.failure:
            state.failureDetails.ParseFromString(row.failure)
    return state


def has_started(row: InstanceRow | None) -> bool:
    return row is not None and row.status != PENDING


def is_terminal(row: InstanceRow | None) -> bool:
    return row is not None and row.status in TERMINAL


class Waiters:
    """Per-instance wake-ups for long-polls (WaitFor*, and the blocking terminate/suspend/resume)."""

    def __init__(self) -> None:
        self._by_id: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, instance_id: str) -> Iterator[asyncio.Event]:
        ev = asyncio.Event()
        self._by_id.setdefault(instance_id, set()).add(ev)
        try:
            yield ev
        finally:
            waiting = self._by_id.get(instance_id)
            if waiting is not None:
                waiting.discard(ev)
                if not waiting:
                    del self._by_id[instance_id]

    def notify(self, instance_ids: Iterable[str]) -> None:
        for instance_id in instance_ids:
            for ev in self._by_id.get(instance_id, ()):
                ev.set()

    def notify_all(self) -> None:
        self.notify(list(self._by_id))
