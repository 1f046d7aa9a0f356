"""The completion anchor (Todoist's "every!") and the catch-up policies after the engine was down."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.recurrence import (
    DEFAULT_GRACE,
    MAX_CATCH_UP,
    Occurrence,
    Schedule,
    due_on_resume,
    next_after_completion,
    next_occurrences,
    occurrence_after,
)

ROME = ZoneInfo("Europe/Rome")


def schedule(rule: str, dtstart: datetime, tz: str = "Europe/Rome", **extra: object) -> Schedule:
    return Schedule.model_validate({"rule": rule, "dtstart": dtstart, "tz": tz} | extra)


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    """An aware instant given as Rome wall time."""
    return datetime(year, month, day, hour, minute, sec, tzinfo=ROME).astimezone(UTC)


def after_completion(
    rule: str, dtstart: datetime, done: datetime, tz: str = "Europe/Rome", **extra: object
) -> datetime:
    s = schedule(rule, dtstart, tz, anchor="completion", **extra)
    occ = next_after_completion(s, done, previous_index=6)
    assert occ is not None
    assert occ.index == 7
    assert occ.at_utc == occ.local.replace(tzinfo=ZoneInfo(s.tz)).astimezone(UTC)
    return occ.local


MONDAY = datetime(2026, 1, 5, 9)


@pytest.mark.parametrize(
    ("rule", "dtstart", "done", "expected"),
    [
        # No BYxxx part: completion day + INTERVAL units, at dtstart's time of day.
        ("FREQ=DAILY;INTERVAL=3", MONDAY, rome(2026, 1, 12, 22), datetime(2026, 1, 15, 9)),
        ("FREQ=DAILY;INTERVAL=3", MONDAY, rome(2026, 1, 12, 7), datetime(2026, 1, 15, 9)),
        ("FREQ=DAILY", MONDAY, rome(2026, 1, 12, 23, 59), datetime(2026, 1, 13, 9)),
        ("FREQ=WEEKLY", MONDAY, rome(2026, 1, 14, 12), datetime(2026, 1, 21, 9)),
        ("FREQ=WEEKLY;INTERVAL=2", MONDAY, rome(2026, 1, 14, 12), datetime(2026, 1, 28, 9)),
        ("FREQ=MONTHLY", MONDAY, rome(2026, 1, 31, 18), datetime(2026, 2, 28, 9)),
        ("FREQ=MONTHLY", MONDAY, rome(2028, 1, 31, 18), datetime(2028, 2, 29, 9)),
        ("FREQ=MONTHLY", MONDAY, rome(2026, 2, 28, 18), datetime(2026, 3, 28, 9)),
        ("FREQ=YEARLY", MONDAY, rome(2028, 2, 29, 10), datetime(2029, 2, 28, 9)),
        ("FREQ=HOURLY;INTERVAL=2", MONDAY, rome(2026, 1, 12, 10, 17), datetime(2026, 1, 12, 12)),
        # With BYxxx parts: the first rule date on a later day, the shape taken from dtstart.
        ("FREQ=WEEKLY;BYDAY=MO,TH", MONDAY, rome(2026, 1, 13, 12), datetime(2026, 1, 15, 9)),
        ("FREQ=WEEKLY;BYDAY=MO,TH", MONDAY, rome(2026, 1, 15, 8), datetime(2026, 1, 19, 9)),
        ("FREQ=MONTHLY;BYMONTHDAY=1", MONDAY, rome(2026, 1, 20, 9), datetime(2026, 2, 1, 9)),
        ("FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1", MONDAY, rome(2026, 1, 20), datetime(2026, 4, 1, 9)),
        # Phased from February, every 2 months never reaches January: keep the series' own phase.
        (
            "FREQ=MONTHLY;INTERVAL=2;BYMONTH=1",
            datetime(2026, 1, 10, 9),
            rome(2026, 2, 3, 9),
            datetime(2027, 1, 10, 9),
        ),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=MO", MONDAY, rome(2026, 1, 13, 9), datetime(2026, 1, 19, 9)),
        (
            "FREQ=MONTHLY;BYMONTH=3,9",
            datetime(2026, 3, 15, 9),
            rome(2026, 4, 2, 9),
            datetime(2026, 9, 15, 9),
        ),
        (
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            MONDAY,
            rome(2026, 1, 30, 9),
            datetime(2026, 2, 27, 9),
        ),
    ],
)
def test_completion_anchor_restarts_the_rule_from_the_completion_day(
    rule: str, dtstart: datetime, done: datetime, expected: datetime
) -> None:
    assert after_completion(rule, dtstart, done) == expected


def test_completion_day_is_the_local_day_in_the_series_zone() -> None:
    # 23:30Z on 12 January is already 00:30 on the 13th in Rome.
    done = datetime(2026, 1, 12, 23, 30, tzinfo=UTC)
    assert after_completion("FREQ=DAILY", MONDAY, done) == datetime(2026, 1, 14, 9)
    assert after_completion("FREQ=DAILY", MONDAY, done, tz="UTC") == datetime(2026, 1, 13, 9)


def test_completion_anchor_respects_exdate_until_count_and_dtstart() -> None:
    skip_13th = [datetime(2026, 1, 13, 9)]
    done = rome(2026, 1, 12, 18)
    assert after_completion("FREQ=DAILY", MONDAY, done, exdates=skip_13th) == datetime(2026, 1, 14, 9)
    until = schedule("FREQ=DAILY;UNTIL=20260112", MONDAY, anchor="completion")
    assert next_after_completion(until, done, 6) is None
    counted = schedule("FREQ=DAILY;COUNT=3", MONDAY, anchor="completion")
    assert next_after_completion(counted, done, 2) is None
    last = next_after_completion(counted, done, 1)
    assert last is not None and last.index == 2
    assert next_after_completion(counted, done, 11, index_offset=10) is not None
    early = next_after_completion(counted, rome(2025, 12, 1, 12), 0)
    assert early is not None and early.local == MONDAY


def test_completion_anchor_keeps_the_gap_rule() -> None:
    s = schedule("FREQ=DAILY", datetime(2026, 3, 1, 2, 30), "America/New_York", anchor="completion")
    occ = next_after_completion(s, datetime(2026, 3, 7, 20, tzinfo=UTC), 5)
    assert occ is not None
    assert occ.local == datetime(2026, 3, 8, 2, 30)
    assert occ.at_utc == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


# Daily at 09:00 Rome; the engine handled 10 January (index 9) and was down for three days.
DAILY = datetime(2026, 1, 1, 9)
LAST_DONE_AT = rome(2026, 1, 10, 9)


def resume(
    policy: str, now: datetime, grace: timedelta = DEFAULT_GRACE, limit: int = MAX_CATCH_UP
) -> list[Occurrence]:
    s = schedule("FREQ=DAILY", DAILY, catch_up=policy)
    return due_on_resume(s, 9, LAST_DONE_AT, now, grace=grace, limit=limit)


def days(occurrences: list[Occurrence]) -> list[tuple[int, date]]:
    return [(o.index, o.local.date()) for o in occurrences]


def test_skip_drops_everything_missed_and_the_next_future_one_follows() -> None:
    now = rome(2026, 1, 13, 10, 30)
    assert resume("skip", now) == []
    upcoming = occurrence_after(schedule("FREQ=DAILY", DAILY), now)
    assert upcoming is not None and days([upcoming]) == [(13, date(2026, 1, 14))]


def test_skip_still_creates_an_occurrence_that_is_only_slightly_late() -> None:
    assert days(resume("skip", rome(2026, 1, 13, 9, 20))) == [(12, date(2026, 1, 13))]
    assert days(resume("skip", rome(2026, 1, 11, 9, 0, 2))) == [(10, date(2026, 1, 11))]
    assert resume("skip", rome(2026, 1, 13, 9, 20), grace=timedelta(minutes=5)) == []


def test_latest_creates_only_the_most_recent_missed_occurrence() -> None:
    assert days(resume("latest", rome(2026, 1, 13, 10, 30))) == [(12, date(2026, 1, 13))]


def test_all_creates_every_missed_occurrence_in_order() -> None:
    assert days(resume("all", rome(2026, 1, 13, 10, 30))) == [
        (10, date(2026, 1, 11)),
        (11, date(2026, 1, 12)),
        (12, date(2026, 1, 13)),
    ]


def test_all_is_bounded_and_keeps_the_newest(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="workflows.recurrence"):
        got = resume("all", rome(2026, 1, 13, 10, 30), limit=2)
    assert days(got) == [(11, date(2026, 1, 12)), (12, date(2026, 1, 13))]
    assert "3 missed occurrences truncated to the newest 2" in caplog.text


@pytest.mark.parametrize("policy", ["skip", "latest", "all"])
def test_nothing_is_due_before_the_next_occurrence(policy: str) -> None:
    assert resume(policy, rome(2026, 1, 11, 8, 59)) == []
    assert resume(policy, LAST_DONE_AT) == []


def test_resume_without_a_handled_occurrence_counts_from_the_given_instant() -> None:
    s = schedule("FREQ=DAILY", DAILY, catch_up="all")
    got = due_on_resume(s, None, rome(2026, 1, 10, 12), rome(2026, 1, 13, 10, 30))
    assert days(got) == [(10, date(2026, 1, 11)), (11, date(2026, 1, 12)), (12, date(2026, 1, 13))]


@pytest.mark.parametrize("policy", ["skip", "latest", "all"])
def test_completion_anchor_has_one_pending_occurrence_under_every_policy(policy: str) -> None:
    s = schedule("FREQ=DAILY", DAILY, anchor="completion", catch_up=policy)
    completed = rome(2026, 1, 5, 20)
    assert days(due_on_resume(s, 4, completed, rome(2026, 1, 9, 12))) == [(5, date(2026, 1, 6))]
    assert due_on_resume(s, 4, completed, rome(2026, 1, 6, 8)) == []
    first = due_on_resume(s, None, rome(2025, 12, 31, 12), rome(2026, 1, 3, 12))
    assert days(first) == [(0, date(2026, 1, 1))]


def test_resume_rejects_naive_instants_and_bad_limits() -> None:
    s = schedule("FREQ=DAILY", DAILY, catch_up="all")
    with pytest.raises(ValueError, match="now_utc"):
        due_on_resume(s, 0, LAST_DONE_AT, datetime(2026, 1, 13))
    with pytest.raises(ValueError, match="limit"):
        due_on_resume(s, 0, LAST_DONE_AT, rome(2026, 1, 13), limit=0)


def test_resume_agrees_with_upcoming_dates() -> None:
    s = schedule("FREQ=WEEKLY;BYDAY=MO,WE,FR", DAILY, catch_up="all")
    now = rome(2026, 3, 1, 12)
    missed = due_on_resume(s, 3, rome(2026, 1, 1), now)
    expected = [o for o in next_occurrences(s, rome(2026, 1, 1), 100) if o.at_utc <= now]
    assert missed == [o for o in expected if o.index > 3]
