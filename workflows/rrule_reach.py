"""Rejecting rules that can never fire from their dtstart, before anyone waits on them.

dateutil scans empty periods until the year 9999 looking for a match, which takes seconds, and a series
built on such a rule would silently never run; these checks turn the common cases into clear errors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from workflows.rrule_parse import WEEKDAYS, InvalidRule, Rule

__all__ = ["check_reachable"]

_LONGEST_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_LENGTHS: Final = (
    (31,),
    (28, 29),
    (31,),
    (30,),
    (31,),
    (30,),
    (31,),
    (31,),
    (30,),
    (31,),
    (30,),
    (31,),
)


def check_reachable(rule: Rule, dtstart: datetime, shape: datetime | None = None) -> None:
    """Raise `InvalidRule` when `rule` expanded from `dtstart` provably never produces an occurrence.

    `shape` is the datetime the rule's default day of month comes from, when not `dtstart` (see
    `rrule_expand.engine`).
    """
    months = ", ".join(map(str, rule.bymonth))
    day = (shape or dtstart).day
    if rule.freq in ("MONTHLY", "YEARLY") and rule.bymonth and not (rule.byday or rule.bymonthday):
        if all(day > _LONGEST_MONTH[m - 1] for m in rule.bymonth):
            raise InvalidRule(
                f"dtstart's day {day} never occurs in BYMONTH={months}; add BYMONTHDAY",
                "BYMONTH",
            )
    if rule.freq == "MONTHLY" and rule.bymonth:
        visited = {(dtstart.month - 1 + j * rule.interval) % 12 + 1 for j in range(12)}
        if not visited & set(rule.bymonth):
            raise InvalidRule(
                f"every {rule.interval} months from dtstart's month visits only months "
                f"{', '.join(map(str, sorted(visited)))}, none of BYMONTH={months}",
                "BYMONTH",
            )
    if rule.freq == "DAILY" and rule.byday:
        visited = {(dtstart.weekday() + j * rule.interval) % 7 for j in range(7)}
        if not visited & {d.weekday for d in rule.byday}:
            names = ", ".join(WEEKDAYS[w] for w in sorted(visited))
            raise InvalidRule(
                f"every {rule.interval} days from dtstart visits only {names}, none of BYDAY",
                "BYDAY",
            )
    if rule.bymonthday and rule.byday and (rule.freq == "MONTHLY" or rule.bymonth):
        lengths = {n for m in (rule.bymonth or range(1, 13)) for n in _MONTH_LENGTHS[m - 1]}
        if not any(_weekday_days(rule, n) & _month_days(rule, n) for n in lengths):
            raise InvalidRule("BYMONTHDAY and BYDAY never fall on the same day", "BYDAY")


def _month_days(rule: Rule, length: int) -> set[int]:
    """Days of a month of `length` days that BYMONTHDAY selects."""
    return {d if d > 0 else length + 1 + d for d in rule.bymonthday if abs(d) <= length}


def _weekday_days(rule: Rule, length: int) -> set[int]:
    """Days of a month of `length` days on which some BYDAY entry can fall, whatever the weekdays."""
    days: set[int] = set()
    for entry in rule.byday:
        if entry.n is None:
            return set(range(1, length + 1))
        k = abs(entry.n)
        first = 7 * (k - 1) + 1 if entry.n > 0 else length - 7 * k + 1
        days.update(d for d in range(first, first + 7) if 1 <= d <= length)
    return days
