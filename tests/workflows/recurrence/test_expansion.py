"""Rule expansion on known calendars: month ends, leap days, DST in Rome and New York, COUNT/UNTIL/EXDATE."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.recurrence import (
    Occurrence,
    Schedule,
    iter_occurrences,
    next_occurrences,
    occurrence_after,
    occurrence_key,
)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def schedule(rule: str, dtstart: datetime, tz: str = "Europe/Rome", **extra: object) -> Schedule:
    return Schedule.model_validate({"rule": rule, "dtstart": dtstart, "tz": tz} | extra)


def dates(occurrences: list[Occurrence]) -> list[date]:
    return [o.local.date() for o in occurrences]


def test_monthly_on_the_31st_skips_short_months() -> None:
    s = schedule("FREQ=MONTHLY;BYMONTHDAY=31;UNTIL=20261231T235959", datetime(2026, 1, 1, 9))
    got = list(iter_occurrences(s))
    assert dates(got) == [date(2026, m, 31) for m in (1, 3, 5, 7, 8, 10, 12)]
    assert [o.index for o in got] == list(range(7))
    assert all(o.local.time().hour == 9 for o in got)


def test_daily_at_nine_in_rome_stays_nine_across_both_2026_dst_changes() -> None:
    s = schedule("FREQ=DAILY", datetime(2026, 1, 1, 9))
    year = next_occurrences(s, EPOCH, 365)
    assert dates(year) == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    summer = (date(2026, 3, 29), date(2026, 10, 25))  # last Sundays of March and October
    for o in year:
        assert o.local.hour == 9 and o.local.minute == 0
        assert o.at_utc.tzinfo is UTC
        offset = o.at_utc.astimezone(ZoneInfo("Europe/Rome")).utcoffset()
        in_summer = summer[0] <= o.local.date() < summer[1]
        assert offset == timedelta(hours=2 if in_summer else 1), o
        assert o.at_utc.hour == (7 if in_summer else 8)
    by_day = {o.local.date(): o.at_utc for o in year}
    assert by_day[date(2026, 3, 28)] == datetime(2026, 3, 28, 8, tzinfo=UTC)
    assert by_day[date(2026, 3, 29)] == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert by_day[date(2026, 10, 24)] == datetime(2026, 10, 24, 7, tzinfo=UTC)
    assert by_day[date(2026, 10, 25)] == datetime(2026, 10, 25, 8, tzinfo=UTC)


def test_weekly_with_count_ends() -> None:
    s = schedule("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5", datetime(2026, 1, 5, 18, 30))
    got = next_occurrences(s, EPOCH, 10)
    assert [o.local for o in got] == [datetime(2026, 1, d, 18, 30) for d in (5, 7, 12, 14, 19)]
    assert [o.index for o in got] == [0, 1, 2, 3, 4]
    assert occurrence_after(s, got[-2].at_utc) == got[-1]
    assert occurrence_after(s, got[-1].at_utc) is None
    assert next_occurrences(s, got[-1].at_utc, 3) == []


def test_bysetpos_last_weekday_of_each_month() -> None:
    s = schedule("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", datetime(2026, 1, 1, 17))
    got = next_occurrences(s, EPOCH, 12)
    assert [d.isoformat() for d in dates(got)] == [
        "2026-01-30", "2026-02-27", "2026-03-31", "2026-04-30", "2026-05-29", "2026-06-30",
        "2026-07-31", "2026-08-31", "2026-09-30", "2026-10-30", "2026-11-30", "2026-12-31",
    ]  # fmt: skip


def test_negative_bymonthday_gives_month_ends_including_leap_february() -> None:
    s = schedule("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2027, 11, 1, 8))
    got = next_occurrences(s, EPOCH, 5)
    assert dates(got) == [
        date(2027, 11, 30), date(2027, 12, 31), date(2028, 1, 31), date(2028, 2, 29),
        date(2028, 3, 31),
    ]  # fmt: skip


def test_nth_weekday_first_monday_and_last_friday() -> None:
    s = schedule("FREQ=MONTHLY;BYDAY=1MO,-1FR", datetime(2026, 1, 1, 10))
    got = next_occurrences(s, EPOCH, 4)
    assert dates(got) == [date(2026, 1, 5), date(2026, 1, 30), date(2026, 2, 2), date(2026, 2, 27)]
    yearly = schedule("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", datetime(2026, 1, 1, 12))
    assert dates(next_occurrences(yearly, EPOCH, 2)) == [date(2026, 11, 26), date(2027, 11, 25)]


def test_yearly_on_february_29_only_in_leap_years() -> None:
    s = schedule("FREQ=YEARLY", datetime(2024, 2, 29, 9))
    assert dates(next_occurrences(s, EPOCH, 4)) == [
        date(2024, 2, 29), date(2028, 2, 29), date(2032, 2, 29), date(2036, 2, 29),
    ]  # fmt: skip
    explicit = schedule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", datetime(2025, 1, 1, 9))
    assert dates(next_occurrences(explicit, EPOCH, 2)) == [date(2028, 2, 29), date(2032, 2, 29)]


def test_exdate_removes_occurrences_but_keeps_indexes_stable() -> None:
    s = schedule("FREQ=DAILY;COUNT=5", datetime(2026, 6, 1, 9), exdates=[datetime(2026, 6, 3, 9)])
    got = list(iter_occurrences(s))
    assert dates(got) == [date(2026, 6, d) for d in (1, 2, 4, 5)]
    assert [o.index for o in got] == [0, 1, 3, 4]  # COUNT counts the excluded one, per RFC 5545
    # An EXDATE that matches no occurrence (wrong time of day) changes nothing.
    other = schedule("FREQ=DAILY;COUNT=5", datetime(2026, 6, 1, 9), exdates=[datetime(2026, 6, 3)])
    assert len(list(iter_occurrences(other))) == 5


@pytest.mark.parametrize(
    ("until", "last"),
    [
        ("20260610", date(2026, 6, 10)),  # a date: the whole local day is included
        ("20260610T090000", date(2026, 6, 10)),  # local wall time, inclusive
        ("20260610T085959", date(2026, 6, 9)),
        ("20260610T070000Z", date(2026, 6, 10)),  # an instant: 09:00 CEST is 07:00Z, inclusive
        ("20260610T065959Z", date(2026, 6, 9)),
    ],
)
def test_until_is_inclusive_in_each_form(until: str, last: date) -> None:
    s = schedule(f"FREQ=DAILY;UNTIL={until}", datetime(2026, 6, 1, 9))
    got = list(iter_occurrences(s))
    assert got[-1].local.date() == last
    assert len(got) == last.day
    assert occurrence_after(s, got[-1].at_utc) is None


def test_new_york_spring_forward_gap_shifts_forward_by_the_gap() -> None:
    s = schedule("FREQ=DAILY", datetime(2026, 3, 7, 2, 30), tz="America/New_York")
    before, gap_day, after = next_occurrences(s, EPOCH, 3)
    assert gap_day.local == datetime(2026, 3, 8, 2, 30)  # the nominal time is kept as the key
    assert gap_day.at_utc == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    wall = gap_day.at_utc.astimezone(ZoneInfo("America/New_York"))
    assert (wall.hour, wall.minute, wall.utcoffset()) == (3, 30, timedelta(hours=-4))
    assert before.at_utc == datetime(2026, 3, 7, 7, 30, tzinfo=UTC)  # 02:30 EST
    assert after.at_utc == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)  # 02:30 EDT


def test_new_york_fall_back_takes_the_first_of_the_repeated_hour() -> None:
    s = schedule("FREQ=DAILY", datetime(2026, 10, 31, 1, 30), tz="America/New_York")
    _, ambiguous, after = next_occurrences(s, EPOCH, 3)
    assert ambiguous.local == datetime(2026, 11, 1, 1, 30)
    assert ambiguous.at_utc == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not EST
    assert after.at_utc == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_hourly_rules_drop_nonexistent_times_instead_of_colliding() -> None:
    s = schedule("FREQ=HOURLY", datetime(2026, 3, 8, 0, 30), tz="America/New_York")
    got = next_occurrences(s, EPOCH, 4)
    assert [o.local.hour for o in got] == [0, 1, 3, 4]
    assert [o.index for o in got] == [0, 1, 2, 3]
    assert [o.at_utc.hour for o in got] == [5, 6, 7, 8]  # exactly one hour apart in real time
    fall = schedule("FREQ=HOURLY;COUNT=4", datetime(2026, 11, 1, 0, 30), tz="America/New_York")
    assert [o.at_utc.hour for o in iter_occurrences(fall)] == [4, 5, 7, 8]


def test_dtstart_that_does_not_match_the_rule_is_not_an_occurrence() -> None:
    s = schedule("FREQ=MONTHLY;BYMONTHDAY=1", datetime(2026, 1, 5, 9))
    assert dates(next_occurrences(s, EPOCH, 2)) == [date(2026, 2, 1), date(2026, 3, 1)]


def test_after_is_strict_and_index_offset_shifts_indexes() -> None:
    s = schedule("FREQ=DAILY", datetime(2026, 1, 1, 9))
    first = next_occurrences(s, EPOCH, 3)
    assert next_occurrences(s, first[0].at_utc, 1) == [first[1]]
    assert next_occurrences(s, first[0].at_utc - timedelta(seconds=1), 1) == [first[0]]
    shifted = next_occurrences(s, EPOCH, 3, index_offset=40)
    assert [o.index for o in shifted] == [40, 41, 42]
    assert [o.local for o in shifted] == [o.local for o in first]
    assert next_occurrences(s, EPOCH, 0) == []
    with pytest.raises(ValueError, match="between 0 and 1000"):
        next_occurrences(s, EPOCH, 1001)
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrence_after(s, datetime(2026, 1, 1))


def test_occurrence_key_and_serialization_are_stable() -> None:
    s = schedule("FREQ=DAILY", datetime(2026, 1, 1, 9))
    occ = next_occurrences(s, EPOCH, 3)[2]
    assert occurrence_key("series-7", occ) == "series-7:2"
    assert Occurrence.model_validate_json(occ.model_dump_json()) == occ
    again = next_occurrences(schedule("FREQ=DAILY", datetime(2026, 1, 1, 9)), EPOCH, 3)[2]
    assert occurrence_key("series-7", again) == occurrence_key("series-7", occ)
    with pytest.raises(ValueError, match="series_id"):
        occurrence_key("", occ)
