"""Reminder/timer time strings: the exact forms daprd and the Python SDK use, plus round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.actors.timefmt import (
    Period,
    format_every,
    format_go_duration,
    format_rfc3339,
    parse_due_time,
    parse_go_duration,
    parse_iso_duration,
    parse_period,
    parse_ttl,
)

NOW = 1_717_243_200.0  # 2024-06-01T12:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0h0m5s0ms0\u03bcs", 5.0),  # what the SDK sends (Greek mu)
        ("0h0m5s0ms0\u00b5s", 5.0),  # micro sign
        ("0h0m0s0ms250us", 0.00025),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("2m0.5s", 120.5),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("0", 0.0),
        ("-0", 0.0),
        ("+3s", 3.0),
        ("-1.5s", -1.5),
        ("1ns", 1e-9),
        ("9223372036854775807ns", 9223372036.854775807),
        ("-9223372036854775808ns", -9223372036.854775808),
    ],
)
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("s", 'time: invalid duration "s"'),
        (".s", 'time: invalid duration ".s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1\u00b5", 'time: unknown unit "\\xc2\\xb5" in duration "1\\xc2\\xb5"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("1h 30m", 'time: unknown unit "h " in duration "1h 30m"'),
        ("1h.m", 'time: invalid duration "1h.m"'),
    ],
)
def test_go_duration_errors_match_go(text, message):
    with pytest.raises(ValueError) as info:
        parse_go_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (5400.0, "1h30m0s"),
        (3600.0, "1h0m0s"),
        (61.0, "1m1s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (1e-6, "1\u00b5s"),
        (1e-9, "1ns"),
        (-90.0, "-1m30s"),
        (3661.000000001, "1h1m1.000000001s"),
    ],
)
def test_format_go_duration_is_go_canonical(seconds, text):
    assert format_go_duration(seconds) == text


def test_format_every():
    assert format_every(1.0) == "@every 1s"
    assert format_every(5400.0) == "@every 1h30m0s"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT2H30M", 9000.0), ("P1DT2H", 93_600.0), ("PT10S", 10.0), ("P2W", 1_209_600.0), ("PT", 0)],
)
def test_iso_durations(text, seconds):
    assert parse_iso_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["P", "PT1.5S", "PT10", "PT-5S", "P1H", "PT1D", "pt10s", "P1Y", "P1M", "10s"]
)
def test_iso_duration_errors(text):
    with pytest.raises(ValueError):
        parse_iso_duration(text)


def test_iso_duration_rejects_repetitions():
    with pytest.raises(ValueError, match="repetitions are not allowed"):
        parse_iso_duration("R2/PT1S")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", NOW),
        ("0h0m5s0ms0\u03bcs", NOW + 5),
        ("PT1H", NOW + 3600),
        ("P1D", NOW + 86_400),
        ("P1M", 1_719_835_200.0),  # 2024-07-01T12:00:00Z: calendar months, like Go's AddDate
        ("2024-06-01T12:00:30Z", NOW + 30),
        ("2024-06-01T14:00:30.25+02:00", NOW + 30.25),
        ("2024-06-01T11:59:00-00:01", NOW),
    ],
)
def test_due_time(text, expected):
    assert parse_due_time(text, NOW) == expected


def test_due_time_month_overflow_normalizes_like_go():
    jan31 = parse_due_time("2024-01-31T10:00:00Z", 0)
    assert format_rfc3339(parse_due_time("P1M", jan31)) == "2024-03-02T10:00:00Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("R2/PT1S", "repetitions are not allowed"),
        ("tomorrow", "unsupported time/duration format: tomorrow"),
        ("2024-06-01 12:00:00Z", "unsupported time/duration format: 2024-06-01 12:00:00Z"),
        ("2024-02-30T00:00:00Z", "unsupported time/duration format: 2024-02-30T00:00:00Z"),
        ("2024-06-01T24:00:00Z", "unsupported time/duration format: 2024-06-01T24:00:00Z"),
        ("2024-06-01T12:00:00z", "unsupported time/duration format: 2024-06-01T12:00:00z"),
    ],
)
def test_due_time_errors(text, message):
    with pytest.raises(ValueError) as info:
        parse_due_time(text, NOW)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "period"),
    [
        (None, Period(None, None)),
        ("", Period(None, None)),
        ("0h0m10s0ms0\u03bcs", Period(10.0, None)),
        ("1h", Period(3600.0, None)),
        ("PT10S", Period(10.0, None)),
        ("R5/PT10S", Period(10.0, 5)),
        ("R5/PT1H30M", Period(5400.0, 5)),
        ("0s", Period(None, None)),  # zero length: daprd's HasRepeats is false
    ],
)
def test_period(text, period):
    assert parse_period(text) == period


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("R0/PT10S", "has zero repetitions"),
        ("P1D", "unsupported period format: P1D"),
        ("R3/P1DT1H", "unsupported period format: R3/P1DT1H"),
        ("P1M", "unsupported period format: P1M"),
        ("-5s", "unsupported period format: -5s"),
        ("every day", "parse error: unsupported duration format: every day"),
        ("R/PT1S", "parse error: unsupported duration format: R/PT1S"),
    ],
)
def test_period_errors(text, message):
    with pytest.raises(ValueError) as info:
        parse_period(text)
    assert str(info.value) == message


def test_period_days_allowed_without_scheduler_limits():
    assert parse_period("R2/P1DT1H", scheduler_limits=False) == Period(90_000.0, 2)
    with pytest.raises(ValueError, match="unsupported period format"):
        parse_period("P1Y", scheduler_limits=False)


def test_ttl_is_measured_from_the_first_due_time():
    due = NOW + 60
    assert parse_ttl("PT10S", due, NOW) == due + 10
    assert parse_ttl("0h0m30s0ms0\u03bcs", due, NOW) == due + 30
    assert parse_ttl("2024-06-01T13:00:00Z", due, NOW) == NOW + 3600


@pytest.mark.parametrize("text", ["PT0S", "-1s", "2024-06-01T12:00:30Z"])
def test_ttl_must_be_later_than_due_time(text):
    due = NOW + 60
    with pytest.raises(ValueError) as info:
        parse_ttl(text, due, NOW)
    assert str(info.value) == f"has already expired: dueTime: 2024-06-01 12:01:00 +0000 UTC TTL: {text}"


def test_ttl_already_past():
    with pytest.raises(ValueError, match="has already expired"):
        parse_ttl("2024-06-01T11:00:00Z", NOW - 7200, NOW)


@pytest.mark.parametrize(
    ("epoch", "text"),
    [(NOW, "2024-06-01T12:00:00Z"), (NOW + 0.5, "2024-06-01T12:00:00.5Z"), (0.0, "1970-01-01T00:00:00Z")],
)
def test_format_rfc3339(epoch, text):
    assert format_rfc3339(epoch) == text


nanoseconds = st.integers(-(2**63), 2**63 - 1)


@given(nanoseconds)
def test_go_duration_round_trip(ns):
    seconds = ns / 10**9
    text = format_go_duration(seconds)
    assert parse_go_duration(text) == seconds
    assert format_go_duration(parse_go_duration(text)) == text


@given(st.integers(0, 10**6), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999_999_999))
def test_sdk_style_duration_strings(hours, minutes, seconds, nanos):
    """The SDK writes `{h}h{m}m{s}s{ms}ms{us}μs`; a Go duration with the same fields parses equal."""
    millis, micros = divmod(nanos // 1000, 1000)
    sdk = f"{hours}h{minutes}m{seconds}s{millis}ms{micros}\u03bcs"
    expected = ((hours * 60 + minutes) * 60 + seconds) * 10**9 + millis * 10**6 + micros * 1000
    assert parse_go_duration(sdk) == expected / 10**9
    assert parse_period(sdk) == Period(expected / 10**9 if expected else None)


instants_ns = st.integers(-62_135_596_800 * 10**9, 253_402_300_798 * 10**9)  # years 1..9999


@given(instants_ns)
def test_rfc3339_round_trip_nanoseconds(ns):
    epoch = ns / 10**9
    text = format_rfc3339(epoch)
    assert parse_due_time(text, 0.0) == epoch
    assert format_rfc3339(parse_due_time(text, 0.0)) == text


@given(st.floats(946_684_800, 4_102_444_800))  # 2000..2100: float spacing is above 1 ns
def test_rfc3339_round_trip_epoch_floats(epoch):
    assert parse_due_time(format_rfc3339(epoch), 0.0) == epoch


@given(
    st.integers(0, 400),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["", "R1/", "R7/"]),
)
def test_iso_period_matches_its_fields(days, hours, minutes, seconds, prefix):
    text = f"{prefix}P{days}DT{hours}H{minutes}M{seconds}S"
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    parsed = parse_period(text, scheduler_limits=False)
    repetitions = int(prefix[1:-1]) if prefix else None
    assert parsed == (Period(float(total), repetitions) if total else Period(None, None))
    assert parse_go_duration(format_go_duration(total)) == total
