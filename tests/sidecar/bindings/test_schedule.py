"""Cron schedules parse and step as daprd's cron binding (dapr/kit's robfig/cron fork) does: table-driven,
with the activations computed by hand from robfig's rules and the errors in dapr/kit's words."""

from __future__ import annotations

import datetime as dt

import pytest

from sidecar.bindings.schedule import ConstantDelay, ScheduleError, parse_schedule


def _at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def _iso(instant: float | None) -> str | None:
    if instant is None:
        return None
    return dt.datetime.fromtimestamp(instant, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "")


# (schedule, from, the next three activations); TZ=UTC so the table holds in any process zone.
NEXT = [
    ("@every 15m", "2026-03-01T10:00:00.250", ["2026-03-01T10:15:00.250", "2026-03-01T10:30:00.250"]),
    ("@every 1h30m", "2026-03-01T10:00:00", ["2026-03-01T11:30:00.000", "2026-03-01T13:00:00.000"]),
    ("@every 1500ms", "2026-03-01T10:00:00.2504", ["2026-03-01T10:00:01.750", "2026-03-01T10:00:03.250"]),
    ("@every 0s", "2026-03-01T10:00:00", ["2026-03-01T10:00:00.001", "2026-03-01T10:00:00.002"]),  # >= 1 ms
    ("TZ=UTC @hourly", "2026-03-01T10:00:00", ["2026-03-01T11:00:00.000", "2026-03-01T12:00:00.000"]),
    ("TZ=UTC @daily", "2026-03-01T10:00:00", ["2026-03-02T00:00:00.000", "2026-03-03T00:00:00.000"]),
    ("TZ=UTC @midnight", "2026-12-31T23:59:59.9", ["2027-01-01T00:00:00.000", "2027-01-02T00:00:00.000"]),
    ("TZ=UTC @weekly", "2026-03-01T10:00:00", ["2026-03-08T00:00:00.000", "2026-03-15T00:00:00.000"]),
    ("TZ=UTC @monthly", "2026-01-31T10:00:00", ["2026-02-01T00:00:00.000", "2026-03-01T00:00:00.000"]),
    ("TZ=UTC @yearly", "2026-03-01T10:00:00", ["2027-01-01T00:00:00.000", "2028-01-01T00:00:00.000"]),
    ("TZ=UTC @annually", "2026-03-01T10:00:00", ["2027-01-01T00:00:00.000", "2028-01-01T00:00:00.000"]),
    # 6 fields: seconds first
    ("TZ=UTC */15 * * * * *", "2026-03-01T10:00:14", ["2026-03-01T10:00:15.000", "2026-03-01T10:00:30.000"]),
    ("TZ=UTC 0 30 * * * *", "2026-03-01T10:30:00", ["2026-03-01T11:30:00.000", "2026-03-01T12:30:00.000"]),
    # 5 fields: minute first, second 0
    ("TZ=UTC */20 * * * *", "2026-03-01T10:05:00", ["2026-03-01T10:20:00.000", "2026-03-01T10:40:00.000"]),
    ("TZ=UTC 0 9 * * mon-fri", "2026-03-06T09:00:00", ["2026-03-09T09:00:00.000", "2026-03-10T09:00:00.000"]),
    ("TZ=UTC 0 0 1,15 * *", "2026-03-01T00:00:00", ["2026-03-15T00:00:00.000", "2026-04-01T00:00:00.000"]),
    ("TZ=UTC 0 0 * FEB *", "2026-03-01T00:00:00", ["2027-02-01T00:00:00.000", "2027-02-02T00:00:00.000"]),
    ("TZ=UTC 0 0 29 2 *", "2026-03-01T00:00:00", ["2028-02-29T00:00:00.000", "2032-02-29T00:00:00.000"]),
    # day of month and day of week both restricted: either matches (robfig, like Vixie cron)
    ("TZ=UTC 0 0 13 * 5", "2026-03-01T00:00:00", ["2026-03-06T00:00:00.000", "2026-03-13T00:00:00.000"]),
    ("TZ=UTC 0 0 * * ?", "2026-03-01T12:00:00", ["2026-03-02T00:00:00.000", "2026-03-03T00:00:00.000"]),
    ("TZ=UTC 5/20 * * * *", "2026-03-01T10:00:00", ["2026-03-01T10:05:00.000", "2026-03-01T10:25:00.000"]),
    (
        "CRON_TZ=Europe/Berlin 0 0 8 * * *",
        "2026-03-01T10:00:00",
        ["2026-03-02T07:00:00.000", "2026-03-03T07:00:00.000"],
    ),
    # never: robfig accepts the schedule and finds no activation within five years
    ("TZ=UTC 0 0 30 2 *", "2026-03-01T00:00:00", [None]),
]


@pytest.mark.parametrize(("spec", "start", "expected"), NEXT)
def test_next_activations(spec: str, start: str, expected: list[str | None]) -> None:
    schedule = parse_schedule(spec)
    got: list[str | None] = []
    instant: float | None = _at(start)
    for _ in expected:
        assert instant is not None
        instant = schedule.next_after(instant)
        got.append(_iso(instant))
    assert got == expected


INVALID = [
    ("", "empty spec string"),
    ("* * * *", "expected 5 to 6 fields, found 4: [* * * *]"),
    ("* * * * * * *", "expected 5 to 6 fields, found 7: [* * * * * * *]"),
    (" @daily", "expected 5 to 6 fields, found 1: [@daily]"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every 1d", "failed to parse duration @every 1d: time: invalid duration"),
    ("@every 15", 'failed to parse duration @every 15: time: missing unit in duration "15"'),
    ("@every", "unrecognized descriptor: @every"),
    ("60 * * * * *", "end of range (60) above maximum (59): 60"),
    ("0 0 24 * * *", "end of range (24) above maximum (23): 24"),
    ("0 0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("0 0 0 * 13 *", "end of range (13) above maximum (12): 13"),
    ("0 0 0 * * 7", "end of range (7) above maximum (6): 7"),
    ("0 0 10-2 * * *", "beginning of range (10) beyond end of range (2): 10-2"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("*/2/3 * * * *", "too many slashes: */2/3"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("x * * * *", "failed to parse int from x"),
    ("1_0 * * * *", "failed to parse int from 1_0"),  # Python's int() would take it, Go's Atoi does not
    ("-5 * * * *", "failed to parse int from"),  # "" before the hyphen
    ("0 0 * * moon", "failed to parse int from moon"),
    ("TZ=UTC", "timezone prefix TZ=UTC is not followed by a schedule"),
    ("TZ=Mars/Olympus @daily", "provided bad location Mars/Olympus"),
]


@pytest.mark.parametrize(("spec", "message"), INVALID)
def test_invalid_schedules_fail_in_dapr_kit_words(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(spec)
    assert str(caught.value).startswith(message)


def test_every_truncates_to_the_millisecond_and_allows_negative_as_daprd() -> None:
    assert parse_schedule("@every 1.0009s") == ConstantDelay(1.0)
    assert parse_schedule("@every -5m") == ConstantDelay(0.001)  # Go: below 1 ms becomes 1 ms
    assert parse_schedule("@every 2h45m30.5s") == ConstantDelay(2 * 3600 + 45 * 60 + 30.5)
