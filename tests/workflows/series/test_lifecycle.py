"""The series lifecycle on the real stack, with the dev clock moved in steps no larger than the gap
between two due instants: template reminders fire (items are created ahead of their due), a pause never
lets an occurrence that came due while paused through (under every catch-up policy), every control answers
with the state after the change, ending reasons, and the step history across continue-as-new runs."""

from __future__ import annotations

from datetime import UTC, time, timedelta
from typing import Any

import pytest
from dateutil.rrule import FR, WEEKLY, rrule

from tests.workflows.series.stack import (
    SeriesStack,
    no_new_items,
    spec,
    step,
    tomorrow_at,
    wait_until,
)
from todo_actors.commands import DeleteList
from todo_actors.due import Due
from workflows import cycle
from workflows.activities import SeriesActivities
from workflows.models import RecreateInput, SeriesSnapshot, SeriesTemplate, TimerStep
from workflows.series_client import SeriesService
from workflows.views import SeriesPatch

STEPS = [
    ("timer", "set"),
    ("timer", "fired"),
    ("notify", "scheduled"),
    ("notify", "completed"),
    ("recreate", "scheduled"),
    ("recreate", "completed"),
]
"""The steps of an occurrence created after its timer fired, in order."""


def fired(stack: SeriesStack, item_id: str, kind: str) -> list[dict[str, Any]]:
    return stack.events.of(
        "reminder.fired", lambda e: e["data"]["item_id"] == item_id and e["data"]["kind"] == kind
    )


async def test_template_reminders_fire_for_every_occurrence(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    template = {"title": "stand-up", "reminders": [{"before_due": "PT15M"}, {"before_due": "PT5M"}]}
    series = await service.create(
        owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9), template=template)
    )
    lead = timedelta(minutes=15) + cycle.LEAD_MARGIN
    for n in range(3):
        series = await stack.settled(service, owner, series.id, n)
        due = series.next_occurrence_at
        assert due is not None and series.next_occurrence_index == n
        assert due.time() == time(9, 0)  # the occurrence keeps its due; only its creation is early
        stack.advance_to(due - lead)
        items = await stack.wait_items(list_id, series.id, n + 1)
        item = items[n]
        assert item.occurrence == n
        assert item.due == Due.model_validate({"datetime": due.replace(tzinfo=None).isoformat(), "tz": "UTC"})
        assert fired(stack, item.id, "reminder") == []
        stack.advance_to(due - timedelta(minutes=15))
        await wait_until(lambda i=item.id: len(fired(stack, i, "reminder")) == 1)  # type: ignore[misc]
        stack.advance_to(due - timedelta(minutes=5))
        await wait_until(lambda i=item.id: len(fired(stack, i, "reminder")) == 2)  # type: ignore[misc]
        stack.advance_to(due)
        await wait_until(lambda i=item.id: len(fired(stack, i, "due")) == 1)  # type: ignore[misc]
    log = await service.occurrences(owner, series.id)
    assert [(e.index, e.status) for e in log.items] == [(0, "created"), (1, "created"), (2, "created")]


@pytest.mark.parametrize("catch_up", ["skip", "latest", "all"])
async def test_what_came_due_while_paused_is_never_created(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str, catch_up: str
) -> None:
    series = await service.create(
        owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9), catch_up=catch_up)
    )
    series, _ = await step(stack, service, owner, series, 1)
    assert series.next_occurrence_at is not None and series.next_occurrence_index == 1
    paused = await service.pause(owner, series.id)
    assert paused.status == "paused" and paused.next_occurrence_at is None
    first = series.next_occurrence_at
    stack.advance_to(first + timedelta(seconds=1))  # occurrence 1 comes due while paused
    await no_new_items(stack, list_id, series.id, 1)
    stack.advance_to(first + timedelta(days=1, minutes=1))  # and occurrence 2; resume a minute later
    resumed = await service.resume(owner, series.id)
    # The answer already shows where the series goes on: the first occurrence after the resume.
    assert resumed.status == "running" and resumed.workflow.runtime_status == "RUNNING"
    assert resumed.next_occurrence_index == 3 and resumed.next_occurrence_at == first + timedelta(days=2)
    assert resumed.occurrences_missed == 2 and resumed.occurrences_created == 1
    await no_new_items(stack, list_id, series.id, 1)
    _, items = await step(stack, service, owner, resumed, 2)
    assert [i.occurrence for i in items] == [0, 3]


async def test_pause_keeps_an_item_made_ahead_and_resume_creates_what_is_ahead(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    """With a lead, what matters is the due: an occurrence due after the resume whose creation time passed
    during the pause is created on resume (its reminder is still ahead)."""
    template = {"title": "t", "reminders": [{"before_due": "PT2H"}]}
    series = await service.create(
        owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9), template=template)
    )
    series = await stack.settled(service, owner, series.id, 0)
    assert series.next_occurrence_at is not None
    due = series.next_occurrence_at
    await service.pause(owner, series.id)
    stack.advance_to(due - timedelta(hours=2, seconds=30))  # its creation time (2 h 1 min ahead) passes
    await no_new_items(stack, list_id, series.id, 0)
    resumed = await service.resume(owner, series.id)
    assert resumed.occurrences_missed == 0 and resumed.next_occurrence_index == 1
    items = await stack.wait_items(list_id, series.id, 1)
    assert [i.occurrence for i in items] == [0]
    stack.advance_to(due - timedelta(hours=2))
    await wait_until(lambda: len(fired(stack, items[0].id, "reminder")) == 1)


