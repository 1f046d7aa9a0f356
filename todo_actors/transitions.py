"""Pure transitions of a todo list: (state, command, now) -> new state, events, reminder changes.

No I/O and no clock: the list actor loads state, calls one of these, saves `layout.state_changes`, then
(un)registers `outcome.reminders`. Invalid commands raise a `TodoError` and leave the state untouched;
the guards and the `Outcome` they share with the member transitions are in `change`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from todo_actors.change import Deletion, Outcome, check_version, require
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
from todo_actors.errors import InvalidInput, LimitExceeded, NotFound, VersionConflict
from todo_actors.events import EventType, TaskEvent, task_event
from todo_actors.model import MAX_POSITION, MAX_REMINDERS, Role, TodoItem, TodoList
from todo_actors.reminders import NO_REMINDER_CHANGES, ReminderChanges, reminder_changes
from todo_actors.subtasks import check_parent, descendants

__all__ = [
    "DEFAULT_LIMITS",
    "POSITION_STEP",
    "Limits",
    "add_todo",
    "complete_todo",
    "create_list",
    "delete_list",
    "delete_todo",
    "reopen_todo",
    "reorder",
    "update_list",
    "update_todo",
]

_M = TypeVar("_M", TodoItem, TodoList)

# Gap between consecutive positions, so a client can slot an item between two others without
# renumbering the list.
POSITION_STEP = 1024


@dataclass(frozen=True)
class Limits:
    """Size limits; exceeding one raises LimitExceeded."""

    items_per_list: int = 5_000
    reminders_per_item: int = MAX_REMINDERS
    # Levels of subtasks below a top-level item (Todoist allows 4 levels in all).
    subtask_depth: int = 3
    # How many deleted (series_id, occurrence) keys a list remembers for idempotent re-adds.
    deleted_series_kept: int = 1_000

    def __post_init__(self) -> None:
        if not 0 <= self.reminders_per_item <= MAX_REMINDERS:
            raise ValueError(f"reminders_per_item must be within 0..{MAX_REMINDERS}")
        if min(self.items_per_list, self.subtask_depth, self.deleted_series_kept) < 0:
            raise ValueError("limits cannot be negative")


DEFAULT_LIMITS = Limits()

# AddTodo fields copied onto the new item as they are.
_ADD_FIELDS = tuple(set(AddTodo.model_fields) - {"caller", "expected_version", "position"})


def create_list(state: TodoList | None, cmd: CreateList, list_id: str, now: dt.datetime) -> Outcome:
    """A new list. Creating it again with the same owner and fields is a no-op (a retried POST);
    with anything else it is a VersionConflict (the id is taken)."""
    now = _utc(now)
    if state is not None:
        if (state.owner, state.title, state.description, state.tz) == (
            cmd.owner,
            cmd.title,
            cmd.description,
            cmd.tz,
        ):
            return Outcome(state, changed=False)
        raise VersionConflict("the list already exists", expected=0, actual=state.version)
    new = _validated(
        TodoList,
        {"id": list_id, **cmd.model_dump(), "created_at": now, "updated_at": now, "version": 1},
    )
    return Outcome(new)


def update_list(state: TodoList | None, cmd: UpdateList, now: dt.datetime) -> Outcome:
    now = _utc(now)
    state = _existing(state, cmd.caller, "owner")
    check_version("list", cmd.expected_version, state.version)
    wanted = cmd.changes()
    if "description" in wanted and wanted["description"] is None:
        wanted["description"] = ""
    changes = {k: v for k, v in wanted.items() if getattr(state, k) != v}
    if not changes:
        return Outcome(state, changed=False)
    new = _commit(state, now, {}, **changes)
    reminders = NO_REMINDER_CHANGES
    if new.tz != state.tz:
        for item in state.items.values():
            if item.due is not None and item.due.needs_list_zone:
                moved = reminder_changes(item, item, now, new.zone, old_zone=state.zone)
                reminders = reminders.then(moved)
    return Outcome(new, reminders=reminders)


def delete_list(state: TodoList | None, cmd: DeleteList, now: dt.datetime) -> Deletion:
    """Events and reminder removals for deleting the list; the actor then saves
    `state_changes(state, None)`."""
    now = _utc(now)
    state = _existing(state, cmd.caller, "owner")
    check_version("list", cmd.expected_version, state.version)
    items = state.ordered_items()
    return Deletion(
        events=_events("deleted", state, items, state.version + 1, now),
        reminders=_removed_reminders(state, items, now),
    )


def add_todo(
    state: TodoList | None,
    cmd: AddTodo,
    now: dt.datetime,
    new_id: str,
    limits: Limits = DEFAULT_LIMITS,
) -> Outcome:
    """Add an item with id `new_id`. With a series key, a repeat returns the first item unchanged
    (`changed=False`; `item=None` if the user has deleted it since)."""
    now = _utc(now)
    state = _existing(state, cmd.caller)
    if cmd.series_id is not None and cmd.occurrence is not None:
        earlier = state.find_occurrence(cmd.series_id, cmd.occurrence)
        if earlier is not None or (cmd.series_id, cmd.occurrence) in state.deleted_series:
            return Outcome(state, item=earlier, changed=False)
    check_version("list", cmd.expected_version, state.version)
    if new_id in state.items:
        raise InvalidInput.at("id", f"item id {new_id!r} is already used in this list")
    if len(state.items) >= limits.items_per_list:
        raise LimitExceeded(
            f"a list holds at most {limits.items_per_list} items",
            limit_name="items_per_list",
            limit=limits.items_per_list,
        )
    _check_reminder_count(len(cmd.reminders), limits)
    check_parent(state, new_id, cmd.parent_id, limits.subtask_depth)
    item = _validated(
        TodoItem,
        {
            **{k: getattr(cmd, k) for k in _ADD_FIELDS},
            "id": new_id,
            "position": _next_position(state) if cmd.position is None else cmd.position,
            "created_at": now,
            "updated_at": now,
        },
    )
    new = _commit(state, now, {new_id: item})
    return Outcome(
        new,
        item=item,
        events=(task_event("created", state.id, state.owner, item, new.version, now, state.recipients()),),
        reminders=reminder_changes(None, item, now, state.zone),
    )


def update_todo(
    state: TodoList | None, cmd: UpdateTodo, now: dt.datetime, limits: Limits = DEFAULT_LIMITS
) -> Outcome:
    """Apply a patch; changing nothing is a no-op that keeps the version."""
    now = _utc(now)
    state = _existing(state, cmd.caller)
    item = _item(state, cmd.id)
    check_version("item", cmd.expected_version, item.version)
    wanted = cmd.changes()
    for name, empty in (("notes", ""), ("labels", ()), ("reminders", ()), ("priority", 0)):
        if name in wanted and wanted[name] is None:
            wanted[name] = empty
    changes = {k: v for k, v in wanted.items() if getattr(item, k) != v}
    if not changes:
        return Outcome(state, item=item, changed=False)
    if "reminders" in changes:
        _check_reminder_count(len(changes["reminders"]), limits)
    if "parent_id" in changes:
        check_parent(state, item.id, changes["parent_id"], limits.subtask_depth)
    return _replace_item(state, item, now, "updated", **changes)


def complete_todo(state: TodoList | None, cmd: CompleteTodo, now: dt.datetime) -> Outcome:
    """Complete an item (its pending reminders are removed); completing it again is a no-op."""
    now = _utc(now)
    state = _existing(state, cmd.caller)
    item = _item(state, cmd.id)
    check_version("item", cmd.expected_version, item.version)
    if item.status == "completed":
        return Outcome(state, item=item, changed=False)
    return _replace_item(state, item, now, "completed", status="completed", completed_at=now)


def reopen_todo(state: TodoList | None, cmd: ReopenTodo, now: dt.datetime) -> Outcome:
    """Reopen an item (its future reminders are armed again); reopening an open item is a no-op."""
    now = _utc(now)
    state = _existing(state, cmd.caller)
    item = _item(state, cmd.id)
    check_version("item", cmd.expected_version, item.version)
    if item.status == "open":
        return Outcome(state, item=item, changed=False)
    return _replace_item(state, item, now, "reopened", status="open", completed_at=None)


def delete_todo(
    state: TodoList | None, cmd: DeleteTodo, now: dt.datetime, limits: Limits = DEFAULT_LIMITS
) -> Outcome:
    """Delete an item with all its subtasks; `outcome.item` is the deleted item's last snapshot."""
    now = _utc(now)
    state = _existing(state, cmd.caller)
    item = _item(state, cmd.id)
    check_version("item", cmd.expected_version, item.version)
    doomed = [item, *descendants(state, item.id)]
    keys = [i.series_key for i in doomed if i.series_key is not None]
    kept = (*state.deleted_series, *keys)[-limits.deleted_series_kept :]
    if limits.deleted_series_kept == 0:
        kept = ()
    new = _commit(state, now, {i.id: None for i in doomed}, deleted_series=kept)
    return Outcome(
        new,
        item=item,
        events=_events("deleted", state, doomed, new.version, now),
        reminders=_removed_reminders(state, doomed, now),
    )


