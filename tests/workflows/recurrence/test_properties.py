"""Property tests: expansion agrees with an independent brute-force RFC 5545 oracle, stays ordered and
bounded by dtstart, UNTIL and COUNT, and maps wall times to instants per RFC 5545 §3.3.5."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from workflows.recurrence import (
    Occurrence,
    Schedule,
    iter_occurrences,
    next_after_completion,
    next_occurrences,
)
from workflows.rrule_expand import load_zone
from workflows.rrule_parse import WEEKDAYS, Rule

ZONES = [
    "UTC",
    "Europe/Rome",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # transitions at midnight
    "America/Havana",
    "Asia/Kolkata",
]
SAMPLE = 60  # occurrences compared per example
PROPERTY = settings(
    max_examples=150, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _days_of_period(rule: Rule, dtstart: datetime, k: int) -> list[date]:
    """All dates of the k-th period (counting INTERVAL) from dtstart's period."""
    start = dtstart.date()
    step = k * rule.interval
    if rule.freq == "DAILY":
        return [start + timedelta(days=step)]
    if rule.freq == "WEEKLY":
        week = start - timedelta(days=(start.weekday() - rule.wkst) % 7) + timedelta(weeks=step)
        return [week + timedelta(days=i) for i in range(7)]
    if rule.freq == "MONTHLY":
        year, month = divmod(start.year * 12 + start.month - 1 + step, 12)
        month += 1
        return [date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]
    year = start.year + step
    return [date(year, 1, 1) + timedelta(days=i) for i in range(366 if calendar.isleap(year) else 365)]


def _matches(rule: Rule, dtstart: datetime, day: date) -> bool:
    """RFC 5545 BYxxx filters as plain predicates on a date (with DTSTART-derived defaults)."""
    month_len = calendar.monthrange(day.year, day.month)[1]
    if rule.bymonth and day.month not in rule.bymonth:
        return False
    if not rule.byday and not rule.bymonthday:
        if rule.freq == "YEARLY":
            return (rule.bymonth or day.month == dtstart.month) and day.day == dtstart.day
        if rule.freq == "MONTHLY":
            return day.day == dtstart.day
        if rule.freq == "WEEKLY":
            return day.weekday() == dtstart.weekday()
    if rule.bymonthday and not any(day.day == (d if d > 0 else month_len + d + 1) for d in rule.bymonthday):
        return False
    if rule.byday:
        in_month = rule.freq == "MONTHLY" or bool(rule.bymonth)
        first = day.replace(day=1) if in_month else day.replace(month=1, day=1)
        last = day.replace(day=month_len) if in_month else day.replace(month=12, day=31)
        nth, nth_from_end = (day - first).days // 7 + 1, -((last - day).days // 7 + 1)
        return any(d.weekday == day.weekday() and d.n in (None, nth, nth_from_end) for d in rule.byday)
    return True


def oracle(rule: Rule, dtstart: datetime, zone: ZoneInfo, horizon: int) -> list[datetime]:
    """Brute force: every day of every period, filtered, BYSETPOS-selected, then COUNT/UNTIL."""
    found: list[datetime] = []
    for k in range(10**6):
        period = _days_of_period(rule, dtstart, k)
        if period[0].year > horizon or len(found) >= SAMPLE:
            return found
        chosen = [d for d in period if _matches(rule, dtstart, d)]
        if rule.bysetpos:
            chosen = sorted(
                {
                    chosen[p - 1 if p > 0 else p]
                    for p in rule.bysetpos
                    if p <= len(chosen) and -p <= len(chosen)
                }
            )
        for day in chosen:
            local = datetime.combine(day, dtstart.time())
            if local < dtstart:
                continue
            if local.year > horizon:
                return found
            if len(found) >= min(SAMPLE, rule.count or SAMPLE):
                return found
            until = rule.until
            if isinstance(until, datetime) and until.tzinfo is not None:
                if local.replace(tzinfo=zone).astimezone(UTC) > until:
                    return found
            elif isinstance(until, datetime):
                if local > until:
                    return found
            elif until is not None and local.date() > until:
                return found
            found.append(local)
    raise AssertionError("unreachable")


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 4))}")
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=4, unique=True))
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            ordinals = st.sampled_from([1, 2, 3, 4, -1, -2, 5, -5])
            days = [f"{draw(ordinals)}{d}" if draw(st.booleans()) else d for d in days]
        parts.append("BYDAY=" + ",".join(days))
    if freq != "WEEKLY" and draw(st.booleans()):
        monthdays = st.integers(-31, 31).filter(bool)
        parts.append(f"BYMONTHDAY={','.join(map(str, draw(st.lists(monthdays, min_size=1, max_size=3))))}")
    if draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
        parts.append(f"BYMONTH={','.join(map(str, months))}")
    if len(parts) > 1 and any(p.startswith("BY") for p in parts) and draw(st.booleans()):
        positions = st.sampled_from([1, 2, 3, -1, -2, -3])
        parts.append(f"BYSETPOS={','.join(map(str, draw(st.lists(positions, min_size=1, max_size=2))))}")
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(WEEKDAYS))}")
    dtstart = draw(st.datetimes(datetime(2020, 1, 1), datetime(2032, 12, 31)))
    dtstart = dtstart.replace(second=0, microsecond=0)
    end = draw(st.sampled_from(["none", "count", "date", "local", "utc"]))
    until = dtstart + timedelta(days=draw(st.integers(0, 1500)), minutes=draw(st.integers(0, 1440)))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    elif end == "date":
        parts.append(f"UNTIL={until:%Y%m%d}")
    elif end in ("local", "utc"):
        parts.append(f"UNTIL={until:%Y%m%dT%H%M%S}{'Z' if end == 'utc' else ''}")
    try:
        return Schedule(rule=";".join(parts), dtstart=dtstart, tz=draw(st.sampled_from(ZONES)))
    except ValidationError:
        assume(False)
        raise


