"""A series as users see it: its record (what was defined and done) joined with its workflow instance
(what it is doing now: the current generation's input and custom status)."""

from __future__ import annotations

from typing import Final

from dapr.ext.workflow import WorkflowState, WorkflowStatus
from pydantic import ValidationError

from workflows import cycle
from workflows.models import SeriesProgress, SeriesState
from workflows.records import SeriesRecord
from workflows.views import Series, SeriesStatus, Upcoming, WorkflowRef

__all__ = ["series_status", "series_view", "workflow_input"]

_STATUS: Final[dict[WorkflowStatus, SeriesStatus]] = {
    WorkflowStatus.RUNNING: "running",
    WorkflowStatus.PENDING: "running",
    WorkflowStatus.SUSPENDED: "paused",
    WorkflowStatus.COMPLETED: "completed",
    WorkflowStatus.TERMINATED: "cancelled",
    WorkflowStatus.FAILED: "failed",
    WorkflowStatus.STALLED: "failed",
}
_LIVE: Final = ("running", "paused")


def series_status(record: SeriesRecord, workflow: WorkflowState | None) -> SeriesStatus:
    """The series' status: the workflow's while it exists (paused: by a pause control, or suspended
    through the engine), else what the record remembers."""
    if workflow is not None:
        status = _STATUS.get(workflow.runtime_status, "failed")
        state = workflow_input(workflow) if status == "running" else None
        return "paused" if state is not None and state.paused_at is not None else status
    if record.cancelled_at is not None:
        return "cancelled"
    return "completed" if record.ended is not None else "failed"


def workflow_input(workflow: WorkflowState | None) -> SeriesState | None:
    """The current generation's `SeriesState` (None once purged, or if unreadable)."""
    raw = None if workflow is None else workflow.serialized_input
    if not raw:
        return None
    try:
        return SeriesState.model_validate_json(raw)
    except ValidationError:
        return None


def _ended_reason(record: SeriesRecord, status: SeriesStatus) -> str | None:
    if status in _LIVE:
        return None
    if status == "failed":
        return "failed"
    return record.ended or ("cancelled" if status == "cancelled" else "completed")


def series_view(record: SeriesRecord, workflow: WorkflowState | None, upcoming: int) -> Series:
    """The `Series` resource, with the next `upcoming` occurrence dates.

    The next occurrence comes from the custom status when it belongs to the current generation (the
    workflow set it while waiting), else it is computed from the generation's input.
    """
    status = series_status(record, workflow)
    state = workflow_input(workflow)
    live = state is not None and status in _LIVE
    nexts = cycle.upcoming(state, max(upcoming, 1)) if live and state is not None else []
    next_at = nexts[0].at_utc if nexts else None
    next_index = nexts[0].index if nexts else None
    progress = None if workflow is None else SeriesProgress.parse(workflow.serialized_custom_status)
    if live and state is not None and progress is not None and progress.generation == state.generation:
        if progress.phase == "waiting":
            next_at, next_index = progress.next_at, progress.next_index
    return Series(
        id=record.id,
        list_id=record.list_id,
        template=record.template,
        rule=record.rule,
        dtstart=record.dtstart,
        tz=record.tz,
        exdates=list(record.exdates),
        anchor=record.anchor,
        catch_up=record.catch_up,
        status=status,
        ended_reason=_ended_reason(record, status),
        next_occurrence_at=next_at,
        next_occurrence_index=next_index,
        awaiting_completion_of=None if state is None else state.awaiting,
        upcoming=[Upcoming(index=o.index, at=o.at_utc, local=o.local) for o in nexts[:upcoming]],
        occurrences_created=record.occurrences_created,
        occurrences_missed=record.missed,
        occurrences_skipped=record.skipped,
        created_at=record.created_at,
        updated_at=record.updated_at,
        workflow=WorkflowRef(
            instance_id=record.instance_id,
            runtime_status=None if workflow is None else workflow.runtime_status.name,
        ),
    )
