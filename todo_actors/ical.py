"""A list's items as iCalendar VTODOs (RFC 5545) and back; pure, so calendar apps can subscribe to a list
and other clients' task exports can be brought in. Built on the `icalendar` library, never by hand.

Mapping choices (README "What the app serves" summarizes them):
- `due` is DUE, `start` is DTSTART: an all-day due is a DATE, a floating one a local time without zone, a
  zoned one a TZID with its VTIMEZONE. `deadline` has no RFC 5545 property: X-TODO-ENGINE-DEADLINE.
- Priority 0 none/1 low/2 medium/3 high/4 urgent is PRIORITY 0/9/5/3/1; imported 1 is urgent, 2-4 high,
  5 medium, 6-9 low.
- A `before_due` reminder is `TRIGGER;RELATED=END:-PT15M` (END of a VTODO is its DUE); an `at` one is
  `TRIGGER;VALUE=DATE-TIME` in UTC. Calendar apps fire a relative alarm of an all-day due from midnight,
  todo-engine from 09:00 of the list's zone (`due.ALL_DAY_AT`).
- An occurrence of a series carries the series' rule as X-TODO-ENGINE-RRULE (not RRULE: each occurrence is
  its own item, and an RRULE would make calendar apps repeat it). An imported RRULE is not made a series.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from todo_actors.due import UTC, Due, Reminder, zone
from todo_actors.model import MAX_REMINDERS, ListSummary, TodoItem

if TYPE_CHECKING:  # loaded where a calendar is made or read: its import is a tenth of the app's start-up
    import icalendar

__all__ = [
    "MAX_IMPORTED_TODOS",
    "InvalidCalendar",
    "ParsedTodo",
    "export_calendar",
    "export_priority",
    "import_priority",
    "item_uid",
    "parse_calendar",
]

PRODID = "-//todo-engine//todo-engine 0.1//EN"
MAX_IMPORTED_TODOS = 1000
"""VTODOs one import may carry; a larger calendar is refused whole (split it)."""

_TO_ICAL_PRIORITY = {0: 0, 1: 9, 2: 5, 3: 3, 4: 1}
# Properties an import reads (or that only describe the VTODO's copy, such as DTSTAMP); any other is
# reported as dropped by name.
_READ = frozenset(
    {
        "UID",
        "SUMMARY",
        "DESCRIPTION",
        "DUE",
        "DTSTART",
        "STATUS",
        "COMPLETED",
        "PRIORITY",
        "CATEGORIES",
        "RELATED-TO",
        "DTSTAMP",
        "CREATED",
        "LAST-MODIFIED",
        "SEQUENCE",
        "PERCENT-COMPLETE",
        "X-TODO-ENGINE-DEADLINE",
    }
)


class InvalidCalendar(ValueError):
    """The body is not an iCalendar stream with VTODOs this API can read; not retryable as is."""


def item_uid(list_id: str, item_id: str) -> str:
    """The UID of an item: stable for its life, unique across lists."""
    return f"{item_id}.{list_id}@todo-engine"


def export_priority(priority: int) -> int:
    return _TO_ICAL_PRIORITY[priority]


def import_priority(priority: int) -> int:
    if priority <= 0 or priority > 9:
        return 0
    if priority == 1:
        return 4
    if priority <= 4:
        return 3
    return 2 if priority == 5 else 1


def _due_value(due: Due) -> dt.date | dt.datetime:
    if due.date is not None:
        return due.date
    assert due.datetime is not None
    return due.datetime if due.tz is None else due.datetime.replace(tzinfo=ZoneInfo(due.tz))


def _duration_text(delta: dt.timedelta) -> str:
    """An ISO 8601 duration in the units `due.parse_duration` reads (days, hours, minutes, seconds)."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


def _alarm(reminder: Reminder, title: str) -> icalendar.Alarm:
    import icalendar

    alarm = icalendar.Alarm()
    alarm.add("ACTION", "DISPLAY")
    alarm.add("DESCRIPTION", title)
    if reminder.at is not None:
        alarm.add("TRIGGER", reminder.at.astimezone(UTC), parameters={"VALUE": "DATE-TIME"})
    else:
        offset = reminder.offset
        assert offset is not None
        alarm.add("TRIGGER", -offset, parameters={"RELATED": "END"})
    return alarm