def _sample(schedule: Schedule, horizon: int) -> list[Occurrence]:
    got: list[Occurrence] = []
    for occurrence in iter_occurrences(schedule):
        if occurrence.local.year > horizon or len(got) >= SAMPLE:
            break
        got.append(occurrence)
    return got


@PROPERTY
@given(schedules(), st.data())
def test_expansion_matches_the_oracle_and_is_well_formed(s: Schedule, data: st.DataObject) -> None:
    rule, zone, horizon = s.parsed_rule, load_zone(s.tz), s.dtstart.year + 6
    got = _sample(s, horizon)
    assert [o.local for o in got] == oracle(rule, s.dtstart, zone, horizon)
    assert [o.index for o in got] == list(range(len(got)))
    for earlier, later in zip(got, got[1:], strict=False):
        assert earlier.local < later.local and earlier.at_utc < later.at_utc
    for o in got:
        assert o.local >= s.dtstart and o.local.time() == s.dtstart.time()
        assert o.at_utc.utcoffset() == timedelta(0)
        wall = o.at_utc.astimezone(zone).replace(tzinfo=None)
        if wall != o.local:  # only a nonexistent wall time may move, and only forward by the gap
            pre = o.local.replace(tzinfo=zone).utcoffset()
            post = o.at_utc.astimezone(zone).utcoffset()
            assert pre is not None and post is not None
            assert wall - o.local == post - pre > timedelta(0)
    if rule.count is not None:
        assert len(got) <= rule.count
    if isinstance(rule.until, datetime):
        assert all((o.at_utc if rule.until.tzinfo else o.local) <= rule.until for o in got)
    elif rule.until is not None:
        assert all(o.local.date() <= rule.until for o in got)
    if got:
        after = data.draw(st.sampled_from(got)).at_utc + timedelta(
            seconds=data.draw(st.sampled_from([-1, 0]))
        )
        expected = [o for o in got if o.at_utc > after][:5]
        assert next_occurrences(s, after, len(expected)) == expected


@PROPERTY
@given(schedules(), st.data())
def test_exdates_remove_exactly_the_listed_occurrences(s: Schedule, data: st.DataObject) -> None:
    horizon = s.dtstart.year + 6
    full = _sample(s, horizon)
    assume(len(full) >= 2)
    removed = data.draw(st.lists(st.sampled_from(full), min_size=1, max_size=3, unique=True))
    excluded = s.model_copy(update={"exdates": tuple(o.local for o in removed)})
    kept = list(islice(iter_occurrences(excluded), len(full) - len(removed)))
    assert kept == [o for o in full if o not in removed]


@st.composite
def hourly(draw: st.DrawFn) -> Schedule:
    interval = draw(st.integers(1, 5))
    weekdays = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    day = draw(st.dates(date(2026, 3, 1), date(2026, 4, 10)) | st.dates(date(2026, 9, 25), date(2026, 11, 5)))
    start = datetime.combine(day, time(draw(st.integers(0, 23)), draw(st.integers(0, 59))))
    rule = f"FREQ=HOURLY;INTERVAL={interval};COUNT={draw(st.integers(1, 200))};BYDAY={','.join(weekdays)}"
    return Schedule(rule=rule, dtstart=start, tz=draw(st.sampled_from(ZONES)))


@PROPERTY
@given(hourly())
def test_hourly_rules_skip_nonexistent_times_and_stay_strictly_increasing(s: Schedule) -> None:
    rule, zone = s.parsed_rule, load_zone(s.tz)
    got = list(iter_occurrences(s))
    expected: list[datetime] = []
    local = s.dtstart
    while len(expected) < (rule.count or 0):  # wall-clock stepping, filtered, gaps dropped
        exists = local.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local
        if exists and any(d.weekday == local.weekday() for d in rule.byday):
            expected.append(local)
        local += timedelta(hours=rule.interval)
    assert [o.local for o in got] == expected
    assert all(a.at_utc < b.at_utc for a, b in zip(got, got[1:], strict=False))
    assert all(o.at_utc.astimezone(zone).replace(tzinfo=None) == o.local for o in got)


@PROPERTY
@given(
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    st.integers(1, 3),
    st.datetimes(datetime(2026, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(ZONES),
)
def test_completion_anchor_lands_on_a_later_day_at_the_series_time(
    freq: str, interval: int, done: datetime, tz: str
) -> None:
    dtstart = datetime(2025, 12, 1, 7, 45)
    s = Schedule(rule=f"FREQ={freq};INTERVAL={interval}", dtstart=dtstart, tz=tz, anchor="completion")
    occ = next_after_completion(s, done, 3)
    assert occ is not None and occ.index == 4
    done_day = done.astimezone(load_zone(tz)).date()
    assert occ.local.time() == dtstart.time() and occ.local.date() > done_day
    if freq == "DAILY":
        assert (occ.local.date() - done_day).days == interval
    if freq == "WEEKLY":
        assert (occ.local.date() - done_day).days == 7 * interval
    if freq == "MONTHLY":
        months = (occ.local.year - done_day.year) * 12 + occ.local.month - done_day.month
        assert months == interval and occ.local.day <= done_day.day
