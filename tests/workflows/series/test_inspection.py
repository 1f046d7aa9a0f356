"""Owner-scoped workflow inspection: an instance's state, the filtered list, the history as a readable
timeline (timers, events, pauses, activities, continue-as-new), and pause/resume/terminate/purge."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta

import pytest

from tests.workflows.series.stack import SeriesStack, spec, step
from todo_actors.errors import InvalidInput, NotFound
from workflows.errors import SeriesConflict
from workflows.inspection import WorkflowInspector
from workflows.series_client import SeriesService
from workflows.taskhub import TaskHub


@pytest.fixture
async def inspector(stack: SeriesStack, service: SeriesService) -> AsyncIterator[WorkflowInspector]:
    taskhub = TaskHub(stack.grpc_address)
    yield WorkflowInspector(service, taskhub)
    await taskhub.aclose()


def tomorrow_at(stack: SeriesStack, hour: int) -> datetime:
    return datetime.combine((stack.now() + timedelta(days=1)).date(), time(hour))


async def test_a_waiting_series_and_its_timeline(
    stack: SeriesStack, service: SeriesService, inspector: WorkflowInspector, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series, _ = await step(stack, service, owner, series, 1)
    iid = series.workflow.instance_id
    info = await inspector.get_workflow(owner, iid)
    assert info.name == "series" and info.runtime_status == "RUNNING" and info.series_id == series.id
    assert isinstance(info.input, dict) and info.input["series_id"] == series.id
    assert isinstance(info.custom_status, dict) and info.custom_status["phase"] == "waiting"
    assert info.created_at is not None and info.failure is None
    timeline = await inspector.history(owner, iid)
    assert timeline.generation is not None and timeline.generation >= 1
    kinds = [e.kind for e in timeline.events]
    assert kinds[:2] == ["started", "timer_created"]
    assert "continued as new" in timeline.events[0].detail
    assert series.next_occurrence_at is not None
    assert timeline.events[1].data["fire_at"] == series.next_occurrence_at.isoformat()

    # Paused (the workflow applies the pause and continues as new with no timer armed, then is suspended)
    # past its due, then terminated: no timer fires, and the series' end reason says who ended it.
    await service.pause(owner, series.id)
    stack.advance_to(series.next_occurrence_at + timedelta(minutes=5))
    await asyncio.sleep(0.3)  # a timer wrongly left armed would fire now
    terminated = await inspector.terminate(owner, iid)
    assert terminated.runtime_status == "TERMINATED"
    final = await inspector.history(owner, iid)
    kinds = [e.kind for e in final.events]
    assert kinds == ["started", "timer_created", "paused", "terminate_requested", "terminated"]
    assert "no timeout" in final.events[1].detail  # waiting for a control only
    ended = await service.get(owner, series.id)
    assert ended.status == "cancelled" and ended.ended_reason == "terminated"
    assert ended.occurrences_created == 1


async def timeline_has(inspector: WorkflowInspector, owner: str, iid: str, kind: str) -> bool:
    return any(e.kind == kind for e in (await inspector.history(owner, iid)).events)


async def test_activities_in_the_timeline_of_a_finished_series(
    stack: SeriesStack, service: SeriesService, inspector: WorkflowInspector, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=WEEKLY;COUNT=1", tomorrow_at(stack, 9)))
    series, _ = await step(stack, service, owner, series, 1)
    assert series.status == "completed"
    timeline = await inspector.history(owner, series.workflow.instance_id)
    kinds = [e.kind for e in timeline.events]
    assert kinds == ["started", "activity_scheduled", "activity_completed", "completed"]
    assert timeline.events[1].name == "series_record"
    info = await inspector.get_workflow(owner, series.workflow.instance_id)
    assert info.output == {"series_id": series.id, "ended": "completed", "occurrences_created": 1}


async def test_list_filters_and_pages(
    stack: SeriesStack, service: SeriesService, inspector: WorkflowInspector, owner: str, list_id: str
) -> None:
    made = [await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9))) for _ in range(3)]
    await service.pause(owner, made[1].id)
    everything = await inspector.list_workflows(owner)
    assert [w.series_id for w in everything.items] == [s.id for s in made] and everything.next_cursor is None
    suspended = await inspector.list_workflows(owner, status="suspended")
    assert [w.series_id for w in suspended.items] == [made[1].id]
    assert (await inspector.list_workflows(owner, name="other")).items == []
    first = await inspector.list_workflows(owner, limit=2)
    assert len(first.items) == 2 and first.next_cursor is not None
    rest = await inspector.list_workflows(owner, limit=2, cursor=first.next_cursor)
    assert [w.series_id for w in first.items + rest.items] == [s.id for s in made]
    with pytest.raises(InvalidInput):
        await inspector.list_workflows(owner, status="sleeping")
    assert (await inspector.list_workflows(f"nobody-{uuid.uuid4().hex[:6]}")).items == []


async def test_controls_purge_and_ownership(
    stack: SeriesStack, service: SeriesService, inspector: WorkflowInspector, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    iid = series.workflow.instance_id
    intruder = f"intruder-{uuid.uuid4().hex[:6]}"
    for call in (
        inspector.get_workflow,
        inspector.history,
        inspector.pause,
        inspector.terminate,
        inspector.purge,
    ):
        with pytest.raises(NotFound):
            await call(intruder, iid)
    with pytest.raises(NotFound):
        await inspector.get_workflow(owner, "not-a-series")
    assert (await inspector.pause(owner, iid)).runtime_status == "SUSPENDED"
    assert (await inspector.resume(owner, iid)).runtime_status == "RUNNING"
    with pytest.raises(SeriesConflict):
        await inspector.purge(owner, iid)
    await inspector.terminate(owner, iid)
    await inspector.purge(owner, iid)
    with pytest.raises(NotFound):
        await inspector.get_workflow(owner, iid)
    shown = await service.get(owner, series.id)  # the series and its record outlive the purge
    assert shown.status == "cancelled" and shown.workflow.runtime_status is None
