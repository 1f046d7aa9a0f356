"""Due dates and reminders as values, and the time math that turns them into UTC instants.

A due is all-day (`date`), floating (naive `datetime`, read in the list's zone) or zoned (`datetime` + IANA
`tz`). We never drop the time part and never guess a zone: an offset in the datetime is rejected.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import re
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

__all__ = [
    "ALL_DAY_AT",
    "UTC",
    "Due",
    "IsoDuration",
    "Reminder",
    "UtcDatetime",
    "ZoneKey",
    "due_instant",
    "parse_duration",
    "zone",
]

UTC = ZoneInfo("UTC")

# When an all-day due "happens": 09:00 in the list's zone, like the default reminder time of Todoist and
# Google Tasks. RFC 5545 would say midnight (a relative VALARM on a DATE fires at 00:00), which wakes
# people up; callers who want that pass `all_day_at=time(0)`.
ALL_DAY_AT = dt.time(9, 0)

# Longest `before_due` we accept: a reminder more than a year ahead of its due is almost surely a typo.
MAX_BEFORE_DUE = dt.timedelta(days=366)

# The years a due, start, deadline or reminder `at` may name, as a series' (`workflows.recurrence`): every
# instant they stand for, with any zone's offset and a year's reminder lead, stays within Python's years
# 1-9999 (year 1 in Tokyo at 09:00 was an OverflowError). The OpenAPI document says the same (`api.openapi`).
EARLIEST_YEAR, LATEST_YEAR = 1900, 9000

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$",
    re.ASCII,
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


@functools.cache
def _iana_keys() -> frozenset[str]:
    # The tzdata package's own list: the system's zoneinfo directory also holds files such as
    # "localtime" that are not zones and differ per host.
    text = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(text.split()) - {"Factory"}


def zone(key: str) -> ZoneInfo:
    """The IANA zone named `key`; ValueError for anything else (including "localtime")."""
    if key not in _iana_keys():
        raise ValueError(f"unknown IANA time zone {key!r} (for example 'Europe/Rome' or 'UTC')")
    return ZoneInfo(key)


def _check_zone(key: str) -> str:
    zone(key)
    return key


def _to_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _iso_text_only(value: Any) -> Any:
    # Lax pydantic would read 0 or 1.7e9 as a date/datetime (Unix time); a due is always ISO text.
    if isinstance(value, int | float | bool):
        raise ValueError("expected an ISO 8601 string")
    return value


_Day = TypeVar("_Day", dt.date, dt.datetime)


def _in_years(value: _Day) -> _Day:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"years {EARLIEST_YEAR}-{LATEST_YEAR} only")
    return value


def _date_text(value: Any) -> Any:
    if isinstance(value, str) and not _DATE.fullmatch(value):
        raise ValueError("expected a date YYYY-MM-DD (use 'datetime' for a time of day)")
    if isinstance(value, dt.datetime):
        raise ValueError("expected a date, got a datetime (use 'datetime' for a time of day)")
    return _iso_text_only(value)


def parse_duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration with weeks, days, hours, minutes, seconds ("PT15M", "P1DT2H").

    Years and months are rejected: their length depends on the date, so "before due" would be ambiguous.
    """
    m = _DURATION.fullmatch(text)
    if m is None:
        raise ValueError(
            f"expected an ISO 8601 duration such as 'PT15M' or 'P1D' (W, D, H, M, S only), got {text!r}"
        )
    parts = {k: int(v) for k, v in m.groupdict().items() if v is not None}
    try:
        return dt.timedelta(**parts)
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None


def _check_duration(text: str) -> str:
    if parse_duration(text) > MAX_BEFORE_DUE:
        raise ValueError(f"duration longer than {MAX_BEFORE_DUE.days} days")
    return text


ZoneKey = Annotated[str, AfterValidator(_check_zone)]
"""An IANA zone name, checked against tzdata."""

UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text_only), AfterValidator(_to_utc)]
"""An instant with an offset, normalized to UTC."""

IsoDuration = Annotated[str, AfterValidator(_check_duration)]
"""An ISO 8601 duration kept as the text the client sent ("PT15M")."""

_Date = Annotated[dt.date, BeforeValidator(_date_text), AfterValidator(_in_years)]
_NaiveDatetime = Annotated[dt.datetime, BeforeValidator(_iso_text_only), AfterValidator(_in_years)]
# Checked before it is moved to UTC: the move is what overflows.
_ReminderAt = Annotated[
    AwareDatetime, BeforeValidator(_iso_text_only), AfterValidator(_in_years), AfterValidator(_to_utc)
]


class _OneOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_none(value: object) -> bool:
    return value is None


def _omitted() -> Any:
    """An optional member of a one-of, left out of the JSON when unset: `{"date": ...}` stays so."""
    return Field(None, exclude_if=_is_none)


class Due(_OneOf):
    """When an item is due: exactly one of all-day `date`, floating `datetime`, zoned `datetime`+`tz`."""

    date: _Date | None = _omitted()
    datetime: _NaiveDatetime | None = _omitted()
    tz: ZoneKey | None = _omitted()

    @model_validator(mode="after")
    def _one_shape(self) -> Due:
        if (self.date is None) == (self.datetime is None):
            raise ValueError("give exactly one of 'date' (all day) or 'datetime'")
        if self.tz is not None and self.datetime is None:
            raise ValueError("'tz' goes with 'datetime', not with an all-day 'date'")
        if self.datetime is not None and self.datetime.tzinfo is not None:
            raise ValueError("'datetime' must be a local time without offset; put the IANA zone in 'tz'")
        return self

    @property
    def kind(self) -> Literal["all_day", "floating", "zoned"]:
        if self.date is not None:
            return "all_day"
        return "floating" if self.tz is None else "zoned"

    @property
    def needs_list_zone(self) -> bool:
        """All-day and floating dues resolve in the list's zone, so they move when it changes."""
        return self.tz is None


class Reminder(_OneOf):
    """Absolute (`at`, an instant) or relative to the due (`before_due`, an ISO 8601 duration)."""

    at: _ReminderAt | None = _omitted()
    before_due: IsoDuration | None = _omitted()

    @model_validator(mode="after")
    def _one_shape(self) -> Reminder:
        if (self.at is None) == (self.before_due is None):
            raise ValueError("give exactly one of 'at' or 'before_due'")
        return self

    @property
    def offset(self) -> dt.timedelta | None:
        return None if self.before_due is None else parse_duration(self.before_due)


def due_instant(due: Due, list_zone: ZoneInfo = UTC, all_day_at: dt.time = ALL_DAY_AT) -> dt.datetime:
    """The UTC instant a due stands for.

    All-day dues happen at `all_day_at` and floating ones at their wall time, both in `list_zone`.
    Wall times that DST makes ambiguous or nonexistent follow RFC 5545 §3.3.5 (zoneinfo's fold=0):
    an ambiguous time is its first occurrence; a nonexistent one (2026-03-29T02:30 Europe/Rome) is read
    with the offset before the gap, i.e. shifted forward by the gap (03:30 CEST = 01:30Z). The stored due
    keeps the wall time the user gave; only the instant is shifted.
    """
    if due.date is not None:
        local = dt.datetime.combine(due.date, all_day_at, tzinfo=list_zone)
    else:
        assert due.datetime is not None
        tz = list_zone if due.tz is None else zone(due.tz)
        local = due.datetime.replace(tzinfo=tz, fold=0)
    return local.astimezone(dt.UTC)
