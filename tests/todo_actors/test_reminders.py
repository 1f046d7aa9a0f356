"""Reminder names, fire instants and what an edit changes, by example."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from todo_actors.commands import AddTodo, CompleteTodo, CreateList, ReopenTodo, UpdateList, UpdateTodo
from todo_actors.due import Due, Reminder
from todo_actors.model import TodoItem, TodoList
from todo_actors.reminders import (
    ReminderChanges,
    delay_until,
    diff_reminders,
    is_current_reminder,
    notification_id,
    parse_reminder_name,
    pending_reminders,
    read_reminder_payload,
    reminder_changes,
    reminder_payload,
    scheduled_reminders,
)
from todo_actors.transitions import (
    add_todo,
    complete_todo,
    create_list,
    reopen_todo,
    update_list,
    update_todo,
)

NOW = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
ROME = ZoneInfo("Europe/Rome")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def list_with(cmd: AddTodo, tz: str = "UTC") -> tuple[TodoList, TodoItem]:
    state = create_list(None, CreateList(owner="ann", title="l", tz=tz), "l", NOW).state
    out = add_todo(state, cmd, NOW, "a")
    assert out.item is not None
    return out.state, out.item


def test_names_are_deterministic_and_parse_back() -> None:
    state, item = list_with(
        AddTodo(
            title="t",
            due=Due(date=dt.date(2026, 6, 2)),
            reminders=(Reminder(before_due="PT1H"), Reminder(at=utc(2026, 6, 1, 12))),
        )
    )
    assert scheduled_reminders(item) == {
        "due:a": utc(2026, 6, 2, 9),
        "rem:a:0": utc(2026, 6, 2, 8),
        "rem:a:1": utc(2026, 6, 1, 12),
    }
    assert parse_reminder_name("due:a") == ("a", None)
    assert parse_reminder_name("rem:a:1") == ("a", 1)
    for foreign in ["due:", "rem:a", "rem:a:x", "timer:a", "rem::1"]:
        assert parse_reminder_name(foreign) is None


def test_only_future_reminders_are_pending_and_completed_items_have_none() -> None:
    state, item = list_with(
        AddTodo(
            title="t",
            due=Due(datetime=dt.datetime(2026, 6, 1, 9, 0)),
            reminders=(Reminder(before_due="PT2H"), Reminder(before_due="PT30M")),
        )
    )
    assert pending_reminders(item, NOW) == {"due:a": utc(2026, 6, 1, 9), "rem:a:1": utc(2026, 6, 1, 8, 30)}
    done = complete_todo(state, CompleteTodo(id="a"), NOW)
    assert done.item is not None and pending_reminders(done.item, NOW) == {}
    assert done.reminders == ReminderChanges({}, frozenset({"due:a", "rem:a:1"}))
    again = reopen_todo(done.state, ReopenTodo(id="a"), NOW)
    assert again.reminders.to_register == pending_reminders(item, NOW)


def test_an_edit_re_arms_only_what_moved() -> None:
    state, item = list_with(
        AddTodo(
            title="t",
            due=Due(date=dt.date(2026, 6, 3)),
            reminders=(Reminder(at=utc(2026, 6, 2)), Reminder(before_due="P1D")),
        )
    )
    retitled = update_todo(state, UpdateTodo(id="a", title="new"), NOW)
    assert retitled.reminders == ReminderChanges({}, frozenset())
    moved = update_todo(state, UpdateTodo(id="a", due=Due(date=dt.date(2026, 6, 4))), NOW)
    assert moved.reminders == ReminderChanges(
        {"due:a": utc(2026, 6, 4, 9), "rem:a:1": utc(2026, 6, 3, 9)}, frozenset()
    )
    dropped = update_todo(state, UpdateTodo(id="a", reminders=(Reminder(before_due="P1D"),)), NOW)
    # Reminder 1 slid into slot 0: slot 0 re-registers at the new instant, slot 1 goes.
    assert dropped.reminders == ReminderChanges({"rem:a:0": utc(2026, 6, 2, 9)}, frozenset({"rem:a:1"}))


def test_changing_the_list_zone_moves_floating_and_all_day_reminders_only() -> None:
    state = create_list(None, CreateList(owner="ann", title="l"), "l", NOW).state
    state = add_todo(state, AddTodo(title="f", due=Due(datetime=dt.datetime(2026, 7, 1, 9))), NOW, "f").state
    zoned = Due(datetime=dt.datetime(2026, 7, 1, 9), tz="Asia/Tokyo")
    state = add_todo(state, AddTodo(title="z", due=zoned), NOW, "z").state
    out = update_list(state, UpdateList(tz="Europe/Rome"), NOW)
    assert out.state.tz == "Europe/Rome"
    assert out.reminders == ReminderChanges({"due:f": utc(2026, 7, 1, 7)}, frozenset())


def test_stale_reminders_are_recognised_when_they_fire() -> None:
    state, item = list_with(AddTodo(title="t", due=Due(date=dt.date(2026, 6, 3))))
    fire_at = scheduled_reminders(item)["due:a"]
    assert read_reminder_payload(reminder_payload(fire_at)) == fire_at
    assert read_reminder_payload(b"\xff") is None
    assert read_reminder_payload(b"2026-06-03T09:00:00") is None
    assert is_current_reminder(item, "due:a", fire_at)
    moved = update_todo(state, UpdateTodo(id="a", due=Due(date=dt.date(2026, 6, 4))), NOW).item
    assert not is_current_reminder(moved, "due:a", fire_at)
    assert not is_current_reminder(None, "due:a", fire_at)
    assert delay_until(fire_at, NOW) == dt.timedelta(days=2, hours=1)
    assert delay_until(NOW, fire_at) == dt.timedelta(0)


def test_notification_ids_are_stable_per_item_reminder_and_instant() -> None:
    at = utc(2026, 6, 3, 9)
    first = notification_id("l", "a", "due:a", at)
    assert first == notification_id("l", "a", "due:a", at.astimezone(ROME))
    others = {
        notification_id("l", "a", "due:a", at + dt.timedelta(days=1)),
        notification_id("l", "a", "rem:a:0", at),
        notification_id("l", "b", "due:b", at),
        notification_id("m", "a", "due:a", at),
    }
    assert first not in others and len(others) == 4


def test_diff_and_apply_compose() -> None:
    old = {"a": utc(2026, 1, 1), "b": utc(2026, 1, 2)}
    new = {"b": utc(2026, 1, 3), "c": utc(2026, 1, 4)}
    changes = diff_reminders(old, new)
    assert changes.apply(old) == new
    later = diff_reminders(new, {"c": utc(2026, 1, 4)})
    assert changes.then(later).apply(old) == {"c": utc(2026, 1, 4)}
    assert reminder_changes(None, None, NOW) == ReminderChanges({}, frozenset())
