"""Properties of the pure list code over random command sequences, checked the way an actor uses it:
every outcome is saved through `state_changes` into a dict of serialized values (the actor store) and
reloaded, and its reminder changes are applied to a simulated set of registered one-shot reminders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from todo_actors.change import Outcome
from todo_actors.commands import (
    AddTodo,
    CompleteTodo,
    CreateList,
    DeleteTodo,
    ReopenTodo,
    ReorderTodos,
    UpdateList,
    UpdateTodo,
)
from todo_actors.due import Due, Reminder
from todo_actors.errors import InvalidInput, LimitExceeded
from todo_actors.layout import META_KEY, item_keys, load, state_changes
from todo_actors.model import TodoItem, TodoList, item_order_key
from todo_actors.reminders import pending_reminders, reminder_changes
from todo_actors.serializer import PydanticSerializer
from todo_actors.transitions import (
    Limits,
    add_todo,
    complete_todo,
    create_list,
    delete_todo,
    reopen_todo,
    reorder,
    update_list,
    update_todo,
)

SER = PydanticSerializer()
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ZONES = ["UTC", "Europe/Rome", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
LIMITS = Limits(items_per_list=12, subtask_depth=2)
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

titles = st.text(min_size=1, max_size=20)
dates = st.dates(dt.date(2025, 12, 20), dt.date(2026, 2, 1))
local_times = st.datetimes(dt.datetime(2025, 12, 20), dt.datetime(2026, 2, 1))
instants = st.datetimes(dt.datetime(2025, 12, 20), dt.datetime(2026, 2, 1), timezones=st.just(dt.UTC))
dues = st.one_of(
    st.none(),
    st.builds(Due, date=dates),
    st.builds(Due, datetime=local_times),
    st.builds(Due, datetime=local_times, tz=st.sampled_from(ZONES)),
)
absolute = st.builds(Reminder, at=instants)
relative = st.builds(Reminder, before_due=st.sampled_from(["PT0S", "PT15M", "PT1H", "P1D", "P1W"]))


@st.composite
def item_fields(draw: st.DrawFn) -> dict[str, Any]:
    due = draw(dues)
    reminders = draw(st.lists(absolute if due is None else absolute | relative, max_size=3))
    return {
        "title": draw(titles),
        "due": due,
        "reminders": tuple(reminders),
        "priority": draw(st.integers(0, 4)),
        "labels": tuple(draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True))),
    }


def stored(store: dict[str, bytes], old: TodoList | None, new: TodoList | None) -> None:
    upserts, deletes = state_changes(old, new)
    assert not upserts.keys() & deletes
    for key in deletes:
        del store[key]
    for key, value in upserts.items():
        data = SER.serialize(value)
        assert store.get(key) != data  # a save writes only keys whose value changed
        store[key] = data


def reload(store: dict[str, bytes]) -> TodoList:
    # As the SDK returns state: decoded with data_type=object, i.e. plain JSON.
    meta = SER.deserialize(store[META_KEY], object)
    keys = item_keys(meta)
    assert set(store) == {META_KEY, *keys}  # no orphaned or missing keys
    return load(meta, [SER.deserialize(store[k], object) for k in keys])


def all_pending(state: TodoList, now: dt.datetime) -> dict[str, dt.datetime]:
    result: dict[str, dt.datetime] = {}
    for item in state.items.values():
        result.update(pending_reminders(item, now, state.zone))
    return result


def a_command(data: st.DataObject, state: TodoList, new_id: str) -> Callable[[dt.datetime], Outcome]:
    ids = sorted(state.items)
    kinds = ["add", "update_list"] + (["update", "complete", "reopen", "delete", "reorder"] if ids else [])
    kind = data.draw(st.sampled_from(kinds))
    target = data.draw(st.sampled_from(ids)) if ids else ""
    if kind == "add":
        fields = data.draw(item_fields())
        if bool(ids) and data.draw(st.booleans()):
            fields["parent_id"] = data.draw(st.sampled_from(ids))
        if data.draw(st.booleans()):
            fields.update(series_id="s", occurrence=data.draw(st.integers(0, 3)))
        return lambda now: add_todo(state, AddTodo(**fields), now, new_id, LIMITS)
    if kind == "update":
        fields = data.draw(item_fields())
        names = data.draw(st.sets(st.sampled_from([*fields, "parent_id", "notes"]), min_size=1))
        changes = {n: fields.get(n) for n in names}
        if "parent_id" in changes:
            changes["parent_id"] = data.draw(st.none() | st.sampled_from(ids))
        return lambda now: update_todo(state, UpdateTodo(id=target, **changes), now, LIMITS)
    if kind == "complete":
        return lambda now: complete_todo(state, CompleteTodo(id=target), now)
    if kind == "reopen":
        return lambda now: reopen_todo(state, ReopenTodo(id=target), now)
    if kind == "delete":
        return lambda now: delete_todo(state, DeleteTodo(id=target), now, LIMITS)
    if kind == "reorder":
        chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
        return lambda now: reorder(state, ReorderTodos(ids=tuple(chosen)), now)
    patch = UpdateList(tz=data.draw(st.sampled_from(ZONES)), title=data.draw(titles))
    return lambda now: update_list(state, patch, now)


def check_outcome(old: TodoList, out: Outcome, now: dt.datetime) -> None:
    new = out.state
    if not out.changed:
        assert new is old and out.events == () and not out.reminders.to_register
        assert not out.reminders.to_unregister
        return
    assert new.version == old.version + 1 and new.updated_at == now  # versions strictly increase
    touched = set()
    for item_id in old.items.keys() | new.items.keys():
        before, after = old.items.get(item_id), new.items.get(item_id)
        if before is after:
            continue
        touched.add(item_id)
        if before is not None and after is not None:
            assert after.version == before.version + 1 and after.updated_at == now
            assert after.created_at == before.created_at
        elif after is not None:
            assert after.version == 1
    assert {e.item_id for e in out.events} == touched
    assert all(e.list_version == new.version for e in out.events)


@SLOW
@given(st.data())
def test_random_sequences_keep_versions_store_and_reminders_consistent(data: st.DataObject) -> None:
    now = T0
    tz = data.draw(st.sampled_from(ZONES))
    state = create_list(None, CreateList(owner="ann", title="l", tz=tz), "l", now).state
    store: dict[str, bytes] = {}
    stored(store, None, state)
    registered: dict[str, dt.datetime] = {}
    event_ids: set[str] = set()
    for step in range(data.draw(st.integers(1, 20))):
        now += data.draw(st.timedeltas(dt.timedelta(0), dt.timedelta(days=3)))
        # One-shot reminders that fired are gone from the sidecar.
        registered = {k: v for k, v in registered.items() if v > now}
        command = a_command(data, state, f"n{step}")  # fresh ids, like the actor's uuid4()
        if data.draw(st.booleans()):
            state.ordered_items()  # computed now: the next state derives its order from this one
        try:
            out = command(now)
        except (InvalidInput, LimitExceeded):
            continue  # cycles, depth, relative reminders without a due, full list
        check_outcome(state, out, now)
        for event in out.events:
            assert event.id not in event_ids
            event_ids.add(event.id)
        stored(store, state, out.state)
        registered = out.reminders.apply(registered)
        state = out.state
        # The order carried over from the previous state is the order a fresh sort gives.
        assert list(state.ordered_items()) == sorted(state.items.values(), key=item_order_key)
        assert state.last_position() == max((i.position for i in state.items.values()), default=0)
        assert reload(store) == state
        assert registered == all_pending(state, now)
        assert all(item.version >= 1 for item in state.items.values())


@given(item_fields(), st.sampled_from(ZONES), instants)
def test_complete_then_reopen_restores_the_open_item(
    fields: dict[str, Any], tz: str, now: dt.datetime
) -> None:
    state = create_list(None, CreateList(owner="a", title="l", tz=tz), "l", T0).state
    added = add_todo(state, AddTodo(**fields), T0, "x")
    done = complete_todo(added.state, CompleteTodo(id="x"), now)
    back = reopen_todo(done.state, ReopenTodo(id="x"), now)
    assert back.item is not None and added.item is not None and done.item is not None
    assert (done.item.status, back.item.status, back.item.completed_at) == ("completed", "open", None)
    assert back.item.version == added.item.version + 2
    volatile = {"version", "updated_at"}
    assert back.item.model_dump(exclude=volatile) == added.item.model_dump(exclude=volatile)
    assert done.reminders.apply(pending_reminders(added.item, now, added.state.zone)) == {}
    assert back.reminders.to_register == pending_reminders(added.item, now, added.state.zone)


@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=12),
    st.data(),
)
def test_reorder_is_a_permutation_that_only_moves_the_given_items(
    positions: list[int], data: st.DataObject
) -> None:
    state = create_list(None, CreateList(owner="a", title="l"), "l", T0).state
    for n, position in enumerate(positions):  # small positions: ties are common
        state = add_todo(state, AddTodo(title="t", position=position), T0, f"i{n}").state
    before = state.order()
    subset = data.draw(st.permutations(before).flatmap(lambda p: st.integers(1, len(p)).map(lambda k: p[:k])))
    out = reorder(state, ReorderTodos(ids=tuple(subset)), T0 + dt.timedelta(hours=1))
    after = out.state.order()
    assert sorted(after) == sorted(before)
    assert [i for i in after if i in subset] == list(subset)
    assert [(n, i) for n, i in enumerate(after) if i not in subset] == [
        (n, i) for n, i in enumerate(before) if i not in subset
    ]
    assert reload_round_trip(out.state) == out.state


def reload_round_trip(state: TodoList) -> TodoList:
    store: dict[str, bytes] = {}
    stored(store, None, state)
    return reload(store)


@given(st.data(), st.integers(0, 3), titles, titles)
def test_add_with_a_series_key_never_duplicates(
    data: st.DataObject, occurrence: int, title: str, other: str
) -> None:
    state = create_list(None, CreateList(owner="a", title="l"), "l", T0).state
    for n in range(data.draw(st.integers(0, 4))):
        state = add_todo(state, AddTodo(title="x", series_id="s", occurrence=n + 10), T0, f"p{n}").state
    cmd = AddTodo(title=title, series_id="s", occurrence=occurrence)
    first = add_todo(state, cmd, T0, "first")
    retry = add_todo(first.state, cmd.model_copy(update={"title": other}), T0, "second")
    assert first.changed and not retry.changed and retry.state is first.state
    assert retry.item == first.item and "second" not in retry.state.items
    matches = [i for i in retry.state.items.values() if i.series_key == ("s", occurrence)]
    assert len(matches) == 1


@given(item_fields(), item_fields(), st.sampled_from(ZONES), instants, st.booleans())
def test_reminder_changes_turn_the_old_set_into_the_new(
    old_fields: dict[str, Any], new_fields: dict[str, Any], tz: str, now: dt.datetime, done: bool
) -> None:
    state = create_list(None, CreateList(owner="a", title="l", tz=tz), "l", T0).state
    old = add_todo(state, AddTodo(**old_fields), T0, "x").item
    assert old is not None
    new = TodoItem.model_validate(
        {
            **old.model_dump(),
            **new_fields,
            "status": "completed" if done else "open",
            "completed_at": now if done else None,
        }
    )
    zone = state.zone
    changes = reminder_changes(old, new, now, zone)
    assert changes.apply(pending_reminders(old, now, zone)) == pending_reminders(new, now, zone)
    assert all(v > now for v in changes.to_register.values())
    # Nothing that stays the same is re-registered.
    assert not {k for k, v in changes.to_register.items() if pending_reminders(old, now, zone).get(k) == v}
