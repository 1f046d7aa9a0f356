"""Cron schedules as daprd's `bindings.cron` reads them (dapr/kit's fork of robfig/cron v3), so a schedule
that daprd accepts fires at the same instants here and one it refuses fails with the same words.

Parser options as the binding sets them: an optional seconds field (5 or 6 fields), the descriptors
(`@yearly` … `@hourly`, `@every <Go duration>`) and a `TZ=`/`CRON_TZ=` prefix. Instants are UTC epoch
seconds; field matching happens on the wall time of the schedule's zone (the process's zone by default).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sidecar.state.properties import PropertyError, parse_go_duration

__all__ = ["ConstantDelay", "Schedule", "ScheduleError", "SpecSchedule", "parse_schedule"]

_STAR = 1 << 63  # set when a field was `*` or `?` (day-of-month/day-of-week matching depends on it)


class ScheduleError(ValueError):
    """The schedule text is not one daprd's cron parser accepts."""


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_SECONDS = _Bounds(0, 59)
_MINUTES = _Bounds(0, 59)
_HOURS = _Bounds(0, 23)
_DOM = _Bounds(1, 31)
_MONTHS = _Bounds(
    1,
    12,
    {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
)
_DOW = _Bounds(0, 6, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())})
_INT = re.compile(r"[+-]?[0-9]+")


def _all(bounds: _Bounds) -> int:
    return _bits(bounds.low, bounds.high, 1) | _STAR


