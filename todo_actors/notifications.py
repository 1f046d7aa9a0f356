"""The `reminder.fired` notification a list publishes when an item's reminder comes due.

Its id is `reminders.notification_id(...)`, the same for every firing of one (item, reminder, instant), so
the at-least-once delivery of actor reminders reaches subscribers as one event after deduplication.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict

from todo_actors.due import Due, UtcDatetime
from todo_actors.model import TodoItem, TodoList
from todo_actors.reminders import notification_id, parse_reminder_name

__all__ = ["REMINDER_FIRED", "ReminderFired", "reminder_fired"]

REMINDER_FIRED = "reminder.fired"
"""The CloudEvent `type` of the notification."""


class ReminderFired(BaseModel):
    """Payload of a `reminder.fired` event; `kind` is "due" for the due itself, else "reminder"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    list_id: str
    owner: str
    members: tuple[str, ...] = ()
    item_id: str
    title: str
    reminder: str
    kind: Literal["due", "reminder"]
    fire_at: UtcDatetime
    due: Due | None = None


def reminder_fired(state: TodoList, item: TodoItem, name: str, fire_at: dt.datetime) -> ReminderFired:
    ref = parse_reminder_name(name)
    return ReminderFired(
        id=notification_id(state.id, item.id, name, fire_at),
        list_id=state.id,
        owner=state.owner,
        members=state.recipients(),
        item_id=item.id,
        title=item.title,
        reminder=name,
        kind="due" if ref is not None and ref.n is None else "reminder",
        fire_at=fire_at,
        due=item.due,
    )
