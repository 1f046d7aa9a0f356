"""Recurring-task schedules: pure, deterministic occurrence math for the series workflow.

Nothing here reads the clock: every "now" is an argument, so the same inputs give the same occurrences in
workflow code, in activities and on replay. Occurrences are wall-clock times in the series' IANA zone.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from itertools import count, islice
from typing import Final, Literal, Self

from dateutil.relativedelta import relativedelta
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NaiveDatetime,
    field_validator,
    model_validator,
)

from workflows.rrule_expand import LAST_YEAR, beyond_until, engine, expand, load_zone, to_instant
from workflows.rrule_parse import InvalidRule, Rule, parse_rule
from workflows.rrule_reach import check_reachable

__all__ = [
    "DEFAULT_GRACE",
    "MAX_CATCH_UP",
    "MAX_UPCOMING",
    "Occurrence",
    "Schedule",
    "due_on_resume",
    "iter_occurrences",
    "next_after_completion",
    "next_occurrences",
    "occurrence_after",
    "occurrence_key",
]

logger = logging.getLogger(__name__)

MAX_UPCOMING: Final = 1000
MAX_CATCH_UP: Final = 1000
DEFAULT_GRACE: Final = timedelta(hours=1)
_EARLIEST_YEAR: Final = 1900
_LATEST_YEAR: Final = 9000
_STEP: Final[dict[str, Callable[[int], relativedelta]]] = {
    "YEARLY": lambda n: relativedelta(years=n),
    "MONTHLY": lambda n: relativedelta(months=n),
    "WEEKLY": lambda n: relativedelta(weeks=n),
    "DAILY": lambda n: relativedelta(days=n),
    "HOURLY": lambda n: relativedelta(hours=n),
    "MINUTELY": lambda n: relativedelta(minutes=n),
}


@lru_cache(maxsize=512)
def _stored_rule(text: str) -> Rule:
    # The minimum-interval policy is checked once, when the API accepts the rule (parse_rule).
    return parse_rule(text, min_interval=None)


class Schedule(BaseModel):
    """A series' recurrence: an RRULE expanded from `dtstart` in zone `tz`.

    `dtstart` and `exdates` are naive wall times in `tz`. The rule is stored in canonical form. The
    operator's minimum interval is policy, checked where a rule is accepted:
    `parse_rule(rule, min_interval=...)`. Invalid input raises pydantic's ValidationError (a
    ValueError) whose message comes from `InvalidRule`.

    A `dtstart` that does not match the rule is not itself an occurrence (RFC 5545 leaves that case
    undefined; dateutil and most clients skip it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(max_length=1000)
    dtstart: datetime
    tz: str = Field(max_length=64)
    exdates: tuple[datetime, ...] = Field(default=(), max_length=1000)
    anchor: Literal["schedule", "completion"] = "schedule"
    catch_up: Literal["skip", "latest", "all"] = "skip"

    @field_validator("rule")
    @classmethod
    def _canonical_rule(cls, value: str) -> str:
        return str(_stored_rule(value))

    @field_validator("dtstart")
    @classmethod
    def _wall_time(cls, value: datetime) -> datetime:
        return _wall(value, "dtstart")

    @field_validator("exdates")
    @classmethod
    def _wall_times(cls, value: tuple[datetime, ...]) -> tuple[datetime, ...]:
        return tuple(sorted({_wall(v, "exdates") for v in value}))

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        load_zone(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        rule = self.parsed_rule
        start = self.dtstart.replace(tzinfo=load_zone(self.tz)).astimezone(UTC)
        if beyond_until(rule.until, self.dtstart, start):
            raise InvalidRule("UNTIL is before dtstart", "UNTIL")
        check_reachable(rule, self.dtstart)
        return self

    @property
    def parsed_rule(self) -> Rule:
        return _stored_rule(self.rule)


class Occurrence(BaseModel):
    """One occurrence of a series.

    `index` counts from 0 at the first occurrence and is stable: COUNT bounds it and an EXDATE leaves a
    hole rather than renumbering. `local` is the rule's nominal wall time in the series' zone (it can
    name a nonexistent time on a spring-forward day); `at_utc` is the instant it is due.
    """

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    local: NaiveDatetime
    at_utc: AwareDatetime

    @field_validator("at_utc")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


def occurrence_key(series_id: str, occurrence: Occurrence) -> str:
    """The business key of an occurrence (`"{series_id}:{index}"`), for idempotent recreation."""
    if not series_id:
        raise ValueError("series_id must not be empty")
    return f"{series_id}:{occurrence.index}"


def iter_occurrences(schedule: Schedule, *, index_offset: int = 0) -> Iterator[Occurrence]:
    """Every occurrence from dtstart on, lazily. `index_offset` is the index of this schedule's
    first occurrence in its series (non-zero after the rule was edited mid-series); COUNT still
    counts from this schedule's dtstart. Cost is linear in occurrences since dtstart (~5 µs each)."""
    return _after(schedule, None, index_offset)


def next_occurrences(
    schedule: Schedule, after_utc: datetime, n: int, *, index_offset: int = 0
) -> list[Occurrence]:
    """The next `n` (at most MAX_UPCOMING) occurrences due strictly after `after_utc`."""
    if not 0 <= n <= MAX_UPCOMING:
        raise ValueError(f"n must be between 0 and {MAX_UPCOMING}, not {n}")
    after = _utc(after_utc, "after_utc")
    upcoming = _after(schedule, after, index_offset)
    return list(islice(upcoming, n))


def occurrence_after(schedule: Schedule, after_utc: datetime, *, index_offset: int = 0) -> Occurrence | None:
    """The first occurrence due strictly after `after_utc`; None once COUNT or UNTIL has ended it."""
    return next(_after(schedule, _utc(after_utc, "after_utc"), index_offset), None)


def due_on_resume(
    schedule: Schedule,
    last_done_index: int | None,
    last_done_at_utc: datetime,
    now_utc: datetime,
    *,
    index_offset: int = 0,
    grace: timedelta = DEFAULT_GRACE,
    limit: int = MAX_CATCH_UP,
) -> list[Occurrence]:
    """The occurrences to create now, after a timer fired or the engine came back, per `catch_up`.

    For anchor="schedule", the candidates are the occurrences after the last one handled
    (`index > last_done_index` and `at_utc > last_done_at_utc`; pass None and the series' creation
    time when none was handled yet) that are due by `now_utc`:

    - "skip": only the newest candidate, and only if it is at most `grace` late (a timer firing a little
      late is on time); older ones are dropped and the caller schedules the next future occurrence.
    - "latest": only the newest candidate, however late.
    - "all": every candidate, oldest first; beyond `limit` only the newest `limit` are kept (logged).

    For anchor="completion", at most one occurrence can be pending, the one computed from the last
    completion (`last_done_at_utc` is then the completion time; with no completion yet, the first rule
    occurrence after it). It is returned whenever it is due, under every policy: skipping it would
    stall the series, as the next one is only computed from its completion.
    """
    now = _utc(now_utc, "now_utc")
    last_at = _utc(last_done_at_utc, "last_done_at_utc")
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    if schedule.anchor == "completion":
        pending = (
            occurrence_after(schedule, last_at, index_offset=index_offset)
            if last_done_index is None
            else next_after_completion(schedule, last_at, last_done_index, index_offset=index_offset)
        )
        return [pending] if pending is not None and pending.at_utc <= now else []
    kept: deque[Occurrence] = deque(maxlen=limit if schedule.catch_up == "all" else 1)
    missed = 0
    for occurrence in _after(schedule, last_at, index_offset):
        if occurrence.at_utc > now:
            break
        if last_done_index is None or occurrence.index > last_done_index:
            kept.append(occurrence)
            missed += 1
    if schedule.catch_up == "all":
        if missed > limit:
            logger.warning("catch-up of %d missed occurrences truncated to the newest %d", missed, limit)
        return list(kept)
    if schedule.catch_up == "skip" and kept and now - kept[-1].at_utc > grace:
        return []
    return list(kept)


def next_after_completion(
    schedule: Schedule, completed_at_utc: datetime, previous_index: int, *, index_offset: int = 0
) -> Occurrence | None:
    """The occurrence after `previous_index` for anchor="completion" (Todoist's "every!").

    The rule restarts from the completion, keeping the series' time of day in its zone, and the next
    occurrence falls on a later local day than the completion (a later hour/minute for HOURLY/MINUTELY):

    - No BYxxx part: completion day + INTERVAL units at dtstart's time. DAILY;INTERVAL=3 completed on
      Monday → Thursday; WEEKLY → the same weekday a week later; MONTHLY completed on 31 January →
      28/29 February (clamped to the month end, unlike rule expansion); YEARLY from 29 February → 28
      February; HOURLY;INTERVAL=2 completed at 10:17 with dtstart at :00 → 12:00.
    - With BYxxx parts: the first rule date after the completion day, the interval counted from the
      completion's period and defaults (weekday, day of month) from dtstart. WEEKLY;BYDAY=MO,TH
      completed on Tuesday → Thursday; MONTHLY;INTERVAL=3;BYMONTHDAY=1 completed on 20 January →
      1 April. If the interval counted from there can never meet the BY days (MONTHLY;INTERVAL=2;
      BYMONTH=1 completed in February), the series' own phase is kept instead.

    Never before dtstart; COUNT (by index), UNTIL and EXDATE apply. None when the series has ended.
    """
    rule = schedule.parsed_rule
    index = previous_index + 1
    if rule.count is not None and index - index_offset >= rule.count:
        return None
    zone = load_zone(schedule.tz)
    done = _utc(completed_at_utc, "completed_at_utc").astimezone(zone).replace(tzinfo=None)
    anchor, floor = _completion_anchor(rule, schedule.dtstart, done)
    if anchor < schedule.dtstart:
        candidates: Iterator[datetime] = engine(rule, schedule.dtstart, schedule.dtstart, zone)
        floor = schedule.dtstart
    elif not rule.has_by_parts:
        step = _STEP[rule.freq]
        candidates = (anchor + step(k * rule.interval) for k in count(1))
    else:
        try:
            check_reachable(rule, anchor, schedule.dtstart)
        except InvalidRule:  # the interval phased from here misses every BY day: keep the series' phase
            anchor = schedule.dtstart
        candidates = engine(rule, anchor, schedule.dtstart, zone)
    for local in islice(candidates, 100_000):
        if local < floor:
            continue
        at_utc = to_instant(local, zone, skip_gap=rule.subdaily)
        if at_utc is None:
            continue
        if local.year > LAST_YEAR or beyond_until(rule.until, local, at_utc):
            return None
        if local not in schedule.exdates:
            return Occurrence(index=index, local=local, at_utc=at_utc)
    return None


def _completion_anchor(rule: Rule, dtstart: datetime, done: datetime) -> tuple[datetime, datetime]:
    """Where the rule restarts after a completion at wall time `done`, and the earliest next time."""
    if rule.freq == "HOURLY":
        hour = done.replace(minute=0, second=0, microsecond=0)
        return hour.replace(minute=dtstart.minute, second=dtstart.second), hour + timedelta(hours=1)
    if rule.freq == "MINUTELY":
        minute = done.replace(second=0, microsecond=0)
        return minute.replace(second=dtstart.second), minute + timedelta(minutes=1)
    day = done.date()
    return datetime.combine(day, dtstart.time()), datetime.combine(day + timedelta(days=1), time())


def _after(schedule: Schedule, after: datetime | None, index_offset: int) -> Iterator[Occurrence]:
    zone = load_zone(schedule.tz)
    exdates = frozenset(schedule.exdates)
    for index, local, at_utc in expand(schedule.parsed_rule, schedule.dtstart, zone, exdates, index_offset):
        if after is None or at_utc > after:
            yield Occurrence(index=index, local=local, at_utc=at_utc)


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _wall(value: datetime, name: str) -> datetime:
    if value.tzinfo is not None:
        raise InvalidRule(f"{name} must be a naive local wall time; the zone is given by tz")
    if value.microsecond:
        raise InvalidRule(f"{name} must be whole seconds")
    if not _EARLIEST_YEAR <= value.year <= _LATEST_YEAR:
        raise InvalidRule(f"{name} must be between the years {_EARLIEST_YEAR} and {_LATEST_YEAR}")
    return value.replace(fold=0)
