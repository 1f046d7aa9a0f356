"""The series' cycle as pure functions: re-basing keeps the future identical, the catch-up policies,
COUNT ending the series, skip, edit and completion - no runtime involved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from workflows import cycle
from workflows.models import (
    EditSeries,
    OccurrenceCompleted,
    SeriesState,
    SeriesTemplate,
    SkipNext,
    TemplatePatch,
)
from workflows.recurrence import Occurrence, Schedule, iter_occurrences, occurrence_key
from workflows.rrule_parse import InvalidRule

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # a Monday


def state(rule: str, dtstart: datetime, tz: str = "UTC", **extra: object) -> SeriesState:
    schedule = Schedule.model_validate(
        {"rule": rule, "dtstart": dtstart, "tz": tz}
        | {k: v for k, v in extra.items() if k in ("anchor", "catch_up", "exdates")}
    )
    return SeriesState(
        series_id="s1",
        owner="ann",
        list_id="l1",
        template=SeriesTemplate(title="t"),
        definition=schedule,
        schedule=schedule,
        cursor_at=T0,
        **{k: v for k, v in extra.items() if k not in ("anchor", "catch_up", "exdates")},  # type: ignore[arg-type]
    )


def occurrences(s: SeriesState, n: int) -> list[Occurrence]:
    return list(islice(iter_occurrences(s.schedule, index_offset=s.index_offset), n))


def run(s: SeriesState, now: datetime) -> tuple[SeriesState, list[int]]:
    """Plan at `now` and create what is due (as the workflow would, all outcomes "created")."""
    p = cycle.plan(s, now)
    s = p.state
    for occ in p.create:
        s = cycle.created(s, occ, "created", now)
    return s, [o.index for o in p.create]


RULES = st.one_of(
    st.builds(
        lambda f, i: f"FREQ={f};INTERVAL={i}",
        st.sampled_from(["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
        st.integers(1, 3),
    ),
    st.builds(
        lambda d: f"FREQ=MONTHLY;BYMONTHDAY={d}", st.sampled_from(["1", "15", "29", "30", "31", "-1", "1,31"])
    ),
    st.builds(lambda d: f"FREQ=WEEKLY;INTERVAL=2;BYDAY={d}", st.sampled_from(["MO", "MO,TH", "SA,SU", "FR"])),
    st.builds(lambda p: f"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS={p}", st.sampled_from(["1", "-1", "2"])),
    st.builds(lambda p: f"FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS={p}", st.sampled_from(["1", "-1"])),
    st.just("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
    st.just("FREQ=MONTHLY;BYDAY=-1SU"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=RULES,
    count=st.one_of(st.none(), st.integers(5, 40)),
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    tz=st.sampled_from(["UTC", "Europe/Rome", "America/New_York", "Australia/Lord_Howe"]),
    at=st.integers(0, 30),
    exdate=st.integers(0, 40),
)
def test_rebase_keeps_every_future_occurrence(
    rule: str, count: int | None, start: datetime, tz: str, at: int, exdate: int
) -> None:
    start = start.replace(second=0, microsecond=0)
    text = rule if count is None else f"{rule};COUNT={count}"
    try:
        original = Schedule.model_validate({"rule": text, "dtstart": start, "tz": tz})
        first = list(islice(iter_occurrences(original), 50))
        assume(len(first) > 2)
        excluded = first[exdate % len(first)].local
        original = original.model_copy(update={"exdates": (excluded,)})
    except (InvalidRule, ValueError):
        assume(False)
        return
    expected = list(islice(iter_occurrences(original), 80))
    assume(at < len(expected))
    pivot = expected[at]
    moved, offset = cycle.rebase(original, pivot, 0)
    assert offset == pivot.index
    assert list(islice(iter_occurrences(moved, index_offset=offset), 80 - at)) == expected[at:]


def test_entry_key_is_the_occurrence_key() -> None:
    occ = Occurrence(index=7, local=datetime(2027, 1, 1, 9), at_utc=T0)
    assert cycle.entry_key("s1", 7) == occurrence_key("s1", occ)


def test_waits_for_the_first_occurrence_then_creates_it() -> None:
    s = state("FREQ=DAILY", datetime(2027, 1, 5, 9))
    p = cycle.plan(s, T0)
    assert not p.create and p.next is not None and p.next.index == 0
    s, created = run(s, p.next.at_utc + timedelta(seconds=1))
    assert created == [0]
    assert s.cursor_index == 0 and s.created == 1 and s.index_offset == 0
    assert s.schedule.dtstart == datetime(2027, 1, 5, 9)  # re-based at the occurrence just created
    p = cycle.plan(s, p.next.at_utc + timedelta(seconds=2))
    assert p.next is not None and p.next.index == 1 and p.next.at_utc == datetime(2027, 1, 6, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "created", "missed", "next_index"),
    [("skip", [], 3, 4), ("latest", [3], 2, 4), ("all", [1, 2, 3], 0, 4)],
)
def test_catch_up_after_three_days_down(
    policy: str, created: list[int], missed: int, next_index: int
) -> None:
    s = state("FREQ=DAILY", datetime(2027, 1, 5, 9), catch_up=policy)
    s, _ = run(s, datetime(2027, 1, 5, 9, 0, 1, tzinfo=UTC))
    back = datetime(2027, 1, 8, 11, tzinfo=UTC)  # occurrences 1-3 missed, the newest 2 h late
    s, made = run(s, back)
    assert made == created
    assert s.missed == missed
    p = cycle.plan(s, back)
    assert not p.create and p.next is not None and p.next.index == next_index


def test_a_little_late_is_on_time_under_skip() -> None:
    s = state("FREQ=DAILY", datetime(2027, 1, 5, 9), catch_up="skip")
    _, made = run(s, datetime(2027, 1, 5, 9, 40, tzinfo=UTC))
    assert made == [0]


def test_catch_up_all_goes_in_batches() -> None:
    s = state("FREQ=HOURLY", datetime(2027, 1, 5, 0), catch_up="all")
    now = datetime(2027, 1, 7, 0, 30, tzinfo=UTC)  # 49 due
    s, first = run(s, now)
    assert first == list(range(cycle.BATCH))
    s, second = run(s, now)
    assert second == list(range(cycle.BATCH, 49))
    assert s.missed == 0 and s.created == 49


def test_count_ends_the_series() -> None:
    s = state("FREQ=WEEKLY;COUNT=2", datetime(2027, 1, 5, 9))
    for day in (5, 12):
        s, made = run(s, datetime(2027, 1, day, 9, 0, 1, tzinfo=UTC))
        assert len(made) == 1
    p = cycle.plan(s, datetime(2027, 1, 12, 9, 0, 2, tzinfo=UTC))
    assert p.next is None and not p.create
    assert p.state.ended == "completed"


def test_skip_next_moves_on_and_stale_skips_are_ignored() -> None:
    s = state("FREQ=DAILY", datetime(2027, 1, 5, 9))
    p = cycle.plan(s, T0)
    assert p.next is not None
    skipped, entries = cycle.apply_control(p.state, SkipNext(index=0), p.next, T0)
    assert skipped.cursor_index == 0 and skipped.skipped == 1
    assert [(e.index, e.status) for e in entries] == [(0, "skipped")]
    after = cycle.plan(skipped, T0)
    assert after.next is not None and after.next.index == 1
    again, entries = cycle.apply_control(skipped, SkipNext(index=0), after.next, T0)
    assert again == skipped and entries == ()


def test_edit_rule_applies_from_the_next_occurrence_with_growing_indices() -> None:
    s = state("FREQ=DAILY", datetime(2027, 1, 5, 9))
    s, _ = run(s, datetime(2027, 1, 5, 9, 0, 1, tzinfo=UTC))
    now = datetime(2027, 1, 5, 12, tzinfo=UTC)
    edited, _ = cycle.apply_control(s, EditSeries(rule="FREQ=WEEKLY;BYDAY=FR;COUNT=2"), None, now)
    assert edited.revision == 1 and edited.definition.rule == "FREQ=WEEKLY;COUNT=2;BYDAY=FR"
    nxt = cycle.upcoming(edited, 5)
    assert [(o.index, o.local) for o in nxt] == [(1, datetime(2027, 1, 8, 9)), (2, datetime(2027, 1, 15, 9))]


def test_template_edit_that_breaks_the_template_is_ignored() -> None:
    s = state("FREQ=DAILY", datetime(2027, 1, 5, 9))
    good, _ = cycle.apply_control(s, EditSeries(template=TemplatePatch(title="new")), None, T0)
    assert good.template.title == "new"
    bad_patch = TemplatePatch.model_validate({"due": "none"})
    with_reminder = good.model_copy(
        update={
            "template": SeriesTemplate.model_validate({"title": "x", "reminders": [{"before_due": "PT5M"}]})
        }
    )
    kept, _ = cycle.apply_control(with_reminder, EditSeries(template=bad_patch), None, T0)
    assert kept.template == with_reminder.template


def test_completion_anchor_computes_the_next_from_the_completion() -> None:
    s = state("FREQ=DAILY;INTERVAL=2", datetime(2027, 1, 5, 9), anchor="completion")
    s, made = run(s, datetime(2027, 1, 5, 9, 0, 1, tzinfo=UTC))
    assert made == [0] and s.awaiting == 0
    assert cycle.plan(s, datetime(2027, 2, 1, tzinfo=UTC)).next is None  # waits for the completion
    done = datetime(2027, 1, 9, 17, tzinfo=UTC)
    foreign = OccurrenceCompleted(index=0, completed_at=done, list_id="other")
    assert cycle.apply_control(s, foreign, None, done) == (s, ())
    s, entries = cycle.apply_control(
        s, OccurrenceCompleted(index=0, completed_at=done, list_id="l1"), None, done
    )
    assert s.awaiting is None and s.cursor_index == 0 and entries[0].completed_at == done
    p = cycle.plan(s, done)
    assert p.next is not None and p.next.index == 1 and p.next.local == datetime(2027, 1, 11, 9)


def test_a_deleted_list_ends_the_series() -> None:
    s = state("FREQ=DAILY", datetime(2027, 1, 5, 9))
    p = cycle.plan(s, datetime(2027, 1, 5, 9, 0, 1, tzinfo=UTC))
    ended = cycle.created(p.state, p.create[0], "list_missing", T0)
    assert ended.ended == "list_deleted"
    assert cycle.plan(ended, T0).next is None