def reorder(state: TodoList | None, cmd: ReorderTodos, now: dt.datetime) -> Outcome:
    """Redistribute the given items over the slots they occupy, in the given order.

    Only items whose position changes are written (and get an "updated" event): when all positions
    are distinct the moved items trade positions; otherwise the list is renumbered once.
    """
    now = _utc(now)
    state = _existing(state, cmd.caller)
    check_version("list", cmd.expected_version, state.version)
    for item_id in cmd.ids:
        _item(state, item_id)
    order = state.order()
    index = {item_id: n for n, item_id in enumerate(order)}
    slots = sorted(index[i] for i in cmd.ids)
    new_order = list(order)
    for slot, item_id in zip(slots, cmd.ids, strict=True):
        new_order[slot] = item_id
    if tuple(new_order) == order:
        return Outcome(state, changed=False)
    positions = [state.items[i].position for i in order]
    if len(set(positions)) == len(positions):
        wanted = {i: positions[slot] for slot, i in zip(slots, cmd.ids, strict=True)}
    else:
        wanted = {i: (n + 1) * POSITION_STEP for n, i in enumerate(new_order)}
    changed = {
        i: _validated(TodoItem, _fields(state.items[i], position=pos, **_bump(state.items[i], now)))
        for i, pos in wanted.items()
        if state.items[i].position != pos
    }
    new = _commit(state, now, changed)
    moved = [changed[i] for i in new_order if i in changed]
    return Outcome(new, events=_events("updated", state, moved, new.version, now))


