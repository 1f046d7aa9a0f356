"""Series controls on the real stack: pause and resume, skip next, edit rule and template, cancel, the
completion anchor (through the item's `completed` task event), ownership and validation."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

import pytest

from tests.workflows.series.stack import (
    SeriesStack,
    no_new_items,
    spec,
    step,
    tomorrow_at,
    wait_until,
)
from todo_actors.commands import DeleteList
from todo_actors.errors import InvalidInput, LimitExceeded, NotFound
from workflows.config import SeriesSettings
from workflows.errors import SeriesConflict
from workflows.models import TemplatePatch
from workflows.series_client import SeriesService
from workflows.views import SeriesPatch


async def test_pause_then_resume(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series, _ = await step(stack, service, owner, series, 1)
    paused = await service.pause(owner, series.id)
    # The workflow applied the pause (no timer armed), then it was suspended.
    assert paused.status == "paused" and paused.workflow.runtime_status == "SUSPENDED"
    assert paused.next_occurrence_at is None and paused.upcoming == []
    assert (await service.pause(owner, series.id)).status == "paused"  # pausing twice is fine
    assert series.next_occurrence_at is not None
    stack.advance_to(series.next_occurrence_at + timedelta(days=1, hours=2))  # occurrences 1 and 2 fall due
    await no_new_items(stack, list_id, series.id, 1)
    resumed = await service.resume(owner, series.id)
    assert resumed.status == "running"
    # catch_up="skip": what fell due while paused (hours ago) is missed, not created.
    series = await stack.settled(service, owner, series.id, 3)
    assert series.next_occurrence_index == 3 and series.occurrences_missed == 2
    series, items = await step(stack, service, owner, series, 2)
    assert [i.occurrence for i in items] == [0, 3]


async def test_skip_next(stack: SeriesStack, service: SeriesService, owner: str, list_id: str) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series = await stack.settled(service, owner, series.id, 0)
    skipped = await service.skip_next(owner, series.id)
    assert skipped.next_occurrence_index == 1 and skipped.occurrences_skipped == 1
    stack.advance_to(skipped.upcoming[0].at - timedelta(days=1))  # occurrence 0's time passes
    await no_new_items(stack, list_id, series.id, 0)
    _, items = await step(stack, service, owner, skipped, 1)
    assert [i.occurrence for i in items] == [1]
    log = await service.occurrences(owner, series.id)
    assert [(e.index, e.status) for e in log.items] == [(0, "skipped"), (1, "created")]
    assert log.items[0].skipped_at is not None and log.items[0].item_id is None


async def test_edit_rule_and_template(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    dtstart = tomorrow_at(stack, 9)
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", dtstart))
    series, _ = await step(stack, service, owner, series, 1)
    patch = SeriesPatch(rule="FREQ=DAILY;INTERVAL=3;COUNT=2", template=TemplatePatch(title="every third day"))
    edited = await service.edit(owner, series.id, patch)
    assert edited.rule == "FREQ=DAILY;INTERVAL=3;COUNT=2" and edited.template.title == "every third day"
    await wait_until(lambda: revision(service, owner, series.id, 1))
    await wait_until(lambda: next_at(service, owner, series.id, dtstart + timedelta(days=3)))
    series = await service.get(owner, series.id)
    series, items = await step(stack, service, owner, series, 2)
    series, items = await step(stack, service, owner, series, 3)
    assert [(i.occurrence, i.title) for i in items] == [
        (0, "task"),
        (1, "every third day"),
        (2, "every third day"),
    ]
    assert [i.due.datetime for i in items if i.due] == [dtstart + timedelta(days=d) for d in (0, 3, 6)]
    assert series.status == "completed"  # COUNT=2 counted from the edit
    record = await service.owned(owner, series.id)
    assert record.rule == "FREQ=DAILY;INTERVAL=3;COUNT=2" and record.revision == 1
    with pytest.raises(SeriesConflict):
        await service.edit(owner, series.id, SeriesPatch(template=TemplatePatch(title="late")))


async def next_at(service: SeriesService, owner: str, series_id: str, local: datetime) -> bool:
    series = await service.get(owner, series_id)
    return series.next_occurrence_at is not None and series.next_occurrence_at.replace(tzinfo=None) == local


async def revision(service: SeriesService, owner: str, series_id: str, wanted: int) -> bool:
    return (await service.owned(owner, series_id)).revision == wanted


async def test_cancel_keeps_created_items(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series, _ = await step(stack, service, owner, series, 1)
    cancelled = await service.cancel(owner, series.id)
    assert cancelled.status == "cancelled" and cancelled.workflow.runtime_status == "TERMINATED"
    assert (await service.cancel(owner, series.id)).status == "cancelled"
    stack.advance_to(stack.now() + timedelta(days=3))
    await no_new_items(stack, list_id, series.id, 1)
    for control in (service.pause, service.resume, service.skip_next):
        with pytest.raises(SeriesConflict):
            await control(owner, series.id)


async def test_anchor_completion(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    dtstart = tomorrow_at(stack, 9)
    series = await service.create(owner, spec(list_id, "FREQ=DAILY;INTERVAL=2", dtstart, anchor="completion"))
    series, items = await step(stack, service, owner, series, 1)
    assert series.awaiting_completion_of == 0 and series.next_occurrence_at is None
    with pytest.raises(SeriesConflict, match="completed"):
        await service.skip_next(owner, series.id)
    stack.advance_to(
        datetime.combine(dtstart.date() + timedelta(days=3), time(15)).replace(tzinfo=stack.now().tzinfo)
    )
    await no_new_items(stack, list_id, series.id, 1)
    done = await stack.complete(list_id, items[0].id)  # the task event reaches the series
    await wait_until(lambda: service_next(service, owner, series.id))
    series = await service.get(owner, series.id)
    assert series.next_occurrence_index == 1 and series.next_occurrence_at is not None
    assert series.next_occurrence_at.replace(tzinfo=None) == dtstart + timedelta(days=5)  # completion day + 2
    _, items = await step(stack, service, owner, series, 2)
    assert [i.occurrence for i in items] == [0, 1]
    log = await service.occurrences(owner, series.id)
    assert log.items[0].completed_at == done.completed_at


async def service_next(service: SeriesService, owner: str, series_id: str) -> bool:
    return (await service.get(owner, series_id)).next_occurrence_index == 1


async def test_other_users_see_nothing(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=WEEKLY", tomorrow_at(stack, 9)))
    intruder = f"other-{uuid.uuid4().hex[:6]}"
    for call in (
        service.get,
        service.pause,
        service.resume,
        service.skip_next,
        service.cancel,
        service.occurrences,
    ):
        with pytest.raises(NotFound):
            await call(intruder, series.id)
    with pytest.raises(NotFound):
        await service.edit(intruder, series.id, SeriesPatch(rule="FREQ=DAILY"))
    assert (await service.list(intruder)).items == []
    with pytest.raises(NotFound):  # a series on someone else's list
        await service.create(intruder, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    assert [s.id for s in (await service.list(owner)).items] == [series.id]


async def test_validation(stack: SeriesStack, service: SeriesService, owner: str, list_id: str) -> None:
    with pytest.raises(InvalidInput, match="minimum interval"):
        await service.create(owner, spec(list_id, "FREQ=MINUTELY;INTERVAL=5", tomorrow_at(stack, 9)))
    with pytest.raises(InvalidInput, match="no occurrence after now"):
        await service.create(
            owner, spec(list_id, "FREQ=DAILY;COUNT=2", tomorrow_at(stack, 9) - timedelta(days=30))
        )
    with pytest.raises(InvalidInput):
        await service.create(owner, spec(list_id, "FREQ=DAILY;BYHOUR=9", tomorrow_at(stack, 9)))
    with pytest.raises(InvalidInput, match="never"):
        await service.create(owner, spec(list_id, "FREQ=YEARLY;BYMONTH=2", datetime(2027, 1, 30, 9)))
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    with pytest.raises(InvalidInput):
        await service.edit(owner, series.id, SeriesPatch(rule="FREQ=HOURLY;INTERVAL=0"))
    with pytest.raises(InvalidInput, match="nothing to change"):
        await service.edit(owner, series.id, SeriesPatch())


async def test_series_per_user_limit(stack: SeriesStack, owner: str, list_id: str) -> None:
    async with stack.service() as service:
        service.settings = SeriesSettings(series_per_owner=1)
        first = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
        with pytest.raises(LimitExceeded):
            await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
        again = await service.create(
            owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)), series_id=first.id
        )
        assert again.id == first.id  # a retried create is not a second series
        await service.cancel(owner, first.id)


async def test_deleting_the_list_ends_the_series(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series, _ = await step(stack, service, owner, series, 1)
    (await stack.list_actor(list_id).delete_list(DeleteList(caller=owner))).unwrap()
    assert series.next_occurrence_at is not None
    stack.advance_to(series.next_occurrence_at)
    series = await stack.settled(service, owner, series.id, 99)
    assert series.status == "completed" and series.ended_reason == "list_deleted"
    log = await service.occurrences(owner, series.id)
    assert [(e.index, e.status) for e in log.items] == [(0, "created"), (1, "failed")]
    assert log.items[1].error == "the list no longer exists"