def _todo(list_id: str, item: TodoItem, rules: Mapping[str, str], stamp: dt.datetime) -> icalendar.Todo:
    import icalendar

    todo = icalendar.Todo()
    todo.add("UID", item_uid(list_id, item.id))
    todo.add("DTSTAMP", stamp)
    todo.add("CREATED", item.created_at)
    todo.add("LAST-MODIFIED", item.updated_at)
    todo.add("SEQUENCE", item.version)
    todo.add("SUMMARY", item.title)
    if item.notes:
        todo.add("DESCRIPTION", item.notes)
    if item.start is not None:
        todo.add("DTSTART", _due_value(item.start))
    if item.due is not None:
        todo.add("DUE", _due_value(item.due))
    if item.deadline is not None:
        # An X- property is text unless VALUE says otherwise; with it, readers decode it like DUE.
        value = _due_value(item.deadline)
        kind = "DATE-TIME" if isinstance(value, dt.datetime) else "DATE"
        todo.add("X-TODO-ENGINE-DEADLINE", value, parameters={"VALUE": kind})
    todo.add("STATUS", "COMPLETED" if item.status == "completed" else "NEEDS-ACTION")
    if item.completed_at is not None:
        todo.add("COMPLETED", item.completed_at)
    todo.add("PRIORITY", export_priority(item.priority))
    if item.labels:
        todo.add("CATEGORIES", list(item.labels))
    if item.parent_id is not None:
        todo.add("RELATED-TO", item_uid(list_id, item.parent_id), parameters={"RELTYPE": "PARENT"})
    if item.series_id is not None:
        todo.add("X-TODO-ENGINE-SERIES", item.series_id)
        rule = rules.get(item.series_id)
        if rule is not None:
            todo.add("X-TODO-ENGINE-RRULE", rule)
    for reminder in item.reminders:
        todo.add_component(_alarm(reminder, item.title))
    return todo


def export_calendar(
    summary: ListSummary, items: Sequence[TodoItem], rules: Mapping[str, str], now: dt.datetime
) -> bytes:
    """The list as a VCALENDAR with one VTODO per item (display order) and a VTIMEZONE per zone used.

    `rules` maps a series id to its RRULE text, for the items that are occurrences of a series.
    """
    import icalendar

    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("X-WR-CALNAME", summary.title)
    cal.add("X-WR-TIMEZONE", summary.tz)
    stamp = now.astimezone(UTC)
    for item in items:
        cal.add_component(_todo(summary.id, item, rules, stamp))
    zones = (_vtimezone(tzid) for tzid in sorted(cal.get_missing_tzids()))
    cal.subcomponents[:0] = [z for z in zones if z is not None]  # VTIMEZONEs come first
    body: bytes = cal.to_ical()
    return body


@functools.cache  # at most one per IANA zone (~600); read-only once made
def _vtimezone(tzid: str) -> icalendar.Timezone | None:
    """The VTIMEZONE of a zone, or None for one the zone database lacks.

    Made once per zone and process: the library scans the zone's offsets day by day from 1970 to 2038
    (~20 ms of CPU), and a list with items in a hundred zones took seconds on every export.
    """
    import icalendar

    try:
        return icalendar.Timezone.from_tzid(tzid)
    except ValueError:
        return None


@dataclass
class ParsedTodo:
    """One VTODO read for import: the fields of an `AddTodo`, and what could not be kept (with why)."""

    uid: str | None
    fields: dict[str, Any]
    completed: bool = False
    parent_uid: str | None = None
    dropped: list[str] = field(default_factory=list)


def _moment(prop: Any) -> Any:
    """The date or date-time of a property. The library resolves TZID on DUE and DTSTART; on an X-
    property it leaves the time naive with the TZID beside it, so that zone is applied here."""
    value = getattr(prop, "dt", None)
    tzid = getattr(prop, "params", {}).get("TZID")
    if isinstance(value, dt.datetime) and value.tzinfo is None and tzid is not None:
        try:
            return value.replace(tzinfo=zone(str(tzid)))
        except ValueError:
            raise InvalidCalendar(f"unknown TZID {tzid!r}") from None
    return value


def _as_due(value: Any, what: str, dropped: list[str]) -> Due:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return Due(datetime=value)
        key = getattr(value.tzinfo, "key", None)
        if isinstance(key, str) and key != "localtime":
            try:
                return Due(datetime=value.replace(tzinfo=None), tz=key)
            except ValueError:
                pass
        if value.utcoffset() != dt.timedelta(0):
            dropped.append(f"{what}: zone {value.tzname()!r} is not an IANA zone; kept as its UTC instant")
        return Due(datetime=value.astimezone(UTC).replace(tzinfo=None), tz="UTC")
    if isinstance(value, dt.date):
        return Due(date=value)
    raise InvalidCalendar(f"{what} is not a date or a date-time")


