"""RFC 5545 RRULE text to a validated `Rule`, strict where python-dateutil is lenient.

Every rejection is one `InvalidRule` whose message names the offending rule part, so the API can report it
as a field error instead of letting dateutil silently reinterpret the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

__all__ = [
    "DEFAULT_MIN_INTERVAL",
    "MAX_RULE_LENGTH",
    "WEEKDAYS",
    "Frequency",
    "InvalidRule",
    "Rule",
    "WeekdayRule",
    "parse_rule",
]

Frequency = Literal["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]

WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DEFAULT_MIN_INTERVAL: Final = timedelta(hours=1)
MAX_RULE_LENGTH: Final = 1000
MAX_INTERVAL: Final = 10_000

_FREQUENCIES: Final[tuple[Frequency, ...]] = (
    "YEARLY",
    "MONTHLY",
    "WEEKLY",
    "DAILY",
    "HOURLY",
    "MINUTELY",
)
_SUPPORTED: Final = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"}
)
# Parts RFC 5545/7529 define that we deliberately refuse, with the reason shown to the user.
_UNSUPPORTED: Final = {
    "BYSECOND": "the time of day comes from dtstart",
    "BYMINUTE": "the time of day comes from dtstart",
    "BYHOUR": "the time of day comes from dtstart",
    "BYYEARDAY": "use BYMONTH with BYMONTHDAY",
    "BYWEEKNO": "use BYMONTH with BYDAY",
    "RSCALE": "only the Gregorian calendar is supported",
    "SKIP": "only the Gregorian calendar is supported",
}
_LONGEST_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NAME = re.compile(r"[A-Z][A-Z0-9-]*\Z")
_INT = re.compile(r"[+-]?[0-9]{1,9}\Z")
_DIGITS = re.compile(r"[0-9]{1,9}\Z")
_BYDAY = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)\Z")
_UNTIL = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T([0-9]{2})([0-9]{2})([0-9]{2})(Z?))?\Z")


class InvalidRule(ValueError):
    """A recurrence rule or schedule that cannot be accepted. Not retryable: the input must change.

    Attributes:
        part: the RRULE part at fault (for example ``"BYMONTHDAY"``), or None when no single part is.
    """

    def __init__(self, message: str, part: str | None = None) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True, slots=True)
class WeekdayRule:
    """One BYDAY entry: a weekday (0 = Monday) and, for `1MO` or `-1FR`, its ordinal in the month/year."""

    weekday: int
    n: int | None = None

    def __str__(self) -> str:
        return f"{self.n or ''}{WEEKDAYS[self.weekday]}"


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated RRULE. `until` is a `date` (inclusive local date), a naive `datetime` (local wall
    time) or an aware UTC `datetime` (instant), matching the three RFC 5545 UNTIL forms."""

    freq: Frequency
    interval: int = 1
    count: int | None = None
    until: date | None = None
    byday: tuple[WeekdayRule, ...] = ()
    bymonthday: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()
    bysetpos: tuple[int, ...] = ()
    wkst: int = 0

    @property
    def subdaily(self) -> bool:
        return self.freq in ("HOURLY", "MINUTELY")

    @property
    def has_by_parts(self) -> bool:
        return bool(self.byday or self.bymonthday or self.bymonth or self.bysetpos)

    @property
    def nominal_spacing(self) -> timedelta:
        """The shortest gap the rule is designed to produce (DST shifts aside)."""
        if self.freq == "MINUTELY":
            return timedelta(minutes=self.interval)
        if self.freq == "HOURLY":
            return timedelta(hours=self.interval)
        if self.freq == "DAILY":
            return timedelta(days=self.interval)
        return timedelta(days=1)  # weekly and longer rules may hit consecutive days

    def __str__(self) -> str:
        parts = [f"FREQ={self.freq}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if self.until is not None:
            parts.append(f"UNTIL={_format_until(self.until)}")
        for name, values in (
            ("BYMONTH", self.bymonth),
            ("BYMONTHDAY", self.bymonthday),
            ("BYDAY", self.byday),
            ("BYSETPOS", self.bysetpos),
        ):
            if values:
                parts.append(f"{name}={','.join(str(v) for v in values)}")
        if self.wkst:
            parts.append(f"WKST={WEEKDAYS[self.wkst]}")
        return ";".join(parts)


def parse_rule(text: str, *, min_interval: timedelta | None = DEFAULT_MIN_INTERVAL) -> Rule:
    """Parse and validate an RRULE (an optional ``RRULE:`` prefix is accepted; names are case-insensitive).

    `min_interval` is the operator's floor for HOURLY/MINUTELY rules; None skips that policy check
    (used when re-reading a schedule that was accepted earlier). Raises `InvalidRule`.
    """
    values = _split(text)
    if "FREQ" not in values:
        raise InvalidRule("FREQ is required", "FREQ")
    freq = values["FREQ"]
    if freq == "SECONDLY":
        raise InvalidRule("FREQ=SECONDLY is not supported", "FREQ")
    if freq not in _FREQUENCIES:
        raise InvalidRule(f"FREQ must be one of {', '.join(_FREQUENCIES)}, not {freq!r}", "FREQ")
    if "COUNT" in values and "UNTIL" in values:
        raise InvalidRule("COUNT and UNTIL cannot be used together", "COUNT")
    rule = Rule(
        freq=freq,
        interval=_bounded(values, "INTERVAL", 1, MAX_INTERVAL) or 1,
        count=_bounded(values, "COUNT", 1, 999_999_999),
        until=_parse_until(values["UNTIL"]) if "UNTIL" in values else None,
        byday=_parse_byday(values.get("BYDAY")),
        bymonthday=_int_list(values, "BYMONTHDAY", 31),
        bymonth=_int_list(values, "BYMONTH", 12, signed=False),
        bysetpos=_int_list(values, "BYSETPOS", 366),
        wkst=_parse_wkst(values.get("WKST")),
    )
    _check_combinations(rule)
    if min_interval is not None and rule.nominal_spacing < min_interval:
        raise InvalidRule(
            f"FREQ={rule.freq};INTERVAL={rule.interval} repeats every "
            f"{_describe(rule.nominal_spacing)}, more often than the minimum interval of "
            f"{_describe(min_interval)}",
            "INTERVAL" if "INTERVAL" in values else "FREQ",
        )
    return rule


def _split(text: str) -> dict[str, str]:
    if not isinstance(text, str):
        raise InvalidRule("the rule must be a string")
    if len(text) > MAX_RULE_LENGTH:
        raise InvalidRule(f"the rule is longer than {MAX_RULE_LENGTH} characters")
    body = text.strip()
    if body[:6].upper() == "RRULE:":
        body = body[6:]
    body = body.removesuffix(";")
    if not body:
        raise InvalidRule("the rule is empty", "FREQ")
    values: dict[str, str] = {}
    for chunk in body.split(";"):
        name, sep, value = chunk.partition("=")
        name = name.upper()
        if not sep or not _NAME.match(name):
            raise InvalidRule(f"malformed rule part {chunk!r}: expected NAME=VALUE")
        if name in values:
            raise InvalidRule(f"{name} appears more than once", name)
        if name in _UNSUPPORTED:
            raise InvalidRule(f"{name} is not supported: {_UNSUPPORTED[name]}", name)
        if name not in _SUPPORTED:
            raise InvalidRule(f"unknown rule part {name}", name)
        if not value:
            raise InvalidRule(f"{name} has no value", name)
        values[name] = value.upper()
    return values


def _bounded(values: dict[str, str], name: str, low: int, high: int) -> int | None:
    raw = values.get(name)
    if raw is None:
        return None
    if not _DIGITS.match(raw) or not low <= int(raw) <= high:
        raise InvalidRule(f"{name} must be a whole number from {low} to {high}, not {raw!r}", name)
    return int(raw)


def _int_list(values: dict[str, str], name: str, limit: int, *, signed: bool = True) -> tuple[int, ...]:
    raw = values.get(name)
    if raw is None:
        return ()
    span = f"1..{limit} or -{limit}..-1" if signed else f"1..{limit}"
    found: set[int] = set()
    for item in raw.split(","):
        ok = bool(_INT.match(item)) and (signed or item[0] not in "+-")
        number = int(item) if ok else 0
        if not ok or number == 0 or abs(number) > limit:
            raise InvalidRule(f"{name} values must be in {span}, not {item!r}", name)
        found.add(number)
    return tuple(sorted(found))


def _parse_byday(raw: str | None) -> tuple[WeekdayRule, ...]:
    if raw is None:
        return ()
    found: set[WeekdayRule] = set()
    for item in raw.split(","):
        match = _BYDAY.match(item)
        if match is None:
            raise InvalidRule(f"BYDAY entries look like MO, 1MO or -1FR, not {item!r}", "BYDAY")
        n = int(match[1]) if match[1] else None
        if n is not None and not 1 <= abs(n) <= 53:
            raise InvalidRule(f"BYDAY ordinal must be in 1..53 or -53..-1, not {item!r}", "BYDAY")
        found.add(WeekdayRule(WEEKDAYS.index(match[2]), n))
    return tuple(sorted(found, key=lambda d: (d.weekday, d.n or 0)))


def _parse_wkst(raw: str | None) -> int:
    if raw is None:
        return 0
    if raw not in WEEKDAYS:
        raise InvalidRule(f"WKST must be one of {', '.join(WEEKDAYS)}, not {raw!r}", "WKST")
    return WEEKDAYS.index(raw)


def _parse_until(raw: str) -> date:
    match = _UNTIL.match(raw)
    try:
        if match is None:
            raise ValueError(raw)
        year, month, day = int(match[1]), int(match[2]), int(match[3])
        if match[4] is None:
            return date(year, month, day)
        moment = datetime(year, month, day, int(match[4]), int(match[5]), int(match[6]))
    except ValueError:
        raise InvalidRule(
            f"UNTIL must be YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ, not {raw!r}", "UNTIL"
        ) from None
    return moment.replace(tzinfo=UTC) if match[7] else moment


def _format_until(until: date) -> str:
    if not isinstance(until, datetime):
        return until.strftime("%Y%m%d")
    return until.strftime("%Y%m%dT%H%M%S") + ("Z" if until.tzinfo is not None else "")


def _check_combinations(rule: Rule) -> None:
    """Reject what RFC 5545 forbids and what can provably never produce an occurrence."""
    ordinals = [d for d in rule.byday if d.n is not None]
    if ordinals and rule.freq not in ("MONTHLY", "YEARLY"):
        raise InvalidRule("BYDAY ordinals such as 1MO need FREQ=MONTHLY or FREQ=YEARLY", "BYDAY")
    if ordinals and (rule.freq == "MONTHLY" or rule.bymonth):
        bad = [str(d) for d in ordinals if abs(d.n or 0) > 5]
        if bad:
            raise InvalidRule(f"BYDAY={','.join(bad)}: a month has at most 5 of each weekday", "BYDAY")
    if rule.bymonthday and rule.freq == "WEEKLY":
        raise InvalidRule("BYMONTHDAY cannot be used with FREQ=WEEKLY", "BYMONTHDAY")
    if rule.bysetpos and not (rule.byday or rule.bymonthday or rule.bymonth):
        raise InvalidRule("BYSETPOS needs another BYxxx part to select from", "BYSETPOS")
    if rule.bymonthday and rule.bymonth:
        longest = max(_LONGEST_MONTH[m - 1] for m in rule.bymonth)
        if all(abs(d) > longest for d in rule.bymonthday):
            raise InvalidRule(
                f"BYMONTHDAY={','.join(map(str, rule.bymonthday))} never occurs in "
                f"BYMONTH={','.join(map(str, rule.bymonth))}",
                "BYMONTHDAY",
            )
    if rule.bysetpos:
        most = _max_candidates(rule)
        if all(abs(p) > most for p in rule.bysetpos):
            raise InvalidRule(
                f"BYSETPOS={','.join(map(str, rule.bysetpos))} can never match: each "
                f"{rule.freq.lower()} period has at most {most} candidate(s)",
                "BYSETPOS",
            )


def _max_candidates(rule: Rule) -> int:
    """An upper bound on the dates one period offers to BYSETPOS."""
    if rule.freq in ("DAILY", "HOURLY", "MINUTELY"):
        return 1
    if rule.freq == "WEEKLY":
        return len({d.weekday for d in rule.byday}) or 1
    months = 1 if rule.freq == "MONTHLY" else len(rule.bymonth) or 12
    if rule.bymonthday:
        return len(rule.bymonthday) * months
    if rule.byday and (rule.freq == "MONTHLY" or rule.bymonth):
        return sum(1 if d.n else 5 for d in rule.byday) * months
    if rule.byday:
        return sum(1 if d.n else 53 for d in rule.byday)
    return months if rule.bymonth else 1


def _describe(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes and minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return str(span)