def _replace_item(
    state: TodoList, item: TodoItem, now: dt.datetime, event: EventType, **changes: Any
) -> Outcome:
    new_item = _validated(TodoItem, _fields(item, **changes, **_bump(item, now)))
    new = _commit(state, now, {item.id: new_item})
    return Outcome(
        new,
        item=new_item,
        events=(task_event(event, state.id, state.owner, new_item, new.version, now, state.recipients()),),
        reminders=reminder_changes(item, new_item, now, state.zone),
    )


def _commit(
    state: TodoList, now: dt.datetime, changes: Mapping[str, TodoItem | None], **fields: Any
) -> TodoList:
    # No validation: items were validated one by one and list fields come from validated commands,
    # so a 5,000-item list is not re-validated on every change.
    return state.with_items(changes, version=state.version + 1, updated_at=now, **fields)


def _fields(item: TodoItem, **changes: Any) -> dict[str, Any]:
    return {**{name: getattr(item, name) for name in TodoItem.model_fields}, **changes}


def _bump(item: TodoItem, now: dt.datetime) -> dict[str, Any]:
    return {"version": item.version + 1, "updated_at": now}


def _validated(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from None


def _utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(dt.UTC)


def _existing(state: TodoList | None, caller: str | None, need: Role = "editor") -> TodoList:
    return require(state, caller, need)


def _item(state: TodoList, item_id: str) -> TodoItem:
    item = state.items.get(item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r} in this list")
    return item


def _check_reminder_count(count: int, limits: Limits) -> None:
    if count > limits.reminders_per_item:
        raise LimitExceeded(
            f"an item has at most {limits.reminders_per_item} reminders",
            limit_name="reminders_per_item",
            limit=limits.reminders_per_item,
        )


def _next_position(state: TodoList) -> int:
    return min(state.last_position() + POSITION_STEP, MAX_POSITION)


def _events(
    type: EventType, state: TodoList, items: Iterable[TodoItem], list_version: int, at: dt.datetime
) -> tuple[TaskEvent, ...]:
    members = state.recipients()
    return tuple(task_event(type, state.id, state.owner, i, list_version, at, members) for i in items)


def _removed_reminders(state: TodoList, items: Iterable[TodoItem], now: dt.datetime) -> ReminderChanges:
    result = NO_REMINDER_CHANGES
    for item in items:
        result = result.then(reminder_changes(item, None, now, state.zone))
    return result
