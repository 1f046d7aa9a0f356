"""Series running for real on the sidecar, the worker and the list actors, with the manual clock:
month ends over a year, DST in Europe/Rome, and COUNT completing the workflow."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dapr.ext.workflow import WorkflowStatus

from tests.workflows.series.stack import SeriesStack, spec, step
from todo_actors.model import TodoItem
from workflows.series_client import SeriesService

ROME = ZoneInfo("Europe/Rome")


def last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 6) % 7)


async def test_monthly_on_the_31st_over_a_year(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    start = stack.now() + timedelta(days=1)
    dtstart = datetime.combine(start.date(), time(10))
    series = await service.create(owner, spec(list_id, "FREQ=MONTHLY;BYMONTHDAY=31", dtstart))
    assert series.status == "running" and series.workflow.runtime_status in ("RUNNING", "PENDING")
    assert all(u.local.day == 31 for u in series.upcoming) and len(series.upcoming) == 5
    items: list[TodoItem] = []
    year_later = start + timedelta(days=366)
    while series.next_occurrence_at is not None and series.next_occurrence_at < year_later:
        series, items = await step(stack, service, owner, series, len(items) + 1)
    assert len(items) == 7  # the months with 31 days
    dues = [i.due for i in items]
    assert all(d is not None and d.datetime is not None and d.datetime.day == 31 for d in dues)
    assert sorted(d.datetime.month for d in dues if d is not None and d.datetime is not None) == [
        1,
        3,
        5,
        7,
        8,
        10,
        12,
    ]
    assert [i.occurrence for i in items] == list(range(7))
    assert all(i.series_id == series.id and i.title == "task" for i in items)
    series = await service.get(owner, series.id)
    assert series.occurrences_created == 7 and series.occurrences_missed == 0
    log = await service.occurrences(owner, series.id)
    assert [e.index for e in log.items] == list(range(7))
    assert all(e.status == "created" and e.item_id and e.notified_at for e in log.items)
    assert {e.item_id for e in log.items} == {i.id for i in items}
    first = await service.occurrences(owner, series.id, limit=4)
    rest = await service.occurrences(owner, series.id, limit=4, cursor=first.next_cursor)
    assert [e.index for e in first.items + rest.items] == list(range(7))
    assert rest.next_cursor is None and rest.upcoming == [] and len(first.upcoming) == 5
    due = stack.events.of("occurrence.due", lambda e: e["data"]["series_id"] == series.id)
    assert sorted({e["id"] for e in due}) == sorted(f"{series.id}:{n}" for n in range(7))


async def test_daily_at_nine_in_rome_across_both_dst_changes(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    year = stack.now().year + 1
    spring, autumn = last_sunday(year, 3), last_sunday(year, 10)
    stack.advance_to(datetime.combine(spring - timedelta(days=3), time(12), UTC))
    dtstart = datetime.combine(spring - timedelta(days=2), time(9))
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", dtstart, "Europe/Rome"))
    items: list[TodoItem] = []
    for _ in range(4):  # Friday .. Monday around the spring change
        series, items = await step(stack, service, owner, series, len(items) + 1)
    # Jump to the autumn change: the occurrences missed meanwhile are skipped (catch_up="skip").
    stack.advance_to(datetime.combine(autumn - timedelta(days=2), time(8, 30), ROME).astimezone(UTC))
    series = await stack.settled(
        service, owner, series.id, (autumn - timedelta(days=2) - dtstart.date()).days
    )
    assert series.next_occurrence_at == datetime.combine(autumn - timedelta(days=2), time(9), ROME)
    for _ in range(4):
        series, items = await step(stack, service, owner, series, len(items) + 1)
    days = [spring + timedelta(days=d) for d in (-2, -1, 0, 1)] + [
        autumn + timedelta(days=d) for d in (-2, -1, 0, 1)
    ]
    assert [i.due.datetime for i in items if i.due] == [datetime.combine(d, time(9)) for d in days]
    assert all(i.due is not None and i.due.tz == "Europe/Rome" for i in items)
    # 09:00 in Rome is 08:00Z in winter (CET) and 07:00Z in summer (CEST); the items were created then.
    created_hours = [i.created_at.astimezone(UTC).hour for i in items]
    assert created_hours == [8, 8, 7, 7, 7, 7, 8, 8]
    series = await service.get(owner, series.id)
    assert series.occurrences_created == 8 and series.occurrences_missed > 200


async def test_weekly_with_count_completes_the_workflow(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    dtstart = datetime.combine((stack.now() + timedelta(days=1)).date(), time(7, 30))
    series = await service.create(owner, spec(list_id, "FREQ=WEEKLY;COUNT=3", dtstart))
    assert [u.index for u in series.upcoming] == [0, 1, 2]
    items: list[TodoItem] = []
    for _ in range(3):
        series, items = await step(stack, service, owner, series, len(items) + 1)
    assert series.status == "completed" and series.ended_reason == "completed"
    assert series.next_occurrence_at is None and series.upcoming == []
    assert series.workflow.runtime_status == WorkflowStatus.COMPLETED.name
    assert [i.due.datetime for i in items if i.due] == [dtstart + timedelta(weeks=n) for n in range(3)]
    state = await service.workflows.get_workflow_state(series.workflow.instance_id)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    stack.advance_to(stack.now() + timedelta(weeks=2))
    assert len(await stack.items(list_id, series.id)) == 3
