"""Property: the dev clock advanced in random steps over random rules, zones (across DST changes) and pause
windows creates exactly the occurrences `dateutil.rrule` expects, each once, with each of their reminders
fired once — through the real engine (API, list actors, series workflows, the sidecar's time skipping)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Stack, changes, new_list
from tests.stack import running_stack

HOUR = 3600
RULES = ["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,WE,FR,SU", "FREQ=HOURLY;INTERVAL=8", "FREQ=DAILY;INTERVAL=2"]
# DST changes within the horizon for some starts: Europe (last Sunday of March/October), New York (second
# Sunday of March, first of November), Lord Howe (30-minute shift), and zones without DST.
ZONES = ["Europe/Rome", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
# Times of day away from every zone's DST gap and repeated hour, so each local time exists exactly once (for
# the 8-hourly rule only 12:30 does: its 20:30 and 04:30 are clear too).
TIMES = [dt.time(9, 0), dt.time(12, 30), dt.time(18, 15)]
OCCURRENCES = 7  # the horizon sits 3 h after the 7th occurrence, far from the next (>= 5 h away)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: its clock travels months, and no other suite's series should run along."""
    with running_stack(tmp_path_factory.mktemp("time-travel")) as running:
        yield running


def next_dst_change(zone: str, after: float) -> dt.date | None:
    """The local date of the zone's next UTC-offset change within 200 days, if any."""
    tz = ZoneInfo(zone)
    day = dt.datetime.fromtimestamp(after, tz).replace(hour=12, minute=0, second=0, microsecond=0)
    offset = day.utcoffset()
    for _ in range(200):
        day = (day + dt.timedelta(days=1)).replace(tzinfo=tz)
        if day.utcoffset() != offset:
            return day.date()
    return None


def expected(rule: str, start: dt.datetime, zone: str) -> list[tuple[dt.datetime, float]]:
    """(local wall time, instant) of the rule's first occurrences, as dateutil computes them."""
    tz = ZoneInfo(zone)
    rr = rrulestr(f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:{rule}")
    out = []
    for local in rr:
        out.append((local, local.replace(tzinfo=tz).timestamp()))
        if len(out) == OCCURRENCES + 3:
            return out
    return out


def advance(client: httpx.Client, seconds: float) -> None:
    r = client.post("/v1/dev/clock:advance", json={"seconds": max(0.0, seconds)}, timeout=300)
    assert r.status_code == 200, r.text


def advance_to(client: httpx.Client, stack: Stack, instant: float, steps: list[float]) -> None:
    """Reach `instant` in the given step sizes (hours), the last step landing on it."""
    for hours in steps:
        remaining = instant - stack.clock.now()
        if remaining <= hours * HOUR:
            break
        advance(client, hours * HOUR)
    advance(client, instant - stack.clock.now())


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rule=st.sampled_from(RULES),
    zone=st.sampled_from(ZONES),
    at=st.sampled_from(TIMES),
    days_before_change=st.integers(min_value=0, max_value=4),
    catch_up=st.sampled_from(["skip", "latest", "all"]),
    steps=st.lists(st.floats(min_value=0.5, max_value=72), min_size=1, max_size=12),
    pause=st.one_of(st.none(), st.tuples(st.integers(0, 2), st.integers(1, 3))),
)
def test_random_steps_create_exactly_the_rrule_occurrences(
    stack: Stack,
    rule: str,
    zone: str,
    at: dt.time,
    days_before_change: int,
    catch_up: str,
    steps: list[float],
    pause: tuple[int, int] | None,
) -> None:
    if "HOURLY" in rule:
        at = dt.time(12, 30)
    with stack.client(f"prop-{uuid.uuid4().hex[:10]}") as client:
        todo = new_list(client, "props")
        # Start a few days before the zone's next DST change (when it has one), so the series crosses it.
        change = next_dst_change(zone, stack.clock.now())
        today = dt.datetime.fromtimestamp(stack.clock.now(), ZoneInfo(zone)).date()
        first = (
            today + dt.timedelta(days=1) if change is None else change - dt.timedelta(days=days_before_change)
        )
        start = dt.datetime.combine(max(first, today + dt.timedelta(days=1)), at)
        r = client.post(
            "/v1/series",
            json={
                "list_id": todo["id"],
                "template": {"title": "prop", "reminders": [{"before_due": "PT15M"}]},
                "rule": rule,
                "dtstart": start.isoformat(),
                "tz": zone,
                "catch_up": catch_up,
            },
        )
        assert r.status_code == 201, r.text
        series: dict[str, Any] = r.json()
        wanted = expected(rule, start, zone)
        horizon = wanted[OCCURRENCES - 1][1] + 3 * HOUR
        paused: tuple[float, float] | None = None
        if pause is not None:  # pause 3 h after one occurrence, resume 3 h after a later one
            first, length = pause
            paused = (wanted[first][1] + 3 * HOUR, wanted[min(first + length, OCCURRENCES - 2)][1] + 3 * HOUR)
            advance_to(client, stack, paused[0], steps)
            assert client.post(f"/v1/series/{series['id']}:pause").status_code == 200
            advance_to(client, stack, paused[1], steps)
            assert client.post(f"/v1/series/{series['id']}:resume").status_code == 200
        advance_to(client, stack, horizon, steps)

        def kept(instant: float) -> bool:
            return instant <= horizon and (paused is None or not paused[0] < instant <= paused[1])

        want = [local for local, instant in wanted if kept(instant)]
        r = client.get(f"/v1/lists/{todo['id']}/items", params={"limit": 200})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        got = sorted(dt.datetime.fromisoformat(i["due"]["datetime"]) for i in items)
        assert got == want, (rule, zone, start, paused)
        fired = Counter(
            (e["item_id"], e["data"]["kind"])
            for e in changes(client)
            if e["type"] == "reminder.fired" and e["list_id"] == todo["id"]
        )
        assert fired == Counter({(i["id"], kind): 1 for i in items for kind in ("reminder", "due")})
        assert client.delete(f"/v1/lists/{todo['id']}").status_code == 204  # ends its series
