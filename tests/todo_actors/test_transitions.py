"""The pure list transitions by example: validation, versions, limits, idempotency, subtasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from pydantic import ValidationError

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
from todo_actors.errors import ErrorInfo, InvalidInput, LimitExceeded, NotFound, TodoError, VersionConflict
from todo_actors.model import TodoList
from todo_actors.transitions import (
    POSITION_STEP,
    Limits,
    add_todo,
    complete_todo,
    create_list,
    delete_list,
    delete_todo,
    reopen_todo,
    reorder,
    update_list,
    update_todo,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=1)


def new_list(*titles: str) -> TodoList:
    state = create_list(None, CreateList(owner="ann", title="home"), "home", T0).state
    for n, title in enumerate(titles):
        state = add_todo(state, AddTodo(title=title), T0, f"i{n}").state
    return state


def test_create_list_is_idempotent_for_the_same_request_only() -> None:
    cmd = CreateList(owner="ann", title="home", tz="Europe/Rome")
    state = create_list(None, cmd, "home", T0).state
    assert (state.version, state.items, state.tz, state.created_at) == (1, {}, "Europe/Rome", T0)
    again = create_list(state, cmd, "home", T1)
    assert again.state is state and not again.changed
    with pytest.raises(VersionConflict):
        create_list(state, CreateList(owner="bob", title="home"), "home", T1)
    with pytest.raises(InvalidInput):
        create_list(None, cmd, "bad id", T0)


@pytest.mark.parametrize(
    "body",
    [
        '{"title": ""}',
        '{"title": "' + "x" * 501 + '"}',
        '{"title": "t", "id": "mine"}',  # read-only fields are rejected
        '{"title": "t", "version": 3}',
        '{"title": "t", "created_at": "2026-01-01T00:00:00Z"}',
        '{"title": "t", "status": "completed"}',
        '{"title": "t", "priority": 5}',
        '{"title": "t", "priority": "3"}',
        '{"title": "t", "labels": ["a", "a"]}',
        '{"title": "t", "labels": [""]}',
        '{"title": "t", "series_id": "s"}',
        '{"title": "t", "position": -1}',
        '{"title": 5}',
    ],
)
def test_add_command_validation(body: str) -> None:
    with pytest.raises(ValidationError):
        AddTodo.model_validate_json(body)


def test_patch_rejects_null_for_required_fields_and_unknown_fields() -> None:
    for body in [
        '{"id": "a", "title": null}',
        '{"id": "a", "position": null}',
        '{"id": "a", "status": "open"}',
    ]:
        with pytest.raises(ValidationError):
            UpdateTodo.model_validate_json(body)
    with pytest.raises(ValidationError):
        UpdateList.model_validate_json('{"title": null}')


def test_add_sets_the_server_fields() -> None:
    state = new_list("a", "b")
    out = add_todo(state, AddTodo(title="c", labels=("x",), priority=2), T1, "c")
    item = out.item
    assert item is not None
    assert (item.version, item.status, item.created_at, item.updated_at) == (1, "open", T1, T1)
    assert item.position == 3 * POSITION_STEP
    assert out.state.version == state.version + 1 and out.state.updated_at == T1
    assert out.state.order() == ("i0", "i1", "c")
    assert [e.type for e in out.events] == ["created"]
    assert out.events[0].item == item and out.events[0].list_version == out.state.version
    assert state.items.keys() == {"i0", "i1"}  # the input state is untouched


def test_update_patches_and_clears_with_explicit_null() -> None:
    state = add_todo(
        new_list(),
        AddTodo(title="t", notes="n", labels=("a",), due=Due(date=dt.date(2026, 2, 1)), priority=3),
        T0,
        "a",
    ).state
    out = update_todo(state, UpdateTodo.model_validate_json('{"id": "a", "due": null, "notes": null}'), T1)
    item = out.item
    assert item is not None
    assert (item.due, item.notes, item.labels, item.priority, item.title) == (None, "", ("a",), 3, "t")
    assert item.version == 2 and [e.type for e in out.events] == ["updated"]
    same = update_todo(out.state, UpdateTodo(id="a", title="t"), T1)
    assert not same.changed and same.state is out.state and same.events == ()


def test_relative_reminders_need_a_due() -> None:
    with pytest.raises(InvalidInput, match="needs the item to have a due"):
        add_todo(new_list(), AddTodo(title="t", reminders=(Reminder(before_due="PT5M"),)), T0, "a")
    state = add_todo(
        new_list(),
        AddTodo(title="t", due=Due(date=dt.date(2026, 2, 1)), reminders=(Reminder(before_due="PT5M"),)),
        T0,
        "a",
    ).state
    with pytest.raises(InvalidInput):
        update_todo(state, UpdateTodo(id="a", due=None), T1)


def test_expected_version_checks() -> None:
    state = new_list("a")
    item = state.items["i0"]
    with pytest.raises(VersionConflict) as err:
        update_todo(state, UpdateTodo(id="i0", title="x", expected_version=item.version + 1), T1)
    assert err.value.retryable and err.value.details == {"expected": 2, "actual": 1}
    with pytest.raises(VersionConflict):
        add_todo(state, AddTodo(title="b", expected_version=state.version - 1), T1, "b")
    with pytest.raises(VersionConflict):
        reorder(state, ReorderTodos(ids=("i0",), expected_version=99), T1)
    with pytest.raises(VersionConflict):
        delete_list(state, DeleteList(expected_version=99), T1)
    ok = complete_todo(state, CompleteTodo(id="i0", expected_version=item.version), T1)
    assert ok.item is not None and ok.item.version == item.version + 1


def test_missing_and_foreign_lists_look_the_same() -> None:
    state = new_list("a")
    calls: list[Callable[[], object]] = [
        lambda: complete_todo(None, CompleteTodo(id="i0"), T1),
        lambda: complete_todo(state, CompleteTodo(id="i0", caller="mallory"), T1),
        lambda: complete_todo(state, CompleteTodo(id="nope"), T1),
        lambda: reorder(state, ReorderTodos(ids=("nope",)), T1),
    ]
    for call in calls:
        with pytest.raises(NotFound) as err:
            call()
        assert not err.value.retryable
    assert complete_todo(state, CompleteTodo(id="i0", caller="ann"), T1).changed


def test_complete_and_reopen_are_no_ops_when_already_there() -> None:
    state = new_list("a")
    assert not reopen_todo(state, ReopenTodo(id="i0"), T1).changed
    done = complete_todo(state, CompleteTodo(id="i0"), T1)
    assert done.item is not None and done.item.completed_at == T1
    assert done.state.summary().completed_count == 1
    assert not complete_todo(done.state, CompleteTodo(id="i0"), T1).changed


def test_limits_raise_clear_errors() -> None:
    limits = Limits(items_per_list=2, reminders_per_item=1)
    state = new_list("a", "b")
    with pytest.raises(LimitExceeded) as err:
        add_todo(state, AddTodo(title="c"), T1, "c", limits)
    assert err.value.details == {"limit": "items_per_list", "max": 2}
    two = (Reminder(at=T1), Reminder(at=T1 + dt.timedelta(hours=1)))
    with pytest.raises(LimitExceeded, match="at most 1 reminders"):
        update_todo(state, UpdateTodo(id="i0", reminders=two), T1, limits)
    eleven = tuple(Reminder(at=T1 + dt.timedelta(minutes=n)) for n in range(11))
    with pytest.raises(LimitExceeded, match="at most 10 reminders"):
        add_todo(state, AddTodo(title="c", reminders=eleven), T1, "c")
    with pytest.raises(ValueError):
        Limits(reminders_per_item=11)


def test_add_by_series_key_is_idempotent_even_after_delete() -> None:
    cmd = AddTodo(title="rent", series_id="s1", occurrence=3)
    first = add_todo(new_list(), cmd, T0, "r1")
    again = add_todo(first.state, cmd.model_copy(update={"title": "other"}), T1, "r2")
    assert not again.changed and again.state is first.state and again.item == first.item
    gone = delete_todo(first.state, DeleteTodo(id="r1"), T1)
    assert gone.state.deleted_series == (("s1", 3),)
    retry = add_todo(gone.state, cmd, T1, "r3")
    assert not retry.changed and retry.item is None and "r3" not in retry.state.items
    assert add_todo(gone.state, cmd.model_copy(update={"occurrence": 4}), T1, "r4").changed


def test_deleted_series_keys_are_bounded() -> None:
    state = new_list()
    limits = Limits(deleted_series_kept=2)
    for n in range(4):
        state = add_todo(state, AddTodo(title="r", series_id="s", occurrence=n), T0, f"r{n}").state
        state = delete_todo(state, DeleteTodo(id=f"r{n}"), T0, limits).state
    assert state.deleted_series == (("s", 2), ("s", 3))


def test_subtasks_nest_without_cycles_and_go_with_their_parent() -> None:
    state = new_list("root")
    state = add_todo(state, AddTodo(title="child", parent_id="i0"), T0, "c").state
    state = add_todo(state, AddTodo(title="grandchild", parent_id="c"), T0, "g").state
    with pytest.raises(InvalidInput, match="own subtask"):
        update_todo(state, UpdateTodo(id="i0", parent_id="g"), T1)
    with pytest.raises(InvalidInput, match="no item"):
        add_todo(state, AddTodo(title="x", parent_id="ghost"), T1, "x")
    with pytest.raises(LimitExceeded):
        add_todo(state, AddTodo(title="x", parent_id="g"), T1, "x", Limits(subtask_depth=2))
    state = add_todo(state, AddTodo(title="other"), T0, "o").state
    with pytest.raises(LimitExceeded):  # moving a 3-level subtree under "o" makes it 4 deep
        update_todo(state, UpdateTodo(id="i0", parent_id="o"), T1, Limits(subtask_depth=2))
    out = delete_todo(state, DeleteTodo(id="i0"), T1)
    assert out.state.items.keys() == {"o"}
    assert [e.item_id for e in out.events] == ["i0", "c", "g"]
    assert {e.type for e in out.events} == {"deleted"}


def test_reorder_moves_only_the_given_items() -> None:
    state = new_list("a", "b", "c", "d")
    out = reorder(state, ReorderTodos(ids=("i3", "i1")), T1)
    assert out.state.order() == ("i0", "i3", "i2", "i1")
    assert {e.item_id for e in out.events} == {"i1", "i3"}  # only the two that moved are written
    assert out.state.items["i0"] is state.items["i0"]
    assert not reorder(out.state, ReorderTodos(ids=("i0", "i2")), T1).changed


def test_reorder_renumbers_once_when_positions_tie() -> None:
    state = new_list()
    for n in range(3):
        state = add_todo(state, AddTodo(title=str(n), position=7), T0, f"i{n}").state
    out = reorder(state, ReorderTodos(ids=("i2", "i1", "i0")), T1)
    assert out.state.order() == ("i2", "i1", "i0")
    assert [out.state.items[i].position for i in out.state.order()] == [1024, 2048, 3072]


def test_update_list_and_delete_list() -> None:
    state = new_list("a")
    out = update_list(state, UpdateList(title="work", description=None), T1)
    assert (out.state.title, out.state.description, out.state.version) == ("work", "", state.version + 1)
    assert not update_list(out.state, UpdateList(title="work"), T1).changed
    deletion = delete_list(state, DeleteList(caller="ann"), T1)
    assert [e.type for e in deletion.events] == ["deleted"]


def test_errors_travel_as_data() -> None:
    with pytest.raises(TodoError) as caught:
        update_todo(new_list("a"), UpdateTodo(id="i0", title="x", expected_version=5), T1)
    exc = caught.value
    back = TodoError.from_info(ErrorInfo.model_validate_json(exc.info().model_dump_json()))
    assert type(back) is VersionConflict and back.details == exc.details
    assert back.message == exc.message and back.retryable
    with pytest.raises(InvalidInput) as err:
        add_todo(new_list(), AddTodo(title="x", parent_id="ghost"), T1, "x")
    assert err.value.details["errors"] == [{"loc": ["parent_id"], "msg": "no item 'ghost' in this list"}]


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_todo(new_list(), AddTodo(title="x"), dt.datetime(2026, 1, 1), "x")
