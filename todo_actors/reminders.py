"""Which actor reminders an item needs, as pure math: names, fire instants, and what an edit changes.

Names are deterministic (`due:{item_id}`, `rem:{item_id}:{n}`), so registering again replaces a
reminder. The fire instant travels in the reminder's data; when it fires, the actor re-derives the
item's schedule and only notifies if that instant is still current, so a stale reminder is harmless.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import NamedTuple
from zoneinfo import ZoneInfo

from todo_actors.due import ALL_DAY_AT, UTC, due_instant
from todo_actors.model import TodoItem

__all__ = [
    "NO_REMINDER_CHANGES",
    "ReminderChanges",
    "ReminderRef",
    "delay_until",
    "diff_reminders",
    "due_reminder_name",
    "is_current_reminder",
    "notification_id",
    "parse_reminder_name",
    "pending_reminders",
    "read_reminder_payload",
    "reminder_changes",
    "reminder_name",
    "reminder_payload",
    "scheduled_reminders",
]

_NOTIFICATION_NAMESPACE = uuid.UUID("0b7c2a4e-1f6d-4c8e-8d2b-7a9e5c3f1d60")


class ReminderRef(NamedTuple):
    """What a reminder name points at: the item and the reminder index (None for the due itself)."""

    item_id: str
    n: int | None


class ReminderChanges(NamedTuple):
    """Actor reminders to (re-)register with their fire instants, and names to unregister."""

    to_register: dict[str, dt.datetime]
    to_unregister: frozenset[str]

    def then(self, later: ReminderChanges) -> ReminderChanges:
        """These changes followed by `later` (a later register or unregister wins)."""
        register = {k: v for k, v in self.to_register.items() if k not in later.to_unregister}
        register.update(later.to_register)
        unregister = (self.to_unregister - later.to_register.keys()) | later.to_unregister
        return ReminderChanges(register, frozenset(unregister))

    def apply(self, registered: Mapping[str, dt.datetime]) -> dict[str, dt.datetime]:
        """The reminder set after applying these changes to `registered`."""
        result = {k: v for k, v in registered.items() if k not in self.to_unregister}
        result.update(self.to_register)
        return result


NO_REMINDER_CHANGES = ReminderChanges({}, frozenset())


def due_reminder_name(item_id: str) -> str:
    return f"due:{item_id}"


def reminder_name(item_id: str, index: int) -> str:
    return f"rem:{item_id}:{index}"


def parse_reminder_name(name: str) -> ReminderRef | None:
    """Inverse of the two name builders; None for a name this module did not make."""
    kind, _, rest = name.partition(":")
    if kind == "due" and rest:
        return ReminderRef(rest, None)
    if kind == "rem":
        item_id, _, index = rest.rpartition(":")
        if item_id and index.isdigit():
            return ReminderRef(item_id, int(index))
    return None


def scheduled_reminders(
    item: TodoItem, list_zone: ZoneInfo = UTC, all_day_at: dt.time = ALL_DAY_AT
) -> dict[str, dt.datetime]:
    """Every reminder the item asks for, past or future, by name; none once it is completed."""
    if item.status == "completed":
        return {}
    result: dict[str, dt.datetime] = {}
    due_at = None if item.due is None else due_instant(item.due, list_zone, all_day_at)
    if due_at is not None:
        result[due_reminder_name(item.id)] = due_at
    for n, reminder in enumerate(item.reminders):
        if reminder.at is not None:
            result[reminder_name(item.id, n)] = reminder.at
        elif due_at is not None and reminder.offset is not None:
            result[reminder_name(item.id, n)] = due_at - reminder.offset
    return result


def pending_reminders(
    item: TodoItem | None,
    now: dt.datetime,
    list_zone: ZoneInfo = UTC,
    all_day_at: dt.time = ALL_DAY_AT,
) -> dict[str, dt.datetime]:
    """The reminders still to fire (strictly after `now`), by name. A past reminder never fires late
    on an edit: only the reminder that was already registered for it may still deliver it."""
    if item is None:
        return {}
    return {k: v for k, v in scheduled_reminders(item, list_zone, all_day_at).items() if v > now}


def diff_reminders(old: Mapping[str, dt.datetime], new: Mapping[str, dt.datetime]) -> ReminderChanges:
    """Register what is new or moved, unregister what is gone; leave the rest alone."""
    to_register = {k: v for k, v in new.items() if old.get(k) != v}
    return ReminderChanges(to_register, frozenset(old.keys() - new.keys()))


def reminder_changes(
    old_item: TodoItem | None,
    new_item: TodoItem | None,
    now: dt.datetime,
    list_zone: ZoneInfo = UTC,
    all_day_at: dt.time = ALL_DAY_AT,
    *,
    old_zone: ZoneInfo | None = None,
) -> ReminderChanges:
    """What an edit (or create: old None; delete: new None) does to the item's actor reminders.

    `old_zone` is the list's zone before the change when the change moved it.
    """
    old = pending_reminders(old_item, now, old_zone or list_zone, all_day_at)
    new = pending_reminders(new_item, now, list_zone, all_day_at)
    return diff_reminders(old, new)


def is_current_reminder(
    item: TodoItem | None,
    name: str,
    fire_at: dt.datetime,
    list_zone: ZoneInfo = UTC,
    all_day_at: dt.time = ALL_DAY_AT,
) -> bool:
    """Whether a reminder that fired for `fire_at` still matches the item (else it is stale: drop it)."""
    if item is None:
        return False
    return scheduled_reminders(item, list_zone, all_day_at).get(name) == fire_at


def notification_id(list_id: str, item_id: str, name: str, fire_at: dt.datetime) -> str:
    """The dedup key of the notification a reminder fires: once per (item, reminder, instant).

    The instant stands in for "the due" of the product rule: for the due reminder and relative ones it
    moves exactly when the due moves, and it also tells apart an absolute reminder moved by the user.
    Keying by the index alone would wrongly swallow reminder 0 after reminder 0 was deleted and 1 slid
    into its place.
    """
    key = f"{list_id}/{item_id}/{name}/{_utc_text(fire_at)}"
    return str(uuid.uuid5(_NOTIFICATION_NAMESPACE, key))


def reminder_payload(fire_at: dt.datetime) -> bytes:
    """The `state` bytes to register a reminder with: its fire instant, as RFC 3339 text."""
    return _utc_text(fire_at).encode("ascii")


def read_reminder_payload(data: bytes) -> dt.datetime | None:
    """Inverse of `reminder_payload`; None for data this module did not write."""
    try:
        value = dt.datetime.fromisoformat(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value.astimezone(dt.UTC) if value.tzinfo is not None else None


def delay_until(fire_at: dt.datetime, now: dt.datetime) -> dt.timedelta:
    """The `due_time` to register a reminder with (never negative)."""
    return max(fire_at - now, dt.timedelta(0))


def _utc_text(instant: dt.datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError("reminder instants must be timezone-aware")
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
