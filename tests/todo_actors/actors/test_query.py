"""QueryTodos through the actor: every filter, and cursor paging that stays stable while items are added."""

from __future__ import annotations

import datetime as dt

from pydantic import JsonValue

from tests.todo_actors.actors.conftest import Stack, new_id
from todo_actors.commands import AddTodo, CompleteTodo, CreateList, DeleteTodo
from todo_actors.due import Due
from todo_actors.interface import QueryTodos, TodoPage
from todo_actors.query import decode_cursor, encode_cursor


async def _list_with(stack: Stack, *adds: AddTodo, tz: str = "UTC") -> tuple[str, list[str]]:
    list_id = new_id()
    proxy = stack.list_proxy(list_id)
    (await proxy.CreateList(CreateList(owner="alice", title="q", tz=tz))).unwrap()
    ids = []
    for add in adds:
        item = (await proxy.AddTodo(add)).unwrap().item
        assert item is not None
        ids.append(item.id)
    return list_id, ids


async def _titles(stack: Stack, list_id: str, **filters: object) -> list[str]:
    query = QueryTodos.model_validate({"caller": "alice", **filters})
    page: TodoPage = (await stack.list_proxy(list_id).QueryTodos(query)).unwrap()
    return [i.title for i in page.items]


FLOATING = Due(datetime=dt.datetime(2026, 12, 1, 23, 30))


async def test_filters(stack: Stack) -> None:
    list_id, ids = await _list_with(
        stack,
        AddTodo(caller="alice", title="all-day 1 Dec", due=Due(date=dt.date(2026, 12, 1)), labels=("home",)),
        AddTodo(
            caller="alice", title="floating 1 Dec 23:30", due=Due(datetime=dt.datetime(2026, 12, 1, 23, 30))
        ),
        AddTodo(
            caller="alice",
            title="tokyo 2 Dec 08:00",
            due=Due(datetime=dt.datetime(2026, 12, 2, 8, 0), tz="Asia/Tokyo"),
        ),
        AddTodo(caller="alice", title="no due", labels=("home", "work")),
        AddTodo(caller="alice", title="occurrence", series_id="s1", occurrence=0),
        tz="Europe/Rome",
    )
    proxy = stack.list_proxy(list_id)
    sub = (await proxy.AddTodo(AddTodo(caller="alice", title="subtask", parent_id=ids[3]))).unwrap().item
    assert sub is not None
    (await proxy.CompleteTodo(CompleteTodo(caller="alice", id=ids[1]))).unwrap()

    assert await _titles(stack, list_id, status="completed") == ["floating 1 Dec 23:30"]
    assert len(await _titles(stack, list_id, status="open")) == 5
    assert await _titles(stack, list_id, label="home") == ["all-day 1 Dec", "no due"]
    assert await _titles(stack, list_id, series_id="s1") == ["occurrence"]
    assert await _titles(stack, list_id, parent_id=ids[3]) == ["subtask"]
    # 1 December in Rome is [2026-11-30T23:00Z, 2026-12-01T23:00Z): the all-day item counts from the start
    # of its day, the floating one at 23:30 Rome = 22:30Z; Tokyo 08:00 on 2 Dec is 23:00Z on 1 Dec.
    rome_day = {
        "due_after": dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC),
        "due_before": dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.UTC),
    }
    assert await _titles(stack, list_id, **rome_day) == ["all-day 1 Dec", "floating 1 Dec 23:30"]
    assert await _titles(stack, list_id, **rome_day, status="open") == ["all-day 1 Dec"]
    assert await _titles(stack, list_id, due_after=rome_day["due_before"]) == ["tokyo 2 Dec 08:00"]
    assert await _titles(stack, list_id, due_before=rome_day["due_after"]) == []


async def test_cursor_pages_are_stable_under_inserts(stack: Stack) -> None:
    list_id, ids = await _list_with(stack, *(AddTodo(caller="alice", title=f"t{n:02d}") for n in range(10)))
    proxy = stack.list_proxy(list_id)
    first: TodoPage = (await proxy.QueryTodos(QueryTodos(caller="alice", limit=4))).unwrap()
    assert [i.title for i in first.items] == ["t00", "t01", "t02", "t03"] and first.next_cursor is not None

    # Concurrent changes: one item slots in before the boundary, one after it, one already served goes.
    before = first.items[1].position + 1
    (await proxy.AddTodo(AddTodo(caller="alice", title="early", position=before))).unwrap()
    (
        await proxy.AddTodo(AddTodo(caller="alice", title="late", position=first.items[-1].position + 1))
    ).unwrap()
    (await proxy.DeleteTodo(DeleteTodo(caller="alice", id=ids[0]))).unwrap()

    seen = [i.title for i in first.items]
    cursor: str | None = first.next_cursor
    while cursor is not None:
        page: TodoPage = (await proxy.QueryTodos(QueryTodos(caller="alice", limit=4, cursor=cursor))).unwrap()
        seen += [i.title for i in page.items]
        cursor = page.next_cursor
    assert seen == ["t00", "t01", "t02", "t03", "late", *(f"t{n:02d}" for n in range(4, 10))]

    exact = (await proxy.QueryTodos(QueryTodos(caller="alice", limit=11))).unwrap()
    assert len(exact.items) == 11 and exact.next_cursor is None


async def test_a_bad_cursor_is_invalid_input(stack: Stack) -> None:
    list_id, _ = await _list_with(stack, AddTodo(caller="alice", title="x"))
    proxy = stack.list_proxy(list_id)
    bad_parts: list[list[JsonValue]] = [
        ["x"],
        [1, "not a time", "id"],
        [1.5, "2026-01-01T00:00:00+00:00", "i"],
    ]
    for cursor in ("%%%", *(encode_cursor(p) for p in bad_parts)):
        reply = await proxy.QueryTodos(QueryTodos(caller="alice", cursor=cursor))
        assert reply.error is not None and reply.error.kind == "invalid_input", cursor
        assert reply.error.details["errors"] == [{"loc": ["cursor"], "msg": "not a cursor this API returned"}]


def test_cursor_round_trip() -> None:
    parts: list[JsonValue] = [3, "2026-01-01T00:00:00+00:00", "ñ-id"]
    assert decode_cursor(encode_cursor(parts)) == parts
    assert "=" not in encode_cursor(parts)
