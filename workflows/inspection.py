"""Generic, owner-scoped inspection and control of workflow instances (`/v1/workflows`).

A user's workflows are the instances of their series: an instance id that is not one of theirs (or not a
series at all) answers NotFound, exactly like a missing one. Pause, resume and terminate go through the
series' own controls, so the series record stays in step.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Final

from dapr.ext.workflow import WorkflowState, WorkflowStatus

from todo_actors.errors import InvalidInput, NotFound
from todo_actors.model import Role
from workflows.errors import SeriesConflict
from workflows.models import utc
from workflows.records import SeriesRecord
from workflows.runtime import FINISHED, series_id_of, series_instance_id
from workflows.series_client import SeriesService
from workflows.taskhub import TaskHub
from workflows.timeline import build_timeline
from workflows.views import Failure, WorkflowInfo, WorkflowPage, WorkflowTimeline

__all__ = ["STATUS_NAMES", "WorkflowInspector", "workflow_info"]

log = logging.getLogger("workflows.inspection")

STATUS_NAMES: Final = frozenset(s.name for s in WorkflowStatus if s != WorkflowStatus.UNKNOWN)


def workflow_info(instance_id: str, state: WorkflowState) -> WorkflowInfo:
    """The engine's view of an instance, with JSON payloads decoded."""
    failure = state.failure_details
    return WorkflowInfo(
        instance_id=instance_id,
        name=state.name or None,
        series_id=series_id_of(instance_id),
        runtime_status=state.runtime_status.name,
        created_at=utc(state.created_at) if state.created_at else None,
        last_updated_at=utc(state.last_updated_at) if state.last_updated_at else None,
        input=_decoded(state.serialized_input),
        output=_decoded(state.serialized_output),
        custom_status=_decoded(state.serialized_custom_status),
        failure=None
        if failure is None
        else Failure(message=failure.message, error_type=failure.error_type, stack_trace=failure.stack_trace),
    )


class WorkflowInspector:
    """The `/v1/workflows` operations for one deployment; `taskhub` reads full histories."""

    def __init__(self, series: SeriesService, taskhub: TaskHub) -> None:
        self.series = series
        self.taskhub = taskhub

    async def _owned(self, owner: str, instance_id: str, need: Role = "viewer") -> SeriesRecord:
        series_id = series_id_of(instance_id)
        if series_id is None:
            raise NotFound("no such workflow")
        try:
            return await self.series.owned(owner, series_id, need)
        except NotFound:
            raise NotFound("no such workflow") from None

    async def _state(self, record: SeriesRecord) -> WorkflowState:
        state = await self.series.workflows.get_workflow_state(record.instance_id, fetch_payloads=True)
        if state is None:
            raise NotFound("no such workflow (purged)")
        return state

    async def get_workflow(self, owner: str, instance_id: str) -> WorkflowInfo:
        record = await self._owned(owner, instance_id)
        return workflow_info(record.instance_id, await self._state(record))

    async def list_workflows(
        self,
        owner: str,
        *,
        status: str | None = None,
        name: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> WorkflowPage:
        """The owner's workflow instances (oldest series first), filtered by runtime status and name."""
        wanted = None if status is None else status.upper()
        if wanted is not None and wanted not in STATUS_NAMES:
            raise InvalidInput.at("status", f"must be one of {', '.join(sorted(STATUS_NAMES))}")
        if cursor is not None and (not cursor.isdigit() or len(cursor) > 12):
            raise InvalidInput.at("cursor", "not a cursor this API returned")
        owned = await self.series.store.owned(owner)
        position = int(cursor or 0)
        items: list[WorkflowInfo] = []
        while position < len(owned) and len(items) < limit:
            chunk = owned[position : position + max(limit - len(items), 10)]
            states = await asyncio.gather(
                *(
                    self.series.workflows.get_workflow_state(series_instance_id(e.id), fetch_payloads=True)
                    for e in chunk
                )
            )
            for entry, state in zip(chunk, states, strict=True):
                position += 1
                if state is None:
                    continue
                info = workflow_info(series_instance_id(entry.id), state)
                if (wanted is None or info.runtime_status == wanted) and (name is None or info.name == name):
                    items.append(info)
                    if len(items) == limit:
                        break
        return WorkflowPage(items=items, next_cursor=str(position) if position < len(owned) else None)

    async def history(self, owner: str, instance_id: str) -> WorkflowTimeline:
        record = await self._owned(owner, instance_id)
        events = await self.taskhub.history(record.instance_id)
        if events is None:
            raise NotFound("no such workflow (purged)")
        return build_timeline(record.instance_id, events)

    async def pause(self, owner: str, instance_id: str) -> WorkflowInfo:
        record = await self._owned(owner, instance_id)
        await self.series.pause(owner, record.id)
        return await self.get_workflow(owner, instance_id)

    async def resume(self, owner: str, instance_id: str) -> WorkflowInfo:
        record = await self._owned(owner, instance_id)
        await self.series.resume(owner, record.id)
        return await self.get_workflow(owner, instance_id)

    async def terminate(self, owner: str, instance_id: str) -> WorkflowInfo:
        record = await self._owned(owner, instance_id)
        await self.series.cancel(owner, record.id, reason="terminated")
        return await self.get_workflow(owner, instance_id)

    async def purge(self, owner: str, instance_id: str) -> None:
        """Delete a finished instance's history from the engine (the series record and its occurrence
        log stay). A running or paused instance must be terminated first."""
        record = await self._owned(owner, instance_id)
        state = await self._state(record)
        if state.runtime_status not in FINISHED:
            raise SeriesConflict(
                f"the workflow is {state.runtime_status.name.lower()}; only a finished one can be purged"
            )
        await self.series.workflows.purge_workflow(record.instance_id, recursive=True)
        log.info("purged workflow %s of %s", record.instance_id, owner)


def _decoded(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw
