"""Expansion of a validated `Rule` into local wall times and UTC instants in one IANA zone.

python-dateutil generates naive wall times; this module maps them to instants (RFC 5545 §3.3.5), applies
COUNT, UNTIL and EXDATE itself, and reads zones only from the pinned tzdata package so every host agrees.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from itertools import dropwhile
from typing import Final, Literal
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, weekday

from workflows.rrule_parse import InvalidRule, Rule

__all__ = ["LAST_YEAR", "beyond_until", "engine", "expand", "load_zone", "to_instant"]

# Stop well before datetime.max so converting a late wall time to UTC cannot overflow.
LAST_YEAR: Final = 9998

_DATEUTIL_FREQ: Final[dict[str, Literal[0, 1, 2, 3, 4, 5]]] = {
    "YEARLY": 0,
    "MONTHLY": 1,
    "WEEKLY": 2,
    "DAILY": 3,
    "HOURLY": 4,
    "MINUTELY": 5,
}


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(names) - {"Factory"}


@lru_cache(maxsize=256)
def load_zone(key: str) -> ZoneInfo:
    """The IANA zone `key` from the tzdata package (not the host's /usr/share/zoneinfo), so results
    depend only on the pinned tzdata version. Raises `InvalidRule` for an unknown name."""
    if key not in _zone_names():
        raise InvalidRule(f"unknown time zone {key!r}: use an IANA name such as 'Europe/Rome'")
    with resources.files("tzdata.zoneinfo").joinpath(*key.split("/")).open("rb") as data:
        return ZoneInfo.from_file(data, key=key)


def engine(rule: Rule, start: datetime, shape: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """dateutil's naive wall times for `rule`, phased from `start`, without COUNT/EXDATE and with
    UNTIL only as a loose bound (the exact inclusive check is `beyond_until`).

    Day-of-period defaults that RFC 5545 takes from DTSTART (weekday for WEEKLY, day of month for
    MONTHLY, month and day for YEARLY) come from `shape`, so a rule re-anchored at another start (the
    completion anchor) keeps the shape of the original series. For ordinary expansion `shape == start`.
    """
    byweekday = [weekday(d.weekday, d.n) for d in rule.byday] or None
    if any(d.n for d in rule.byday) and not all(d.n for d in rule.byday):
        # dateutil intersects plain and ordinal weekdays (BYDAY=MO,1TU gives nothing) where RFC 5545
        # means their union; "every Monday" is the union of its ordinals, which dateutil gets right.
        span = 5 if rule.freq == "MONTHLY" or rule.bymonth else 53
        byweekday = [
            weekday(d.weekday, n) for d in rule.byday for n in ((d.n,) if d.n else range(1, span + 1))
        ]
    bymonthday = list(rule.bymonthday) or None
    bymonth = list(rule.bymonth) or None
    if not rule.byday and not rule.bymonthday:
        if rule.freq == "YEARLY":
            bymonth = bymonth or [shape.month]
            bymonthday = [shape.day]
        elif rule.freq == "MONTHLY":
            bymonthday = [shape.day]
        elif rule.freq == "WEEKLY":
            byweekday = [weekday(shape.weekday())]
    first = start
    if rule.freq == "WEEKLY" and rule.bysetpos:
        # dateutil cuts dtstart's week at dtstart before applying BYSETPOS; RFC 5545 selects from the
        # whole week (from WKST) and only then drops what falls before dtstart.
        first = start - timedelta(days=(start.weekday() - rule.wkst) % 7)
    dates = rrule(
        _DATEUTIL_FREQ[rule.freq],
        dtstart=first,
        interval=rule.interval,
        wkst=rule.wkst,
        byweekday=byweekday,
        bymonthday=bymonthday,
        bymonth=bymonth,
        bysetpos=list(rule.bysetpos) or None,
        until=_wall_limit(rule.until, zone),
    )
    return dropwhile(lambda local: local < start, dates)


def _wall_limit(until: date | None, zone: ZoneInfo) -> datetime | None:
    """A wall time no earlier than any occurrence UNTIL admits, so dateutil stops scanning there."""
    try:
        if isinstance(until, datetime):
            if until.tzinfo is None:
                return until
            # A day of slack covers offset changes between the nominal and the real wall time.
            return until.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
        if until is not None:
            return datetime.combine(until + timedelta(days=1), time())
    except OverflowError:
        pass
    return None


def to_instant(local: datetime, zone: ZoneInfo, *, skip_gap: bool) -> datetime | None:
    """The UTC instant of wall time `local` in `zone`, per RFC 5545 §3.3.5.

    Ambiguous times (the repeated hour when clocks fall back) take the first reading (fold=0).
    Nonexistent times (the hour skipped when clocks spring forward) use the offset from before the gap,
    i.e. they shift forward by the gap: 02:30 on a day that jumps 02:00→03:00 happens at 03:30. With
    `skip_gap` (HOURLY/MINUTELY rules) they are dropped instead (RFC 5545 §3.3.10), because shifting
    would land on, or past, the next real slot.
    """
    instant = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if skip_gap and instant.astimezone(zone).replace(tzinfo=None) != local:
        return None
    return instant


def beyond_until(until: date | None, local: datetime, instant: datetime) -> bool:
    """Whether an occurrence lies after UNTIL (which is inclusive), in UNTIL's own form."""
    if until is None:
        return False
    if isinstance(until, datetime):
        return instant > until if until.tzinfo is not None else local > until
    return local.date() > until


def expand(
    rule: Rule,
    dtstart: datetime,
    zone: ZoneInfo,
    exdates: Collection[datetime],
    index_offset: int = 0,
) -> Iterator[tuple[int, datetime, datetime]]:
    """Every occurrence as `(index, local, at_utc)`, in order.

    The index is the position in the rule's sequence (COUNT bounds it), so an EXDATE leaves a hole
    instead of renumbering later occurrences. Instants are strictly increasing: a wall time whose
    instant is not after the previous one (a gap shift colliding with the next slot) is not an
    occurrence and is not counted.
    """
    position = 0
    previous: datetime | None = None
    for local in engine(rule, dtstart, dtstart, zone):
        if (rule.count is not None and position >= rule.count) or local.year > LAST_YEAR:
            return
        instant = to_instant(local, zone, skip_gap=rule.subdaily)
        if instant is None or (previous is not None and instant <= previous):
            continue
        if beyond_until(rule.until, local, instant):
            return
        previous = instant
        index = position + index_offset
        position += 1
        if local not in exdates:
            yield index, local, instant
