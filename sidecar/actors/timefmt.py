"""The time strings of actor reminders and timers, parsed as daprd parses them (Go and dapr/kit).

`dueTime` and `ttl` accept a Go duration, an ISO 8601 duration or an RFC 3339 instant; `period` a Go
duration or an ISO 8601 duration with an optional `Rn/` repetition prefix. Error messages are
daprd's; callers prefix them the way daprd does (e.g. "error parsing reminder due time: ").
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "Period",
    "format_every",
    "format_go_duration",
    "format_rfc3339",
    "is_rfc3339",
    "parse_due_time",
    "parse_go_duration",
    "parse_iso_duration",
    "parse_period",
    "parse_ttl",
]

_NS = 1_000_000_000
_MAX_NS = (1 << 63) - 1  # Go's time.Duration is an int64 of nanoseconds
_SECONDS_PER_DAY = 86_400

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # µ MICRO SIGN
    "\u03bcs": 1_000,  # μ GREEK SMALL LETTER MU (what the Python SDK sends)
    "ms": 1_000_000,
    "s": _NS,
    "m": 60 * _NS,
    "h": 3600 * _NS,
}


@dataclass(frozen=True)
class Period:
    """A parsed reminder/timer period: `seconds` None = one-shot; `repetitions` None = unlimited."""

    seconds: float | None
    repetitions: int | None = None


@dataclass(frozen=True)
class _Iso:
    years: int
    months: int
    days: int
    nanos: int
    repetition: int  # -1 = no `Rn/` prefix


# -- Go durations -------------------------------------------------------------------------------


def _go_quote(s: str) -> str:
    """Go's time.quote: non-ASCII and control bytes become \\xHH."""
    out: list[str] = []
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        elif ch in '"\\':
            out.append("\\" + ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _go_duration_ns(orig: str) -> int:
    """Go's time.ParseDuration, bit for bit (including its float64 rounding of fractions)."""
    invalid = ValueError("time: invalid duration " + _go_quote(orig))
    s, neg = orig, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        digits = s[:i].lstrip("0")
        if len(digits) > 19:  # beyond int64 whatever follows; avoids huge int parsing
            raise invalid
        pre, whole, s = i > 0, int(digits or "0"), s[i:]
        if whole > 1 << 63:
            raise invalid
        frac, scale, post = 0, 1.0, False
        if s[:1] == ".":
            s, i, overflow = s[1:], 0, False
            while i < len(s) and "0" <= s[i] <= "9":
                if not overflow:
                    if frac > _MAX_NS // 10 or frac * 10 + int(s[i]) > 1 << 63:
                        overflow = True
                    else:
                        frac, scale = frac * 10 + int(s[i]), scale * 10
                i += 1
            post, s = i > 0, s[i:]
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise ValueError("time: missing unit in duration " + _go_quote(orig))
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise ValueError(f"time: unknown unit {_go_quote(unit_name)} in duration {_go_quote(orig)}")
        if whole > (1 << 63) // unit:
            raise invalid
        value = whole * unit
        if frac > 0:
            value += int(float(frac) * (float(unit) / scale))
            if value > 1 << 63:
                raise invalid
        total += value
        if total > 1 << 63:
            raise invalid
    if neg:
        return -total
    if total > _MAX_NS:
        raise invalid
    return total


def parse_go_duration(s: str) -> float:
    """Seconds of a Go duration (`1h30m`, `500ms`, `0h0m5s0ms0μs`, `-1.5s`, `0`)."""
    return _go_duration_ns(s) / _NS


def _frac_digits(value: int, digits: int) -> str:
    text = f"{value:0{digits}d}".rstrip("0")
    return "." + text if text else ""


def format_go_duration(seconds: float) -> str:
    """Go's Duration.String(): `1h30m0s`, `1.5s`, `500ms`, `1µs`, `0s`.

    Rounded to nanoseconds and clamped to Go's int64 range.
    """
    ns = min(max(round(Fraction(seconds) * _NS), -(1 << 63)), _MAX_NS)  # Go's int64 range
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u == 0:
        return "0s"
    if u < _NS:
        for size, digits, unit in ((1_000_000, 6, "ms"), (1_000, 3, "\u00b5s"), (1, 0, "ns")):
            if u >= size:
                whole, rest = divmod(u, size)
                return f"{sign}{whole}{_frac_digits(rest, digits) if digits else ''}{unit}"
    whole_seconds, rest = divmod(u, _NS)
    hours, left = divmod(whole_seconds, 3600)
    minutes, secs = divmod(left, 60)
    text = f"{secs}{_frac_digits(rest, 9)}s"
    if hours:
        text = f"{hours}h{minutes}m{text}"
    elif minutes:
        text = f"{minutes}m{text}"
    return sign + text


def format_every(seconds: float) -> str:
    """The Scheduler's schedule string for a period (`@every 1s`), as 1.15+ GET reminder returns it."""
    return "@every " + format_go_duration(seconds)


# -- ISO 8601 durations (dapr/kit time.ParseISO8601Duration) --------------------------------------


def _parse_iso(s: str) -> _Iso | None:
    """dapr/kit's ISO 8601 scanner, or None when `s` is not in that format.

    Stricter than kit on purpose: it rejects signs, unknown characters and trailing digits without a
    designator (kit silently ignores them), so a typo fails loudly instead of meaning zero.
    """
    n = len(s)
    if n < 2:
        return None
    i, repetition = 0, -1
    if s[0] == "R":
        slash = s.find("/")
        end = n if slash < 0 else slash
        if end < 2 or not s[1:end].isascii() or not s[1:end].isdigit():
            return None
        repetition, i = int(s[1:end]), end + 1
        if i >= n:
            return _Iso(0, 0, 0, 0, repetition)
    if s[i] != "P":
        return None
    i += 1
    years = months = days = nanos = 0
    start, in_time = i, False
    for pos in range(i, n):
        ch = s[pos]
        if "0" <= ch <= "9":
            continue
        if ch == "T":
            if start != pos:
                return None
            in_time, start = True, pos + 1
            continue
        if ch not in "YWDHSM" or start == pos or (ch in "YWD" and in_time):
            return None
        if ch in "HS" and not in_time:
            return None
        value = int(s[start:pos])
        if ch == "Y":
            years = value
        elif ch == "W":
            days += 7 * value
        elif ch == "D":
            days += value
        elif ch == "H":
            nanos += value * 3600 * _NS
        elif ch == "S":
            nanos += value * _NS
        elif in_time:
            nanos += value * 60 * _NS
        else:
            months = value
        start = pos + 1
    if start != n:
        return None  # digits with no designator
    return _Iso(years, months, days, nanos, repetition)


def parse_iso_duration(s: str) -> float:
    """Seconds of an ISO 8601 duration with integer parts (`PT2H30M`, `P1DT2H`, `PT10S`).

    Days are 86400 s (UTC); years and months have no fixed length and are rejected here.
    """
    iso = _parse_iso(s)
    if iso is None:
        raise ValueError("unsupported ISO8601 duration format: " + s)
    if iso.repetition != -1:
        raise ValueError("repetitions are not allowed")
    if iso.years or iso.months:
        raise ValueError(f"unsupported ISO8601 duration format: {s} (years or months)")
    return (iso.days * _SECONDS_PER_DAY * _NS + iso.nanos) / _NS


# -- RFC 3339 instants ------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _parse_rfc3339_ns(s: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 instant (Go's time.RFC3339 layout), or None."""
    m = _RFC3339.fullmatch(s)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return None
    if not (1 <= year and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    offset = 0
    zone = m.group(8)
    if zone != "Z":
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh >= 24 or om >= 60:
            return None
        offset = (oh * 3600 + om * 60) * (1 if zone[0] == "+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    nanos = int((m.group(7) or "")[:9].ljust(9, "0"))
    return seconds * _NS + nanos


def is_rfc3339(s: str) -> bool:
    """Whether `s` is an RFC 3339 instant (what Go's time.Parse with RFC3339Nano accepts)."""
    return _parse_rfc3339_ns(s) is not None


def format_rfc3339(epoch: float) -> str:
    """UTC RFC 3339 with trailing-zero-trimmed nanoseconds (Go's time.RFC3339Nano)."""
    ns = round(Fraction(epoch) * _NS)
    seconds, nanos = divmod(ns, _NS)
    try:
        t = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"instant {epoch!r} is outside years 1..9999") from None
    stamp = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return stamp + _frac_digits(nanos, 9) + "Z"


def _go_time_string(epoch: float) -> str:
    """What Go prints for a UTC time.Time with %s (used in daprd's expiry message)."""
    text = format_rfc3339(epoch)[:-1].replace("T", " ")
    return f"{text} +0000 UTC"


# -- dueTime, period, ttl -------------------------------------------------------------------------


def _add_date(epoch: float, years: int, months: int, days: int) -> float:
    """Go's Time.AddDate in UTC: month and day overflow normalize (Jan 31 + 1 month = Mar 2/3)."""
    if not (years or months or days):
        return epoch
    whole = math.floor(epoch)
    day_number, second_of_day = divmod(whole, _SECONDS_PER_DAY)
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day_number)
    year, month0 = divmod(date.year * 12 + date.month - 1 + years * 12 + months, 12)
    shifted = dt.date(year, month0 + 1, 1) + dt.timedelta(days=date.day - 1 + days)
    new_days = (shifted - dt.date(1970, 1, 1)).days
    return new_days * _SECONDS_PER_DAY + second_of_day + (epoch - whole)


def _parse_time(s: str, start: float) -> float:
    """dapr/kit time.ParseTime: ISO duration or Go duration after `start`, or an RFC 3339 instant."""
    iso = _parse_iso(s)
    if iso is not None:
        if iso.repetition != -1:
            raise ValueError("repetitions are not allowed")
        return _add_date(start, iso.years, iso.months, iso.days) + iso.nanos / _NS
    try:
        return start + _go_duration_ns(s) / _NS
    except ValueError:
        pass
    nanos = _parse_rfc3339_ns(s)
    if nanos is not None:
        return nanos / _NS
    raise ValueError("unsupported time/duration format: " + s)


def parse_due_time(s: str, now: float) -> float:
    """Absolute epoch of a `dueTime`; the empty string means now."""
    return now if s == "" else _parse_time(s, now)


def parse_period(s: str | None, *, scheduler_limits: bool = True) -> Period:
    """A `period`: Go duration, or ISO 8601 duration with optional `Rn/` prefix.

    Empty/None = one-shot. A zero-length period also means one-shot (daprd's `HasRepeats`).
    `scheduler_limits` applies the 1.15+ Scheduler rule that rejects day/week parts; years and
    months are always rejected (no fixed length for the job scheduler).
    """
    if not s:
        return Period(None, None)
    iso = _parse_iso(s)
    if iso is None:
        try:
            iso = _Iso(0, 0, 0, _go_duration_ns(s), -1)
        except ValueError:
            raise ValueError("parse error: unsupported duration format: " + s) from None
    if iso.repetition == 0:
        raise ValueError("has zero repetitions")
    if iso.years or iso.months or (scheduler_limits and iso.days):
        raise ValueError("unsupported period format: " + s)
    nanos = iso.days * _SECONDS_PER_DAY * _NS + iso.nanos
    if nanos < 0:
        raise ValueError("unsupported period format: " + s)
    repetitions = None if iso.repetition == -1 else iso.repetition
    if nanos == 0:
        return Period(None, None)
    return Period(nanos / _NS, repetitions)


def parse_ttl(s: str, first_due: float, now: float) -> float:
    """Absolute expiry of a `ttl` (RFC 3339, or a duration measured from the first due time)."""
    expiry = _parse_time(s, first_due)
    if expiry <= first_due or expiry < now:
        raise ValueError(f"has already expired: dueTime: {_go_time_string(first_due)} TTL: {s}")
    return expiry
