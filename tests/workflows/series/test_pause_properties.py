"""Property: for random rules, zones, reminder leads, catch-up policies and pause windows, driving the
series' pure cycle in small steps (to each creation time, the pause and the resume, as the workflow does)
creates exactly the occurrences `dateutil.rrule` expects, less those that came due while paused."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows import cycle
from workflows.models import PauseSeries, ResumeSeries, SeriesState, SeriesTemplate
from workflows.recurrence import Occurrence, Schedule

ZONES = ["UTC", "Europe/Rome", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
RULES = ["FREQ=DAILY", "FREQ=DAILY;INTERVAL=2", "FREQ=WEEKLY;BYDAY=MO,WE,FR", "FREQ=HOURLY;INTERVAL=6"]
LEADS = [None, "PT15M", "PT2H", "P1D"]
WINDOW = timedelta(days=21)
START = datetime(2027, 1, 1, tzinfo=UTC)


def series(
    rule: str, dtstart: datetime, tz: str, catch_up: str, reminder: str | None, start: datetime
) -> SeriesState:
    schedule = Schedule.model_validate({"rule": rule, "dtstart": dtstart, "tz": tz, "catch_up": catch_up})
    reminders = [] if reminder is None else [{"before_due": reminder}]
    return SeriesState(
        series_id="s1",
        owner="ann",
        list_id="l1",
        template=SeriesTemplate.model_validate({"title": "t", "reminders": reminders}),
        definition=schedule,
        schedule=schedule,
        cursor_at=start,
        live_since=start,
    )


def drive(
    state: SeriesState, start: datetime, pause: datetime, resume: datetime, end: datetime
) -> list[Occurrence]:
    """What the workflow creates: plan, create what is ready, else move the clock to the next creation
    time or control (a creation due at the pause instant goes first), never further."""
    created: list[Occurrence] = []
    controls = [PauseSeries(at=pause), ResumeSeries(at=resume)]
    now = start
    for _ in range(10_000):
        plan = cycle.plan(state, now)
        if plan.create:
            for occurrence in plan.create:
                created.append(occurrence)
                state = cycle.created(state, occurrence, "created", now)
            continue
        state = plan.state
        if state.ended is not None:
            break
        wake = None if plan.next is None else cycle.create_at(state, plan.next)
        if controls and (wake is None or controls[0].at < wake):
            control = controls.pop(0)
            now = max(now, control.at)
            state, _ = cycle.apply_control(state, control, plan.next, now)
            continue
        if wake is None or wake > end:
            break
        now = max(now, wake)
    return created


@settings(max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=st.sampled_from(RULES),
    tz=st.sampled_from(ZONES),
    catch_up=st.sampled_from(["skip", "latest", "all"]),
    reminder=st.sampled_from(LEADS),
    day=st.integers(0, 300),
    hour=st.sampled_from([9, 12, 18]),
    count=st.one_of(st.none(), st.integers(1, 30)),
    pause_after=st.integers(0, 14 * 24 * 60),
    pause_for=st.integers(1, 5 * 24 * 60),
)
def test_pauses_drop_exactly_what_came_due_while_paused(
    rule: str,
    tz: str,
    catch_up: str,
    reminder: str | None,
    day: int,
    hour: int,
    count: int | None,
    pause_after: int,
    pause_for: int,
) -> None:
    start = START + timedelta(days=day)
    full_rule = rule if count is None else f"{rule};COUNT={count}"
    dtstart = datetime.combine((start + timedelta(days=1)).date(), time(hour))
    state = series(full_rule, dtstart, tz, catch_up, reminder, start)
    pause = start + timedelta(minutes=pause_after)
    resume = pause + timedelta(minutes=pause_for)
    end = start + WINDOW
    lead = cycle.lead(state.template)

    got = [(o.index, o.at_utc) for o in drive(state, start, pause, resume, end)]

    zone = ZoneInfo(tz)
    expected = []
    for index, local in enumerate(rrulestr(full_rule, dtstart=dtstart)):
        at = local.replace(tzinfo=zone).astimezone(UTC)
        if at - lead > end:
            break
        # Made before the pause if its creation time came first (a creation at the pause instant does).
        came_due_while_paused = at - lead > pause and at <= resume
        if at > start and not came_due_while_paused:
            expected.append((index, at))
    assert got == expected
