"""RRULE validation: every bad rule is one InvalidRule naming its part; good rules normalize stably."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from workflows.recurrence import Schedule
from workflows.rrule_parse import InvalidRule, WeekdayRule, parse_rule


@pytest.mark.parametrize(
    ("text", "part", "fragment"),
    [
        ("", "FREQ", "empty"),
        ("COUNT=3", "FREQ", "FREQ is required"),
        ("FREQ=SECONDLY", "FREQ", "not supported"),
        ("FREQ=FORTNIGHTLY", "FREQ", "FREQ must be one of"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20261231", "COUNT", "together"),
        ("FREQ=DAILY;FOO=1", "FOO", "unknown rule part FOO"),
        ("FREQ=DAILY;X-NAME=1", "X-NAME", "unknown rule part"),
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR", "not supported"),
        ("FREQ=YEARLY;BYWEEKNO=20", "BYWEEKNO", "not supported"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ", "more than once"),
        ("FREQ=DAILY;COUNT", None, "NAME=VALUE"),
        ("FREQ=DAILY; COUNT=3", None, "NAME=VALUE"),
        ("FREQ=DAILY;COUNT=", "COUNT", "no value"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL", "from 1 to"),
        ("FREQ=DAILY;INTERVAL=-2", "INTERVAL", "from 1 to"),
        ("FREQ=DAILY;INTERVAL=10001", "INTERVAL", "from 1 to"),
        ("FREQ=DAILY;COUNT=0", "COUNT", "from 1 to"),
        ("FREQ=DAILY;COUNT=²", "COUNT", "from 1 to"),
        ("FREQ=DAILY;UNTIL=2026-12-31", "UNTIL", "UNTIL must be"),
        ("FREQ=DAILY;UNTIL=20260230", "UNTIL", "UNTIL must be"),
        ("FREQ=DAILY;UNTIL=20261231T250000Z", "UNTIL", "UNTIL must be"),
        ("FREQ=WEEKLY;BYDAY=MON", "BYDAY", "look like"),
        ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY", "ordinal"),
        ("FREQ=YEARLY;BYDAY=54MO", "BYDAY", "ordinal"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY", "MONTHLY or FREQ=YEARLY"),
        ("FREQ=DAILY;BYDAY=-1FR", "BYDAY", "MONTHLY or FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY", "at most 5"),
        ("FREQ=YEARLY;BYMONTH=3;BYDAY=-6FR", "BYDAY", "at most 5"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY", "1..31 or -31..-1"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY", "1..31 or -31..-1"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,,2", "BYMONTHDAY", "1..31 or -31..-1"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY", "WEEKLY"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH", "1..12"),
        ("FREQ=YEARLY;BYMONTH=-1", "BYMONTH", "1..12"),
        ("FREQ=YEARLY;BYMONTH=+3", "BYMONTH", "1..12"),
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS", "another BYxxx"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=367", "BYSETPOS", "-366..-1"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "BYSETPOS", "at most 5"),
        ("FREQ=DAILY;BYMONTH=1;BYSETPOS=2", "BYSETPOS", "at most 1"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30,31", "BYMONTHDAY", "never occurs"),
        ("FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=-31", "BYMONTHDAY", "never occurs"),
        ("FREQ=WEEKLY;WKST=XX", "WKST", "WKST must be"),
        ("FREQ=DAILY;" + "BYMONTH=1;" * 200, None, "longer than"),
    ],
)
def test_bad_rules_name_the_offending_part(text: str, part: str | None, fragment: str) -> None:
    with pytest.raises(InvalidRule) as caught:
        parse_rule(text)
    assert fragment in str(caught.value)
    assert caught.value.part == part
    assert isinstance(caught.value, ValueError)


def test_rule_parts_are_parsed_into_typed_fields() -> None:
    rule = parse_rule(
        "RRULE:freq=monthly;interval=2;byday=-1fr,1MO,tu;bymonthday=-1,15,1;bymonth=12,3;"
        "bysetpos=-1,1;wkst=su;until=20261231T235959Z"
    )
    assert rule.freq == "MONTHLY"
    assert rule.interval == 2
    assert rule.byday == (WeekdayRule(0, 1), WeekdayRule(1), WeekdayRule(4, -1))
    assert rule.bymonthday == (-1, 1, 15)
    assert rule.bymonth == (3, 12)
    assert rule.bysetpos == (-1, 1)
    assert rule.wkst == 6
    assert rule.until == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("until", "value"),
    [
        ("20261231", date(2026, 12, 31)),
        ("20261231T090000", datetime(2026, 12, 31, 9)),
        ("20261231T090000Z", datetime(2026, 12, 31, 9, tzinfo=UTC)),
    ],
)
def test_until_keeps_its_rfc_5545_form(until: str, value: date) -> None:
    rule = parse_rule(f"FREQ=DAILY;UNTIL={until}")
    assert rule.until == value
    assert type(rule.until) is type(value)
    assert str(rule) == f"FREQ=DAILY;UNTIL={until}"


def test_canonical_form_round_trips() -> None:
    text = "wkst=SU;BYSETPOS=-1;BYDAY=FR,MO,-1FR;FREQ=MONTHLY;INTERVAL=1;COUNT=4;"
    canonical = str(parse_rule(text))
    assert canonical == "FREQ=MONTHLY;COUNT=4;BYDAY=MO,-1FR,FR;BYSETPOS=-1;WKST=SU"
    assert str(parse_rule(canonical)) == canonical


def test_minimum_interval_bounds_sub_daily_rules() -> None:
    with pytest.raises(InvalidRule, match="30 minutes, more often than the minimum interval of 1 hour"):
        parse_rule("FREQ=MINUTELY;INTERVAL=30")
    with pytest.raises(InvalidRule) as caught:
        parse_rule("FREQ=HOURLY", min_interval=timedelta(hours=2))
    assert caught.value.part == "FREQ"
    assert parse_rule("FREQ=MINUTELY;INTERVAL=60").interval == 60
    assert parse_rule("FREQ=HOURLY").freq == "HOURLY"
    assert parse_rule("FREQ=MINUTELY;INTERVAL=5", min_interval=timedelta(minutes=5)).interval == 5
    assert parse_rule("FREQ=MINUTELY", min_interval=None).interval == 1
    with pytest.raises(InvalidRule, match="2 days"):
        parse_rule("FREQ=DAILY", min_interval=timedelta(days=2))


def _schedule(**fields: object) -> Schedule:
    base: dict[str, object] = {
        "rule": "FREQ=DAILY",
        "dtstart": datetime(2026, 1, 1, 9),
        "tz": "Europe/Rome",
    }
    return Schedule.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"tz": "../../etc/passwd"}, "unknown time zone"),
        ({"tz": "Factory"}, "unknown time zone"),
        ({"dtstart": datetime(2026, 1, 1, 9, tzinfo=UTC)}, "naive local wall time"),
        ({"dtstart": datetime(2026, 1, 1, 9, 0, 0, 5)}, "whole seconds"),
        ({"dtstart": datetime(9500, 1, 1)}, "between the years"),
        ({"exdates": [datetime(2026, 1, 2, 9, tzinfo=UTC)]}, "naive local wall time"),
        ({"rule": "FREQ=DAILY;UNTIL=20251231"}, "UNTIL is before dtstart"),
        ({"rule": "FREQ=DAILY;UNTIL=20260101T075959Z"}, "UNTIL is before dtstart"),
        ({"rule": "FREQ=YEARLY;BYMONTH=2", "dtstart": datetime(2026, 1, 30)}, "add BYMONTHDAY"),
        ({"rule": "FREQ=DAILY;BOGUS=1"}, "unknown rule part BOGUS"),
        (
            {"rule": "FREQ=MONTHLY;INTERVAL=2;BYMONTH=1,3", "dtstart": datetime(2026, 2, 1)},
            "visits only months 2, 4, 6, 8, 10, 12, none of BYMONTH=1, 3",
        ),
        (
            {"rule": "FREQ=DAILY;INTERVAL=7;BYDAY=TU", "dtstart": datetime(2026, 1, 5)},
            "visits only MO, none of BYDAY",
        ),
        ({"rule": "FREQ=MONTHLY;BYMONTHDAY=8;BYDAY=1SA"}, "never fall on the same day"),
        ({"rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=1;BYDAY=-1MO"}, "never fall on the same day"),
        ({"anchor": "whenever"}, "anchor"),
        ({"catch_up": "never"}, "catch_up"),
        ({"color": "red"}, "color"),
    ],
)
def test_schedule_rejects_inconsistent_input(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace(".", r"\.")):
        _schedule(**fields)


def test_schedule_stores_the_canonical_rule_and_round_trips_as_json() -> None:
    schedule = _schedule(
        rule="rrule:freq=weekly;byday=fr,mo",
        exdates=[datetime(2026, 1, 9, 9), datetime(2026, 1, 5, 9), datetime(2026, 1, 9, 9)],
        anchor="completion",
        catch_up="all",
    )
    assert schedule.rule == "FREQ=WEEKLY;BYDAY=MO,FR"
    assert schedule.exdates == (datetime(2026, 1, 5, 9), datetime(2026, 1, 9, 9))
    assert Schedule.model_validate_json(schedule.model_dump_json()) == schedule
    # UNTIL exactly at dtstart's instant is inclusive, so still valid.
    assert _schedule(rule="FREQ=DAILY;UNTIL=20260101T080000Z").parsed_rule.until is not None
    # Rules that fire only rarely are still valid.
    for rare in (
        "FREQ=MONTHLY;BYMONTHDAY=-1;BYDAY=-1FR",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=5TH",
        "FREQ=MONTHLY;INTERVAL=5;BYMONTH=1",
        "FREQ=DAILY;INTERVAL=3;BYDAY=SU",
    ):
        assert _schedule(rule=rare).rule == rare
    # The minimum interval is API policy, so a stored sub-daily schedule still loads.
    assert _schedule(rule="FREQ=MINUTELY;INTERVAL=5").parsed_rule.interval == 5


def test_modules_export_their_public_classes_and_functions() -> None:
    import inspect

    import workflows.recurrence as recurrence
    import workflows.rrule_expand as rrule_expand
    import workflows.rrule_parse as rrule_parse
    import workflows.rrule_reach as rrule_reach

    for module in (recurrence, rrule_parse, rrule_expand, rrule_reach):
        defined = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module.__name__
        }
        assert set(module.__all__) <= set(vars(module)), module.__name__
        assert defined <= set(module.__all__), module.__name__
