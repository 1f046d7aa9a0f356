"""Task events leave through the outbox: once per change with the domain event id, effects left behind by
a crash are applied on activation, failed ones are retried, and done ones leave the stored outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from tests.todo_actors.actors.conftest import Stack, eventually, new_id
from todo_actors.commands import (
    AddTodo,
    CompleteTodo,
    CreateList,
    DeleteList,
    DeleteTodo,
    ReopenTodo,
    UpdateTodo,
)
from todo_actors.due import Due
from todo_actors.interface import LIST_ACTOR_TYPE, GetList
from todo_actors.outbox import OUTBOX_KEY, RETRY_REMINDER, OutboxEvent, OutboxState, ReminderOp


async def _new_list(stack: Stack) -> str:
    list_id = new_id()
    (await stack.list_proxy(list_id).CreateList(CreateList(owner="alice", title="ev"))).unwrap()
    return list_id


async def test_each_change_publishes_one_event_of_its_type(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    item = (await proxy.AddTodo(AddTodo(caller="alice", title="5m"))).unwrap().item
    assert item is not None
    sub = (await proxy.AddTodo(AddTodo(caller="alice", title="sub", parent_id=item.id))).unwrap().item
    assert sub is not None
    (await proxy.UpdateTodo(UpdateTodo(caller="alice", id=item.id, notes="n"))).unwrap()
    (
        await proxy.UpdateTodo(UpdateTodo(caller="alice", id=item.id, notes="n"))
    ).unwrap()  # no change: no event
    (await proxy.CompleteTodo(CompleteTodo(caller="alice", id=item.id))).unwrap()
    (await proxy.CompleteTodo(CompleteTodo(caller="alice", id=item.id))).unwrap()  # no-op: no event
    (await proxy.ReopenTodo(ReopenTodo(caller="alice", id=item.id))).unwrap()
    (await proxy.DeleteTodo(DeleteTodo(caller="alice", id=item.id))).unwrap()  # takes the subtask along

    events = await stack.wait_events("task-events", list_id, 7)
    await asyncio.sleep(0.3)
    events = stack.events.for_list("task-events", list_id)
    assert [(e["type"], e["data"]["item_id"]) for e in events] == [
        ("task.created", item.id),
        ("task.created", sub.id),
        ("task.updated", item.id),
        ("task.completed", item.id),
        ("task.reopened", item.id),
        ("task.deleted", item.id),
        ("task.deleted", sub.id),
    ]
    for event in events:
        assert event["id"] == event["data"]["id"] and event["data"]["owner"] == "alice"
        assert event["type"] == f"task.{event['data']['type']}"
        assert event["datacontenttype"] == "application/json" and event["topic"] == "task-events"
    assert len({e["id"] for e in events}) == 7
    assert events[0]["data"]["item"]["title"] == "5m"
    assert [e["data"]["list_version"] for e in events] == [2, 3, 4, 5, 6, 7, 7]


async def test_deleting_a_list_publishes_a_deletion_per_item(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    for n in range(3):
        (await proxy.AddTodo(AddTodo(caller="alice", title=f"t{n}"))).unwrap()
    (await proxy.DeleteList(DeleteList(caller="alice"))).unwrap()
    events = await stack.wait_events("task-events", list_id, 6)
    assert [e["type"] for e in events] == ["task.created"] * 3 + ["task.deleted"] * 3


async def test_done_effects_leave_the_stored_outbox(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    (await proxy.AddTodo(AddTodo(caller="alice", title="x"))).unwrap()
    await stack.wait_events("task-events", list_id, 1)
    # Task events only: saved with the change, published, and left for the next change to overwrite...
    assert (await stack.state(list_id, OUTBOX_KEY))["events"]
    (await proxy.AddTodo(AddTodo(caller="alice", title="x2"))).unwrap()
    second = (await stack.wait_events("task-events", list_id, 2))[1]
    assert [e["id"] for e in (await stack.state(list_id, OUTBOX_KEY))["events"]] == [second["id"]]
    # ...or removed when the actor is deactivated, so the next activation does not publish them again.
    stack.deactivate(LIST_ACTOR_TYPE, list_id)
    await eventually(lambda: _absent(stack, list_id))
    (await proxy.AddTodo(AddTodo(caller="alice", title="x3"))).unwrap()
    events = await stack.wait_events("task-events", list_id, 3)
    assert [e["data"]["item"]["title"] for e in events] == ["x", "x2", "x3"]
    # With reminder registrations: removed within the turn (a replay would notify again).
    (await proxy.AddTodo(AddTodo(caller="alice", title="y", due=Due(date=dt.date(2031, 1, 1))))).unwrap()
    assert await stack.state(list_id, OUTBOX_KEY) is None


async def test_effects_left_by_a_crash_are_applied_on_activation(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    item = (
        (await proxy.AddTodo(AddTodo(caller="alice", title="x", due=Due(date=dt.date(2031, 1, 1)))))
        .unwrap()
        .item
    )
    assert item is not None
    await stack.wait_events("task-events", list_id, 1)
    # What a crash right after the save would leave: effects stored but never applied.
    fire_at = dt.datetime(2031, 6, 1, 9, tzinfo=dt.UTC)
    orphan = OutboxEvent(
        topic="task-events", id="ev-orphan", type="task.updated", data=json.dumps({"list_id": list_id})
    )
    pending = OutboxState(
        reminders=(ReminderOp(name=f"due:{item.id}", fire_at=fire_at),), events=(orphan,)
    ).model_dump(mode="json")
    await stack.write_state(list_id, {OUTBOX_KEY: pending})
    stack.deactivate(LIST_ACTOR_TYPE, list_id)

    assert (await proxy.GetList(GetList(caller="alice"))).unwrap().open_count == 1  # activates: flushes
    events = await stack.wait_events("task-events", list_id, 2)
    assert events[1]["id"] == "ev-orphan" and events[1]["type"] == "task.updated"
    reminder = await stack.reminder(list_id, f"due:{item.id}")
    assert reminder["data"]  # re-registered from the outbox (the payload is checked in test_reminders)
    assert await stack.state(list_id, OUTBOX_KEY) is None


async def test_a_failed_publish_stays_pending_and_is_retried(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    await proxy.GetList(GetList())
    # The sidecar refuses an empty topic: this event cannot be published, and blocks the one after it.
    bad = OutboxEvent(topic="", id="ev-bad", type="task.updated", data="{}")
    good = OutboxEvent(
        topic="task-events", id="ev-good", type="task.updated", data=json.dumps({"list_id": list_id})
    )
    await stack.write_state(list_id, {OUTBOX_KEY: OutboxState(events=(bad, good)).model_dump(mode="json")})
    stack.deactivate(LIST_ACTOR_TYPE, list_id)
    await proxy.GetList(GetList())

    assert await stack.reminder(list_id, RETRY_REMINDER) != {}
    stored = await stack.state(list_id, OUTBOX_KEY)
    assert [e["id"] for e in stored["events"]] == ["ev-bad", "ev-good"]
    assert stack.events.for_list("task-events", list_id) == []

    # Once only publishable events are pending (here: the operator dropped the bad one), the retry
    # reminder publishes them, empties the outbox and stops itself.
    await stack.write_state(list_id, {OUTBOX_KEY: OutboxState(events=(good,)).model_dump(mode="json")})
    stack.deactivate(LIST_ACTOR_TYPE, list_id)
    await stack.advance(11)
    (event,) = await stack.wait_events("task-events", list_id, 1)
    assert event["id"] == "ev-good"
    await eventually(lambda: _absent(stack, list_id))
    await eventually(lambda: _retry_stopped(stack, list_id))


async def _absent(stack: Stack, list_id: str) -> bool:
    return await stack.state(list_id, OUTBOX_KEY) is None


async def _retry_stopped(stack: Stack, list_id: str) -> bool:
    return await stack.reminder(list_id, RETRY_REMINDER) == {}