async def test_controls_answer_with_the_state_after_the_change(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series = await stack.settled(service, owner, series.id, 0)
    edited = await service.edit(owner, series.id, SeriesPatch(rule="FREQ=WEEKLY;BYDAY=FR"))
    now = stack.now().replace(tzinfo=None)
    fridays = rrule(WEEKLY, byweekday=FR, dtstart=tomorrow_at(stack, 9), count=3)
    expected = [d.replace(tzinfo=UTC) for d in fridays if d > now]
    assert edited.rule == "FREQ=WEEKLY;BYDAY=FR"
    assert edited.next_occurrence_at == expected[0]
    assert [u.at for u in edited.upcoming[:2]] == expected[:2]

    skipped = await service.skip_next(owner, series.id)
    assert skipped.next_occurrence_at == expected[1] and skipped.occurrences_skipped == 1

    paused = await service.pause(owner, series.id)
    assert paused.status == "paused" and paused.next_occurrence_at is None and paused.upcoming == []
    stack.advance_to(expected[1] - timedelta(hours=1))  # before the next Friday: nothing is dropped
    resumed = await service.resume(owner, series.id)
    assert resumed.status == "running" and resumed.next_occurrence_at == expected[1]
    assert resumed.occurrences_missed == 0

    cancelled = await service.cancel(owner, series.id)
    assert cancelled.status == "cancelled" and cancelled.ended_reason == "cancelled"
    assert cancelled.next_occurrence_at is None


async def test_deleting_the_list_ends_its_series_at_once(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    running = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    paused = await service.create(owner, spec(list_id, "FREQ=WEEKLY", tomorrow_at(stack, 10)))
    await stack.settled(service, owner, running.id, 0)
    await stack.settled(service, owner, paused.id, 0)
    await service.pause(owner, paused.id)
    (await stack.list_actor(list_id).delete_list(DeleteList(caller=owner))).unwrap()
    assert await service.end_for_list(list_id) == 2
    for series_id in (running.id, paused.id):
        ended = await service.get(owner, series_id)
        assert ended.status == "completed" and ended.ended_reason == "list_deleted"
        assert ended.workflow.runtime_status == "COMPLETED" and ended.next_occurrence_at is None
    assert await service.end_for_list(list_id) == 0  # already ended


async def test_history_spans_every_run(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series = await stack.settled(service, owner, series.id, 0)
    dues = []
    for n in range(3):
        assert series.next_occurrence_at is not None
        dues.append(series.next_occurrence_at)
        series, _ = await step(stack, service, owner, series, n + 1)
    history = await service.history(owner, series.id)
    assert [o.index for o in history.items] == [0, 1, 2] and history.next_cursor is None
    generations = [o.generation for o in history.items]
    assert all(g is not None for g in generations) and generations == sorted(set(generations))  # type: ignore[type-var]
    for occurrence, due in zip(history.items, dues, strict=True):
        steps = [(s.kind, s.event) for s in occurrence.steps]
        assert steps == STEPS
        timer_fired = occurrence.steps[1].at
        assert occurrence.scheduled_at == due and occurrence.outcome == "created"
        assert due <= timer_fired < due + timedelta(seconds=5)
        assert occurrence.steps[0].at < due and f"for {due.isoformat()}" in occurrence.steps[0].detail
    page = await service.history(owner, series.id, limit=2)
    assert [o.index for o in page.items] == [0, 1] and page.next_cursor == "2"
    rest = await service.history(owner, series.id, cursor=page.next_cursor, limit=2)
    assert [o.index for o in rest.items] == [2] and rest.next_cursor is None


async def test_a_replayed_recreate_adds_no_step(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    """A worker that dies after an activity ran, before the engine recorded its result, runs it again:
    the item and the recorded steps are keyed by occurrence, so the history stays the same."""
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    series = await stack.settled(service, owner, series.id, 0)
    await service.pause(owner, series.id)  # the workflow itself stays out of the way
    assert series.upcoming
    first, now = series.upcoming[0], stack.now()
    record = await service.owned(owner, series.id)
    template = SeriesTemplate(title="task")
    payload = RecreateInput(
        series_id=series.id,
        owner=owner,
        list_id=list_id,
        index=0,
        key=cycle.entry_key(series.id, 0),
        scheduled_at=first.at,
        local=first.local,
        tz="UTC",
        template=template,
        notified_at=now,
        snapshot=SeriesSnapshot(
            generation=record.generation,
            revision=0,
            rule="FREQ=DAILY",
            template=template,
            created=1,
            missed=0,
            skipped=0,
            last_index=0,
            last_at=first.at,
        ),
        generation=record.generation,
        timer=TimerStep(set_at=now - timedelta(hours=1), fires_at=now, fired_at=now),
        notify_scheduled_at=now,
    )
    activities = SeriesActivities(stack.settings, dapr_address=stack.grpc_address)
    try:
        once = await activities.recreate(payload)
        twice = await activities.recreate(payload)
    finally:
        await activities.aclose()
    assert once == twice and once.outcome == "created"
    assert len(await stack.items(list_id, series.id)) == 1
    history = await service.history(owner, series.id)
    assert [o.index for o in history.items] == [0]
    assert [(s.kind, s.event) for s in history.items[0].steps] == STEPS


async def test_editing_a_paused_series(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", tomorrow_at(stack, 9)))
    await stack.settled(service, owner, series.id, 0)
    await service.pause(owner, series.id)
    edited = await service.edit(owner, series.id, SeriesPatch(rule="FREQ=DAILY;INTERVAL=2"))
    assert edited.rule == "FREQ=DAILY;INTERVAL=2"
    assert edited.status == "paused" and edited.workflow.runtime_status == "SUSPENDED"
    resumed = await service.resume(owner, series.id)
    assert resumed.upcoming[1].at - resumed.upcoming[0].at == timedelta(days=2)