def _reminder(alarm: icalendar.Component, has_due: bool, has_start: bool) -> Reminder | str:
    """The reminder an alarm maps to, or why it does not map."""
    trigger = alarm.get("TRIGGER")
    if trigger is None:
        return "VALARM without TRIGGER"
    value = trigger.dt
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return "VALARM with a floating absolute TRIGGER (RFC 5545 asks for UTC)"
        return Reminder(at=value)
    if not isinstance(value, dt.timedelta):
        return "VALARM TRIGGER is neither a duration nor a date-time"
    related = str(trigger.params.get("RELATED", "START")).upper()
    # An alarm related to START of a VTODO without DTSTART is read as related to its DUE, as Apple and
    # Thunderbird do for tasks that only have a due.
    if related == "START" and has_start:
        return "VALARM relative to DTSTART (only reminders relative to the due are kept)"
    if not has_due:
        return "VALARM relative to a due the VTODO does not have"
    if value > dt.timedelta(0):
        return "VALARM after the due (only reminders before it are kept)"
    return Reminder(before_due=_duration_text(-value))


def _all(value: Any) -> list[Any]:
    """A property's values: the library gives one value, or a list when the property repeats."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _read_todo(todo: icalendar.Component) -> ParsedTodo:
    dropped: list[str] = []
    uid = str(todo["UID"]) if "UID" in todo else None
    fields: dict[str, Any] = {}
    summary = str(todo.get("SUMMARY", "")).strip()
    if not summary:
        dropped.append("SUMMARY: missing; titled '(untitled)'")
    fields["title"] = summary or "(untitled)"
    if "DESCRIPTION" in todo:
        fields["notes"] = str(todo["DESCRIPTION"])
    for name, key in (("DUE", "due"), ("DTSTART", "start"), ("X-TODO-ENGINE-DEADLINE", "deadline")):
        if name in todo:
            fields[key] = _as_due(_moment(todo[name]), name, dropped)
    if "PRIORITY" in todo:
        fields["priority"] = import_priority(int(todo.decoded("PRIORITY")))
    labels: list[str] = []
    for cats in _all(todo.get("CATEGORIES")):
        labels.extend(str(c) for c in cats.cats if str(c) not in labels)
    if labels:
        fields["labels"] = tuple(labels)
    status = str(todo.get("STATUS", "NEEDS-ACTION")).upper()
    if status == "CANCELLED":
        dropped.append("STATUS: CANCELLED has no equivalent; imported open")
    completed = status == "COMPLETED" or "COMPLETED" in todo
    if completed and "COMPLETED" in todo:
        dropped.append("COMPLETED: the completion time is the time of the import")
    parent_uid: str | None = None
    for rel in _all(todo.get("RELATED-TO")):
        if str(rel.params.get("RELTYPE", "PARENT")).upper() == "PARENT" and parent_uid is None:
            parent_uid = str(rel)
        else:
            dropped.append(f"RELATED-TO: {rel.params.get('RELTYPE', 'PARENT')} {str(rel)!r}")
    reminders: list[Reminder] = []
    for alarm in todo.walk("VALARM"):
        mapped = _reminder(alarm, "due" in fields, "start" in fields)
        if isinstance(mapped, str):
            dropped.append(mapped)
        elif len(reminders) == MAX_REMINDERS:
            dropped.append(f"VALARM: more than {MAX_REMINDERS} reminders")
        else:
            reminders.append(mapped)
    if reminders:
        fields["reminders"] = tuple(reminders)
    for name in todo:
        if name == "RRULE":
            dropped.append("RRULE: not imported as a series; one item was made")
        elif name not in _READ:
            dropped.append(f"{name}: not supported")
    for sub in todo.subcomponents:
        if sub.name != "VALARM":
            dropped.append(f"{sub.name}: not supported")
    return ParsedTodo(uid, fields, completed, parent_uid, dropped)


def parse_calendar(data: bytes) -> list[ParsedTodo]:
    """The VTODOs of an iCalendar stream, each read into item fields; InvalidCalendar if it is not one.

    Other components (VEVENT, VJOURNAL) are ignored; the caller reports how many VTODOs it made.
    """
    import icalendar

    try:
        text = data.decode("utf-8")
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except (UnicodeDecodeError, ValueError, IndexError, KeyError) as exc:
        raise InvalidCalendar(f"not an iCalendar stream: {exc}") from None
    todos = [t for cal in calendars if cal.name == "VCALENDAR" for t in cal.walk("VTODO")]
    if not calendars or any(cal.name != "VCALENDAR" for cal in calendars):
        raise InvalidCalendar("expected BEGIN:VCALENDAR ... END:VCALENDAR")
    if len(todos) > MAX_IMPORTED_TODOS:
        raise InvalidCalendar(f"more than {MAX_IMPORTED_TODOS} VTODOs; split the calendar")
    parsed: list[ParsedTodo] = []
    for todo in todos:
        try:
            parsed.append(_read_todo(todo))
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidCalendar(f"VTODO {todo.get('UID', '?')!s}: {exc}") from None
    return parsed
