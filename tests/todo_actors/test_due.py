"""Due and reminder values: the three due shapes, zones, DST, ISO durations."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from todo_actors.due import ALL_DAY_AT, Due, Reminder, due_instant, parse_duration, zone

ROME = ZoneInfo("Europe/Rome")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "body",
    [
        '{"date": "2026-12-01"}',
        '{"datetime": "2026-12-01T09:00:00"}',
        '{"datetime": "2026-12-01T09:00:00", "tz": "Europe/Rome"}',
    ],
)
def test_the_three_shapes_round_trip_exactly(body: str) -> None:
    due = Due.model_validate_json(body)
    assert Due.model_validate_json(due.model_dump_json()) == due
    assert due.model_dump_json() == body.replace(": ", ":").replace(", ", ",")


@pytest.mark.parametrize(
    "body, complaint",
    [
        ("{}", "exactly one"),
        ('{"date": "2026-12-01", "datetime": "2026-12-01T09:00:00"}', "exactly one"),
        ('{"date": "2026-12-01", "tz": "Europe/Rome"}', "'tz' goes with 'datetime'"),
        ('{"date": "2026-12-01T09:00:00"}', "YYYY-MM-DD"),  # never drop the time part
        ('{"date": "2026-12-01T00:00:00"}', "YYYY-MM-DD"),
        ('{"datetime": "2026-12-01T09:00:00Z"}', "without offset"),  # never guess a zone
        ('{"datetime": "2026-12-01T09:00:00+01:00", "tz": "Europe/Rome"}', "without offset"),
        ('{"datetime": "2026-12-01T09:00:00", "tz": "Mars/Olympus"}', "unknown IANA"),
        ('{"datetime": "2026-12-01T09:00:00", "tz": "localtime"}', "unknown IANA"),
        ('{"datetime": "2026-12-01T09:00:00", "tz": "europe/rome"}', "unknown IANA"),
        ('{"date": 1764547200}', "ISO 8601"),
        ('{"date": "2026-12-01", "time": "09:00"}', "Extra inputs"),
    ],
)
def test_invalid_dues_are_rejected_with_a_reason(body: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Due.model_validate_json(body)


def test_zone_accepts_iana_names_only() -> None:
    assert zone("Europe/Rome") == ROME
    assert zone("UTC") == ZoneInfo("UTC")
    for bad in ["", "Europe", "../etc/passwd", "/etc/localtime", "Factory", "Europe/Rome\x00"]:
        with pytest.raises(ValueError, match="unknown IANA"):
            zone(bad)


def test_all_day_and_floating_dues_resolve_in_the_list_zone() -> None:
    all_day = Due(date=dt.date(2026, 7, 1))
    floating = Due(datetime=dt.datetime(2026, 7, 1, 18, 30))
    assert due_instant(all_day) == utc(2026, 7, 1, 9, 0)  # default zone UTC, at ALL_DAY_AT
    assert due_instant(all_day, ROME) == utc(2026, 7, 1, 7, 0)  # 09:00 CEST
    assert due_instant(all_day, ROME, dt.time(0)) == utc(2026, 6, 30, 22, 0)
    assert due_instant(floating, ROME) == utc(2026, 7, 1, 16, 30)
    assert ALL_DAY_AT == dt.time(9, 0)


def test_zoned_due_ignores_the_list_zone() -> None:
    due = Due(datetime=dt.datetime(2026, 12, 1, 9, 0), tz="America/New_York")
    assert due_instant(due, ROME) == due_instant(due) == utc(2026, 12, 1, 14, 0)


def test_nonexistent_local_time_shifts_forward_by_the_gap() -> None:
    # 2026-03-29 02:00 -> 03:00 in Rome: 02:30 does not exist. Accepted and kept as written;
    # the instant is read with the pre-gap offset (RFC 5545): 02:30+01:00 = 01:30Z = 03:30 CEST.
    due = Due.model_validate_json('{"datetime": "2026-03-29T02:30:00", "tz": "Europe/Rome"}')
    assert due.datetime == dt.datetime(2026, 3, 29, 2, 30)
    instant = due_instant(due)
    assert instant == utc(2026, 3, 29, 1, 30)
    assert instant.astimezone(ROME).strftime("%H:%M %Z") == "03:30 CEST"


def test_ambiguous_local_time_is_its_first_occurrence() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; the first is 02:30 CEST = 00:30Z.
    due = Due(datetime=dt.datetime(2026, 10, 25, 2, 30), tz="Europe/Rome")
    assert due_instant(due) == utc(2026, 10, 25, 0, 30)


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_zoned_instants_are_utc_and_keep_the_wall_time_outside_gaps(local: dt.datetime) -> None:
    instant = due_instant(Due(datetime=local, tz="Europe/Rome"))
    assert instant.utcoffset() == dt.timedelta(0)
    back = instant.astimezone(ROME).replace(tzinfo=None)
    # Equal except inside a spring-forward gap, where it moves forward by the gap (one hour).
    assert back - local in (dt.timedelta(0), dt.timedelta(hours=1))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("PT15M", dt.timedelta(minutes=15)),
        ("PT0S", dt.timedelta(0)),
        ("P1D", dt.timedelta(days=1)),
        ("P2W", dt.timedelta(weeks=2)),
        ("P1DT2H30M", dt.timedelta(days=1, hours=2, minutes=30)),
    ],
)
def test_iso_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected
    assert Reminder(before_due=text).offset == expected


@pytest.mark.parametrize(
    "text", ["15m", "5m", "PT", "P", "P1Y", "P1M", "-PT15M", "PT1.5H", "PT15M\n", "P400D", "P9999999999W"]
)
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValidationError):
        Reminder(before_due=text)


def test_reminder_shapes() -> None:
    at = Reminder.model_validate_json('{"at": "2026-01-01T10:00:00+01:00"}')
    assert at.at == utc(2026, 1, 1, 9, 0)
    assert at.model_dump_json() == '{"at":"2026-01-01T09:00:00Z"}'
    assert Reminder.model_validate_json(at.model_dump_json()) == at
    for body in [
        '{"at": "2026-01-01T10:00:00"}',
        "{}",
        '{"at": "2026-01-01T10:00:00Z", "before_due": "PT1M"}',
    ]:
        with pytest.raises(ValidationError):
            Reminder.model_validate_json(body)
