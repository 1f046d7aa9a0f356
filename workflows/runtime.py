"""Registering the series workflow and its activities on a `WorkflowRuntime`, and the instance ids.

The SDK marks every function it registers, so each call wraps fresh functions: a restarted worker (a new
`WorkflowRuntime` in the same process) can register again.
"""

from __future__ import annotations

import re
from typing import Any, Final

from dapr.ext.workflow import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime, WorkflowStatus

from workflows.activities import SeriesActivities
from workflows.models import NotifyInput, RecordInput, RecreateInput, dump
from workflows.series import (
    NOTIFY_ACTIVITY,
    OCCURRENCE_ACTIVITY,
    RECORD_ACTIVITY,
    RECREATE_ACTIVITY,
    SERIES_WORKFLOW,
    Steps,
    series_workflow,
)

__all__ = ["FINISHED", "INSTANCE_PREFIX", "register_series", "series_id_of", "series_instance_id"]

INSTANCE_PREFIX: Final = "series-"
FINISHED: Final = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED})
"""The runtime statuses an instance never leaves (it may only be purged)."""
_SERIES_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def series_instance_id(series_id: str) -> str:
    """The workflow instance id of a series: one instance per series, for its whole life."""
    return INSTANCE_PREFIX + series_id


def series_id_of(instance_id: str) -> str | None:
    """The series id an instance id names, or None if it is not a series instance."""
    if not instance_id.startswith(INSTANCE_PREFIX):
        return None
    series_id = instance_id[len(INSTANCE_PREFIX) :]
    return series_id if _SERIES_ID.match(series_id) else None


def register_series(runtime: WorkflowRuntime, activities: SeriesActivities) -> None:
    """Register the `series` workflow and its activities (run on the worker's event loop)."""

    def series(ctx: DaprWorkflowContext, state: dict[str, Any]) -> Steps:
        return series_workflow(ctx, state)

    async def series_occurrence(ctx: WorkflowActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
        return dump(await activities.occurrence(RecreateInput.model_validate(payload)))

    async def series_record(ctx: WorkflowActivityContext, payload: dict[str, Any]) -> None:
        await activities.record(RecordInput.model_validate(payload))

    # The two steps an occurrence was before ONE_ACTIVITY_PATCH, for generations recorded back then.
    async def series_notify(ctx: WorkflowActivityContext, payload: dict[str, Any]) -> None:
        await activities.notify(NotifyInput.model_validate(payload))

    async def series_recreate(ctx: WorkflowActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
        return dump(await activities.recreate(RecreateInput.model_validate(payload)))

    runtime.register_workflow(series, name=SERIES_WORKFLOW)
    runtime.register_activity(series_occurrence, name=OCCURRENCE_ACTIVITY)
    runtime.register_activity(series_record, name=RECORD_ACTIVITY)
    runtime.register_activity(series_notify, name=NOTIFY_ACTIVITY)
    runtime.register_activity(series_recreate, name=RECREATE_ACTIVITY)
