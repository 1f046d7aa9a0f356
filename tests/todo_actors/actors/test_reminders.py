"""Item reminders as real actor reminders on the manual clock: they fire once into `reminders`, move with
the due, go away on completion and deletion, and a duplicate or stale firing is harmless."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Any

import httpx

from tests.todo_actors.actors.conftest import Stack, new_id
from todo_actors.commands import AddTodo, CompleteTodo, CreateList, DeleteTodo, ReopenTodo, UpdateTodo
from todo_actors.due import Due, Reminder
from todo_actors.interface import LIST_ACTOR_TYPE
from todo_actors.model import TodoItem
from todo_actors.reminders import notification_id, read_reminder_payload, reminder_payload

HOUR = 3600.0


def _now(stack: Stack) -> dt.datetime:
    return dt.datetime.fromtimestamp(stack.clock.now(), dt.UTC)


def _due_in(stack: Stack, seconds: float) -> tuple[Due, dt.datetime]:
    at = (_now(stack) + dt.timedelta(seconds=seconds)).replace(second=0, microsecond=0)
    return Due(datetime=at.replace(tzinfo=None), tz="UTC"), at


async def _add(stack: Stack, **fields: Any) -> tuple[str, TodoItem]:
    list_id = new_id()
    proxy = stack.list_proxy(list_id)
    (await proxy.CreateList(CreateList(owner="alice", title="r"))).unwrap()
    item = (await proxy.AddTodo(AddTodo(caller="alice", title="pay rent", **fields))).unwrap().item
    assert item is not None
    return list_id, item


def _fire_at(reminder: dict[str, Any]) -> dt.datetime | None:
    data = reminder.get("data")
    assert isinstance(data, str)
    return read_reminder_payload(base64.b64decode(data))


async def test_due_and_relative_reminder_fire_once_each(stack: Stack) -> None:
    due, due_at = _due_in(stack, 2 * HOUR)
    list_id, item = await _add(stack, due=due, reminders=(Reminder(before_due="PT30M"),))
    due_name, rem_name = f"due:{item.id}", f"rem:{item.id}:0"
    assert _fire_at(await stack.reminder(list_id, due_name)) == due_at
    assert _fire_at(await stack.reminder(list_id, rem_name)) == due_at - dt.timedelta(minutes=30)

    await stack.advance((due_at - _now(stack)).total_seconds() - 31 * 60)
    await asyncio.sleep(0.3)
    assert stack.events.for_list("reminders", list_id) == []  # never early

    await stack.advance(2 * 60)
    (first,) = await stack.wait_events("reminders", list_id, 1)
    await stack.advance(30 * 60)
    events = await stack.wait_events("reminders", list_id, 2)
    await asyncio.sleep(0.3)
    assert len(stack.events.for_list("reminders", list_id)) == 2
    assert first == events[0]

    expected = [
        (rem_name, "reminder", due_at - dt.timedelta(minutes=30)),
        (due_name, "due", due_at),
    ]
    for event, (name, kind, fire_at) in zip(events, expected, strict=True):
        data = event["data"]
        assert event["type"] == "reminder.fired" and event["topic"] == "reminders"
        assert event["id"] == data["id"] == notification_id(list_id, item.id, name, fire_at)
        assert (data["list_id"], data["owner"], data["item_id"], data["title"]) == (
            list_id,
            "alice",
            item.id,
            "pay rent",
        )
        assert (data["reminder"], data["kind"]) == (name, kind)
        assert dt.datetime.fromisoformat(data["fire_at"]) == fire_at
        assert data["due"] == {"datetime": due.datetime.isoformat() if due.datetime else None, "tz": "UTC"}
    # One-shot reminders are gone once fired.
    assert await stack.reminder(list_id, due_name) == {}


async def test_a_repeated_firing_repeats_the_event_id_and_a_stale_one_is_dropped(stack: Stack) -> None:
    due, due_at = _due_in(stack, 5 * HOUR)
    list_id, item = await _add(stack, due=due)
    name = f"due:{item.id}"
    url = f"{stack.base}/actors/{LIST_ACTOR_TYPE}/{list_id}/reminders/{name}"

    async def fire_now(fire_at: dt.datetime) -> None:
        data = base64.b64encode(reminder_payload(fire_at)).decode()
        async with httpx.AsyncClient() as http:
            r = await http.put(url, json={"dueTime": "0s", "data": data})
            assert r.status_code == 204, r.text

    # At-least-once delivery: the same reminder firing twice (here: forced early) gives one event id.
    await fire_now(due_at)
    (first,) = await stack.wait_events("reminders", list_id, 1)
    await fire_now(due_at)
    first_again, second = await stack.wait_events("reminders", list_id, 2)
    assert first_again == first and second["id"] == first["id"]

    # A firing for an instant the item no longer has (an old registration) publishes nothing.
    await fire_now(due_at - dt.timedelta(hours=1))
    await asyncio.sleep(0.5)
    assert len(stack.events.for_list("reminders", list_id)) == 2


async def test_editing_the_due_rearms_and_clearing_reminders_removes_them(stack: Stack) -> None:
    due, due_at = _due_in(stack, 3 * HOUR)
    absolute = due_at - dt.timedelta(hours=1)
    list_id, item = await _add(stack, due=due, reminders=(Reminder(at=absolute),))
    proxy = stack.list_proxy(list_id)
    new_due, new_at = _due_in(stack, 6 * HOUR)
    (await proxy.UpdateTodo(UpdateTodo(caller="alice", id=item.id, due=new_due, reminders=None))).unwrap()
    assert _fire_at(await stack.reminder(list_id, f"due:{item.id}")) == new_at
    assert await stack.reminder(list_id, f"rem:{item.id}:0") == {}

    await stack.advance((due_at - _now(stack)).total_seconds() + 60)
    await asyncio.sleep(0.5)
    assert stack.events.for_list("reminders", list_id) == []
    await stack.advance((new_at - _now(stack)).total_seconds() + 1)
    (event,) = await stack.wait_events("reminders", list_id, 1)
    assert dt.datetime.fromisoformat(event["data"]["fire_at"]) == new_at

    # Clearing the due removes its reminder.
    later, _ = _due_in(stack, 2 * HOUR)
    (await proxy.UpdateTodo(UpdateTodo(caller="alice", id=item.id, due=later))).unwrap()
    assert await stack.reminder(list_id, f"due:{item.id}") != {}
    (await proxy.UpdateTodo(UpdateTodo(caller="alice", id=item.id, due=None))).unwrap()
    assert await stack.reminder(list_id, f"due:{item.id}") == {}


async def test_completing_and_deleting_remove_reminders(stack: Stack) -> None:
    due, due_at = _due_in(stack, 4 * HOUR)
    list_id, item = await _add(stack, due=due, reminders=(Reminder(before_due="PT1H"),))
    proxy = stack.list_proxy(list_id)
    names = (f"due:{item.id}", f"rem:{item.id}:0")

    (await proxy.CompleteTodo(CompleteTodo(caller="alice", id=item.id))).unwrap()
    for name in names:
        assert await stack.reminder(list_id, name) == {}
    (await proxy.ReopenTodo(ReopenTodo(caller="alice", id=item.id))).unwrap()
    for name in names:
        assert await stack.reminder(list_id, name) != {}
    (await proxy.DeleteTodo(DeleteTodo(caller="alice", id=item.id))).unwrap()
    for name in names:
        assert await stack.reminder(list_id, name) == {}

    await stack.advance((due_at - _now(stack)).total_seconds() + 60)
    await asyncio.sleep(0.5)
    assert stack.events.for_list("reminders", list_id) == []
