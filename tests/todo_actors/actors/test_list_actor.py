"""The list actor through the real proxy and sidecar: lifecycle of lists and items, ownership, verbatim
titles, turn-based safety under concurrent calls, and state that survives deactivation."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from tests.todo_actors.actors.conftest import Stack, new_id
from todo_actors.commands import (
    AddTodo,
    CompleteTodo,
    CreateList,
    DeleteList,
    DeleteTodo,
    ReopenTodo,
    ReorderTodos,
    UpdateList,
    UpdateTodo,
)
from todo_actors.due import Due, Reminder
from todo_actors.interface import LIST_ACTOR_TYPE, GetList, GetTodo, QueryTodos
from todo_actors.layout import META_KEY


async def _new_list(stack: Stack, owner: str = "alice", **fields: str) -> str:
    list_id = new_id()
    reply = await stack.list_proxy(list_id).CreateList(CreateList(owner=owner, title="Groceries", **fields))
    assert reply.error is None, reply.error
    return list_id


async def test_create_list_is_idempotent_and_a_different_create_conflicts(stack: Stack) -> None:
    list_id = new_id()
    proxy = stack.list_proxy(list_id)
    first = (await proxy.CreateList(CreateList(owner="alice", title="Home"))).unwrap()
    assert (first.id, first.owner, first.title, first.version, first.tz) == (
        list_id,
        "alice",
        "Home",
        1,
        "UTC",
    )
    again = (await proxy.CreateList(CreateList(owner="alice", title="Home"))).unwrap()
    assert again == first
    other = await proxy.CreateList(CreateList(owner="bob", title="Home"))
    assert other.error is not None and other.error.kind == "version_conflict"
    utc = (
        await stack.list_proxy(new_id()).CreateList(CreateList(owner="alice", title="Home", tz="UTC"))
    ).unwrap()
    assert utc.tz == "UTC"


async def test_item_lifecycle(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    added = (
        await proxy.AddTodo(AddTodo(caller="alice", title="milk", labels=("shop",), priority=2))
    ).unwrap()
    item = added.item
    assert item is not None and item.status == "open" and added.list_version == 2

    updated = (
        await proxy.UpdateTodo(UpdateTodo(caller="alice", id=item.id, title="oat milk", expected_version=1))
    ).unwrap()
    assert updated.item is not None and (updated.item.title, updated.item.version) == ("oat milk", 2)

    stale = await proxy.UpdateTodo(UpdateTodo(caller="alice", id=item.id, notes="x", expected_version=1))
    assert stale.error is not None and stale.error.kind == "version_conflict"
    assert stale.error.details == {"expected": 1, "actual": 2}

    done = (await proxy.CompleteTodo(CompleteTodo(caller="alice", id=item.id))).unwrap()
    assert done.item is not None and done.item.status == "completed" and done.item.completed_at is not None
    summary = (await proxy.GetList(GetList(caller="alice"))).unwrap()
    assert (summary.open_count, summary.completed_count) == (0, 1)

    reopened = (await proxy.ReopenTodo(ReopenTodo(caller="alice", id=item.id))).unwrap()
    assert reopened.item is not None and reopened.item.status == "open" and reopened.item.completed_at is None

    got = (await proxy.GetTodo(GetTodo(caller="alice", id=item.id))).unwrap()
    assert got.item == reopened.item and got.list_version == reopened.list_version

    deleted = (await proxy.DeleteTodo(DeleteTodo(caller="alice", id=item.id))).unwrap()
    assert deleted.item is not None and deleted.item.id == item.id
    missing = await proxy.GetTodo(GetTodo(caller="alice", id=item.id))
    assert missing.error is not None and missing.error.kind == "not_found"
    summary = (await proxy.GetList(GetList(caller="alice"))).unwrap()
    assert (summary.open_count, summary.completed_count, summary.version) == (0, 0, 6)


async def test_update_list_and_reorder(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    ids = []
    for title in ("a", "b", "c"):
        item = (await proxy.AddTodo(AddTodo(caller="alice", title=title))).unwrap().item
        assert item is not None
        ids.append(item.id)
    renamed = (await proxy.UpdateList(UpdateList(caller="alice", title="Errands", description=None))).unwrap()
    assert (renamed.title, renamed.description) == ("Errands", "")

    (await proxy.ReorderTodos(ReorderTodos(caller="alice", ids=(ids[2], ids[0], ids[1])))).unwrap()
    page = (await proxy.QueryTodos(QueryTodos(caller="alice"))).unwrap()
    assert [i.title for i in page.items] == ["c", "a", "b"]

    unknown = await proxy.ReorderTodos(ReorderTodos(caller="alice", ids=("nope",)))
    assert unknown.error is not None and unknown.error.kind == "not_found"


async def test_another_users_list_answers_not_found(stack: Stack) -> None:
    list_id = await _new_list(stack, owner="alice")
    proxy = stack.list_proxy(list_id)
    item = (await proxy.AddTodo(AddTodo(caller="alice", title="secret"))).unwrap().item
    assert item is not None
    replies = [
        await proxy.GetList(GetList(caller="mallory")),
        await proxy.AddTodo(AddTodo(caller="mallory", title="x")),
        await proxy.GetTodo(GetTodo(caller="mallory", id=item.id)),
        await proxy.QueryTodos(QueryTodos(caller="mallory")),
        await proxy.UpdateTodo(UpdateTodo(caller="mallory", id=item.id, title="pwned")),
        await proxy.CompleteTodo(CompleteTodo(caller="mallory", id=item.id)),
        await proxy.DeleteTodo(DeleteTodo(caller="mallory", id=item.id)),
        await proxy.UpdateList(UpdateList(caller="mallory", title="pwned")),
        await proxy.ReorderTodos(ReorderTodos(caller="mallory", ids=(item.id,))),
        await proxy.DeleteList(DeleteList(caller="mallory")),
    ]
    for reply in replies:
        assert reply.value is None
        assert reply.error is not None and reply.error.kind == "not_found"
        assert reply.error.message == "no such list"
    # A missing list answers the same way, and nothing above changed alice's list.
    ghost = await stack.list_proxy(new_id()).GetList(GetList(caller="alice"))
    assert ghost.error is not None and ghost.error.message == "no such list"
    summary = (await proxy.GetList(GetList(caller="alice"))).unwrap()
    assert (summary.title, summary.version, summary.open_count) == ("Groceries", 2, 1)


@pytest.mark.parametrize(
    "title",
    ["2025-01-01 file taxes", "5m", "P1D", "2025-01-01T10:00:00Z", "12:30", "1e3", "null", "ñ 🧾 \u200b"],
)
async def test_titles_round_trip_verbatim(stack: Stack, title: str) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    item = (
        (await proxy.AddTodo(AddTodo(caller="alice", title=title, notes=title, labels=(title,))))
        .unwrap()
        .item
    )
    assert item is not None and item.title == title
    # Served from the activation's cache, then reloaded from the store after a deactivation.
    for _ in range(2):
        got = (await proxy.GetTodo(GetTodo(caller="alice", id=item.id))).unwrap().item
        assert got is not None and (got.title, got.notes, got.labels) == (title, title, (title,))
        page = (await proxy.QueryTodos(QueryTodos(caller="alice", label=title))).unwrap()
        assert [i.title for i in page.items] == [title]
        stack.deactivate(LIST_ACTOR_TYPE, list_id)


async def test_concurrent_adds_lose_nothing(stack: Stack) -> None:
    list_id = await _new_list(stack)
    factory = stack.factory()
    replies = await asyncio.gather(
        *(
            stack.list_proxy(list_id, factory).AddTodo(AddTodo(caller="alice", title=f"t{n}"))
            for n in range(50)
        )
    )
    results = [r.unwrap() for r in replies]
    assert sorted(r.list_version for r in results) == list(range(2, 52))
    assert len({r.item.id for r in results if r.item is not None}) == 50
    stack.deactivate(LIST_ACTOR_TYPE, list_id)
    page = (await stack.list_proxy(list_id).QueryTodos(QueryTodos(caller="alice", limit=100))).unwrap()
    assert sorted(i.title for i in page.items) == sorted(f"t{n}" for n in range(50))
    assert page.list_version == 51


async def test_state_survives_deactivation_and_delete_list_removes_it(stack: Stack) -> None:
    list_id = await _new_list(stack, tz="Europe/Rome")
    proxy = stack.list_proxy(list_id)
    for n in range(5):
        (await proxy.AddTodo(AddTodo(caller="alice", title=f"t{n}"))).unwrap()
    before = (await proxy.QueryTodos(QueryTodos(caller="alice"))).unwrap()
    stack.deactivate(LIST_ACTOR_TYPE, list_id)
    after = (await proxy.QueryTodos(QueryTodos(caller="alice"))).unwrap()
    assert after == before
    assert (await proxy.GetList(GetList())).unwrap().tz == "Europe/Rome"

    stale = await proxy.DeleteList(DeleteList(caller="alice", expected_version=1))
    assert stale.error is not None and stale.error.kind == "version_conflict"
    ack = (await proxy.DeleteList(DeleteList(caller="alice", expected_version=6))).unwrap()
    assert ack.version == 7
    gone = await proxy.GetList(GetList(caller="alice"))
    assert gone.error is not None and gone.error.kind == "not_found"
    assert await stack.state(list_id, META_KEY) is None
    stack.deactivate(LIST_ACTOR_TYPE, list_id)
    gone = await proxy.GetList(GetList(caller="alice"))
    assert gone.error is not None and gone.error.kind == "not_found"
    # The id can be used again.
    again = (await proxy.CreateList(CreateList(owner="bob", title="Fresh"))).unwrap()
    assert (again.owner, again.version, again.open_count) == ("bob", 1, 0)


async def test_limits_answer_limit_exceeded(stack: Stack) -> None:
    list_id = await _new_list(stack)
    proxy = stack.list_proxy(list_id)
    reminders = tuple(Reminder(before_due=f"PT{n + 1}M") for n in range(11))
    too_many = await proxy.AddTodo(
        AddTodo(caller="alice", title="x", due=Due(date=dt.date(2030, 1, 1)), reminders=reminders)
    )
    assert too_many.error is not None and too_many.error.kind == "limit_exceeded"
    assert too_many.error.details == {"limit": "reminders_per_item", "max": 10}
    assert (await proxy.GetList(GetList())).unwrap().version == 1