@dataclass(frozen=True)
class SpecSchedule:
    """A crontab line as bit sets, one per field (robfig's `SpecSchedule`)."""

    second: int
    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    zone: dt.tzinfo | None = None  # None: the process's zone, looked up at each computation

    def next_after(self, instant: float) -> float | None:
        """The first activation strictly after `instant`, or None if none falls within five years."""
        zone = self.zone or local_zone()
        # Wall time of the zone, rounded up to the next whole second (robfig starts there).
        wall = dt.datetime.fromtimestamp(math.floor(instant), zone).replace(tzinfo=None)
        t = wall + dt.timedelta(seconds=1)
        added = False
        year_limit = t.year + 5
        while True:  # each pass is robfig's `WRAP:` label
            if t.year > year_limit:
                return None
            wrapped = False
            while not self.month >> t.month & 1:
                if not added:
                    added, t = True, dt.datetime(t.year, t.month, 1)
                t = dt.datetime(t.year + t.month // 12, t.month % 12 + 1, 1)
                if t.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(t):
                if not added:
                    added, t = True, dt.datetime(t.year, t.month, t.day)
                t += dt.timedelta(days=1)
                if t.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            for unit, field, step in (
                ("hour", self.hour, dt.timedelta(hours=1)),
                ("minute", self.minute, dt.timedelta(minutes=1)),
                ("second", self.second, dt.timedelta(seconds=1)),
            ):
                while not field >> getattr(t, unit) & 1:
                    if not added:  # truncate to the unit (t is already on a whole second)
                        added = True
                        minute = 0 if unit == "hour" else t.minute
                        t = t.replace(minute=minute, second=t.second if unit == "second" else 0)
                    t += step
                    if getattr(t, unit) == 0:
                        wrapped = True
                        break
                if wrapped:
                    break
            if wrapped:
                continue
            return t.replace(tzinfo=zone).timestamp()

    def _day_matches(self, t: dt.datetime) -> bool:
        dom_match = bool(self.dom >> t.day & 1)
        dow_match = bool(self.dow >> ((t.weekday() + 1) % 7) & 1)  # Go: Sunday = 0
        if self.dom & _STAR or self.dow & _STAR:
            return dom_match and dow_match
        return dom_match or dow_match


@dataclass(frozen=True)
class ConstantDelay:
    """`@every <duration>`: dapr/kit's `ConstantDelaySchedule`, millisecond-granular, at least 1 ms."""

    delay: float  # seconds, a whole number of milliseconds

    def next_after(self, instant: float) -> float | None:
        return math.floor(instant * 1000) / 1000 + self.delay


Schedule = SpecSchedule | ConstantDelay


def local_zone() -> dt.tzinfo:
    """The zone robfig's `time.Local` means: `TZ` if set, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as file:
            return ZoneInfo.from_file(file)
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return dt.UTC


def parse_schedule(spec: str, *, optional_seconds: bool = True) -> Schedule:
    """Parse `spec` as daprd's cron binding does; raises `ScheduleError` with dapr/kit's wording.

    `optional_seconds=False` is the Jobs API's parser (go-etcd-cron): exactly six fields."""
    if not spec:
        raise ScheduleError("empty spec string")
    zone: dt.tzinfo | None = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = next((i for i, c in enumerate(spec) if c.isspace()), -1)
        if space == -1:
            raise ScheduleError(f"timezone prefix {spec} is not followed by a schedule")
        name = spec[spec.index("=") + 1 : space]
        try:  # Go's LoadLocation: "" and "UTC" are UTC, "Local" the process's zone
            zone = None if name == "Local" else dt.UTC if name in ("", "UTC") else ZoneInfo(name)
        except (ValueError, ZoneInfoNotFoundError):
            raise ScheduleError(f"provided bad location {name}: unknown time zone {name}") from None
        spec = spec[space:].strip()
    if spec.startswith("@"):
        return _descriptor(spec, zone)
    fields = spec.split()
    if not optional_seconds and len(fields) != 6:
        raise ScheduleError(f"expected exactly 6 fields, found {len(fields)}: [{' '.join(fields)}]")
    if not 5 <= len(fields) <= 6:
        raise ScheduleError(f"expected 5 to 6 fields, found {len(fields)}: [{' '.join(fields)}]")
    if len(fields) == 5:
        fields = ["0", *fields]
    second, minute, hour, dom, month, dow = (
        _field(text, bounds)
        for text, bounds in zip(fields, (_SECONDS, _MINUTES, _HOURS, _DOM, _MONTHS, _DOW), strict=True)
    )
    return SpecSchedule(second, minute, hour, dom, month, dow, zone=zone)


def _descriptor(spec: str, zone: dt.tzinfo | None) -> Schedule:
    day = {"second": 1, "minute": 1, "hour": 1}
    fixed = {
        "@yearly": SpecSchedule(**day, dom=1 << 1, month=1 << 1, dow=_all(_DOW), zone=zone),
        "@monthly": SpecSchedule(**day, dom=1 << 1, month=_all(_MONTHS), dow=_all(_DOW), zone=zone),
        "@weekly": SpecSchedule(**day, dom=_all(_DOM), month=_all(_MONTHS), dow=1, zone=zone),
        "@daily": SpecSchedule(**day, dom=_all(_DOM), month=_all(_MONTHS), dow=_all(_DOW), zone=zone),
        "@hourly": SpecSchedule(
            1, 1, hour=_all(_HOURS), dom=_all(_DOM), month=_all(_MONTHS), dow=_all(_DOW), zone=zone
        ),
    }
    fixed["@annually"], fixed["@midnight"] = fixed["@yearly"], fixed["@daily"]
    if spec in fixed:
        return fixed[spec]
    if spec.startswith("@every "):
        text = spec[len("@every ") :]
        try:
            if _INT.fullmatch(text) and int(text) != 0:  # Go wants a unit on anything but 0
                raise PropertyError(f'time: missing unit in duration "{text}"')
            seconds = parse_go_duration(text)
        except PropertyError as exc:
            raise ScheduleError(f"failed to parse duration {spec}: {exc}") from None
        millis = max(math.floor(round(seconds * 1e9) / 1e6), 1)  # truncated to the ms, at least 1 ms
        return ConstantDelay(millis / 1000)
    raise ScheduleError(f"unrecognized descriptor: {spec}")


def _field(text: str, bounds: _Bounds) -> int:
    bits = 0
    for expr in (part for part in text.split(",") if part):
        bits |= _range(expr, bounds)
    return bits


def _range(expr: str, bounds: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end, extra = bounds.low, bounds.high, _STAR
    else:
        start = _int_or_name(low_high[0], bounds.names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], bounds.names)
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if len(low_high) == 1:  # "N/step" means "N-max/step"
            end = bounds.high
        if step > 1:
            extra = 0
    else:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise ScheduleError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None and expr.lower() in names:
        return names[expr.lower()]
    return _int(expr)


def _int(expr: str) -> int:
    if not _INT.fullmatch(expr):
        reason = f'strconv.Atoi: parsing "{expr}": invalid syntax'
        raise ScheduleError(f"failed to parse int from {expr}: {reason}")
    number = int(expr)
    if number < 0:
        raise ScheduleError(f"negative number ({number}) not allowed: {expr}")
    return number


def _bits(low: int, high: int, step: int) -> int:
    bits = 0
    for value in range(low, high + 1, step):
        bits |= 1 << value
    return bits
