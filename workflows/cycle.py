"""One cycle of a series, as pure functions of its state and the workflow's clock: what to create now,
what to wait for next, and how a skip, an edit or a completion changes the state.

The workflow calls these with `ctx.current_utc_datetime` only, so a replay recomputes exactly the same
plan; they are unit-tested without any runtime.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Final

from pydantic import ValidationError

from workflows.models import (
    AnyControl,
    EditSeries,
    EndSeries,
    OccurrenceCompleted,
    OccurrenceEntry,
    PauseSeries,
    ResumeSeries,
    SeriesSnapshot,
    SeriesState,
    SeriesTemplate,
    SkipNext,
)
from workflows.recurrence import (
    Occurrence,
    Schedule,
    due_on_resume,
    iter_occurrences,
    next_after_completion,
    next_occurrences,
    occurrence_after,
)

__all__ = [
    "ALL_DAY_LEAD",
    "BATCH",
    "LEAD_MARGIN",
    "Plan",
    "apply_control",
    "create_at",
    "created",
    "entry_key",
    "lead",
    "next_index",
    "plan",
    "rebase",
    "snapshot",
    "upcoming",
]

log = logging.getLogger("workflows.cycle")

BATCH: Final = 25
"""Occurrences created per generation when catching up with `all`; the rest follow in the next ones."""

LEAD_MARGIN: Final = timedelta(minutes=1)
"""Added to the largest reminder offset: a list arms only reminders strictly after the item's creation,
and the item is made a moment after its timer fires (an activity - notify, then recreate - later)."""

ALL_DAY_LEAD: Final = timedelta(hours=24)
"""Extra lead of an all-day template with reminders: its item's due is 09:00 of the date in the *list's*
zone, which may come before the occurrence's own time of day; a day ahead covers it."""


def lead(template: SeriesTemplate) -> timedelta:
    """How long before its due an occurrence's item is created, so that every template reminder (all
    relative: `before_due`; absolute ones are refused in a template) is still ahead when the list arms
    it: the largest offset (at least 0) plus `LEAD_MARGIN`, plus `ALL_DAY_LEAD` for all-day items.
    Without reminders (or without a due) the item is created when due."""
    offsets = [o for o in (r.offset for r in template.reminders) if o is not None]
    if not offsets or template.due == "none":
        return timedelta(0)
    biggest = max(max(offsets), timedelta(0)) + LEAD_MARGIN
    return biggest + (ALL_DAY_LEAD if template.due == "all_day" else timedelta(0))


def create_at(state: SeriesState, occurrence: Occurrence) -> datetime:
    """When `occurrence`'s item is created: `lead` before its due (the due itself is unchanged)."""
    return occurrence.at_utc - lead(state.template)


@dataclasses.dataclass(frozen=True)
class Plan:
    """`create` (oldest first) if occurrences are due now; else `next` to wait for; neither means the
    series waits for a completion (`state.awaiting`) or has ended (`state.ended`)."""

    state: SeriesState
    create: tuple[Occurrence, ...] = ()
    next: Occurrence | None = None


def entry_key(series_id: str, index: int) -> str:
    """The occurrence's business key, as `recurrence.occurrence_key` builds it."""
    return f"{series_id}:{index}"


def rebase(schedule: Schedule, occurrence: Occurrence, index_offset: int) -> tuple[Schedule, int]:
    """The same future occurrences, expanded from `occurrence` (which must be one of `schedule`'s).

    dtstart moves to the occurrence's nominal wall time (it shares the rule's phase and the day/weekday
    defaults, being an occurrence) and COUNT drops the occurrences before it; returns the new schedule
    and the index offset that keeps indices unchanged. Only for anchor="schedule".
    """
    rule = schedule.parsed_rule
    count = None if rule.count is None else rule.count - (occurrence.index - index_offset)
    if count is not None and count < 1:
        raise ValueError(f"occurrence {occurrence.index} is beyond COUNT")
    moved = Schedule(
        rule=str(dataclasses.replace(rule, count=count)),
        dtstart=occurrence.local,
        tz=schedule.tz,
        exdates=tuple(d for d in schedule.exdates if d > occurrence.local),
        anchor=schedule.anchor,
        catch_up=schedule.catch_up,
    )
    return moved, occurrence.index


def next_index(state: SeriesState) -> int:
    """The index the next new occurrence gets at the least (indices only grow)."""
    handled = [i for i in (state.cursor_index, state.awaiting) if i is not None]
    return max(handled) + 1 if handled else 0


def plan(state: SeriesState, now: datetime, batch: int = BATCH) -> Plan:
    """What the series does at `now`: create what is due (per the catch-up policy), else wait."""
    if state.ended is not None or state.paused_at is not None:
        return Plan(state)  # paused: nothing is due and nothing is waited for but a control
    # An occurrence is ready `lead` before its due: plan as of `now + lead` (lateness, and with it the
    # `skip` grace, is then measured from the creation time).
    horizon = now + lead(state.template)
    schedule = state.schedule
    if schedule.anchor == "completion":
        due = due_on_resume(
            schedule, state.cursor_index, state.cursor_at, horizon, index_offset=state.index_offset
        )
        if state.awaiting is not None:
            return Plan(state)
        if due:
            return Plan(state, create=(due[0],))
        upcoming = _completion_next(state)
        return Plan(state, next=upcoming) if upcoming is not None else Plan(_end(state, "completed", now))
    count, newest = _due_span(state, horizon)
    ready = due_on_resume(
        schedule.model_copy(update={"catch_up": "all"}),
        state.cursor_index,
        state.cursor_at,
        horizon,
        index_offset=state.index_offset,
    )
    due = _catch_up(state, ready, now)
    if due:
        missed = count - len(due)
        return Plan(state.model_copy(update={"missed": state.missed + missed}), create=tuple(due[:batch]))
    if newest is not None:  # catch_up="skip" dropped everything that was due
        state = _advance(state, newest).model_copy(update={"missed": state.missed + count})
    upcoming = occurrence_after(state.schedule, state.cursor_at, index_offset=state.index_offset)
    return Plan(state, next=upcoming) if upcoming is not None else Plan(_end(state, "completed", now))


def _catch_up(state: SeriesState, ready: list[Occurrence], now: datetime) -> list[Occurrence]:
    """Which of the ready occurrences (oldest first) to create. One whose creation time is at most the
    grace ago is on time and always made (with a lead, several can be ready at once - none missed);
    the late ones follow the policy: `skip` none, `latest` the newest if nothing is on time, `all` all."""
    late_before = now - timedelta(seconds=state.grace_seconds)
    since = state.live_since or datetime.min.replace(tzinfo=now.tzinfo)
    on_time = [o for o in ready if max(create_at(state, o), since) >= late_before]
    late = [o for o in ready if max(create_at(state, o), since) < late_before]
    if state.schedule.catch_up == "all":
        return late + on_time
    if on_time:
        return on_time
    return late[-1:] if state.schedule.catch_up == "latest" else []


def created(state: SeriesState, occurrence: Occurrence, outcome: str, now: datetime) -> SeriesState:
    """The state once `occurrence`'s item was added (`outcome` of the recreate activity)."""
    count = state.created + (outcome in ("created", "deleted"))  # "deleted": made earlier, then deleted
    if outcome == "list_missing":
        return _end(state.model_copy(update={"created": count}), "list_deleted", now)
    if state.schedule.anchor == "completion" and outcome == "created":
        return state.model_copy(
            update={"created": count, "awaiting": occurrence.index, "awaiting_at": occurrence.at_utc}
        )
    if state.schedule.anchor == "completion":  # no item to complete: go on as if done when due
        return state.model_copy(
            update={"created": count, "cursor_index": occurrence.index, "cursor_at": occurrence.at_utc}
        )
    return _advance(state, occurrence).model_copy(update={"created": count})


def apply_control(
    state: SeriesState, control: AnyControl, waiting_for: Occurrence | None, now: datetime
) -> tuple[SeriesState, tuple[OccurrenceEntry, ...]]:
    """Apply a control event; returns the new state and the log entries to merge. Stale or foreign
    events change nothing (a skip of an occurrence already handled, a completion from another list)."""
    if state.ended is not None:
        return state, ()
    if isinstance(control, PauseSeries):
        paused = state.paused_at is not None
        return (state if paused else state.model_copy(update={"paused_at": control.at})), ()
    if isinstance(control, ResumeSeries):
        return _resume(state, control.at), ()
    if isinstance(control, EndSeries):
        return _end(state, control.reason, now), ()
    if isinstance(control, SkipNext):
        if waiting_for is None or control.index != waiting_for.index:
            log.debug(
                "series %s: skip of occurrence %d ignored (next is %s)",
                state.series_id,
                control.index,
                None if waiting_for is None else waiting_for.index,
            )
            return state, ()
        entry = _entry(state, waiting_for, status="skipped", skipped_at=now)
        if state.schedule.anchor == "completion":
            moved = state.model_copy(update={"cursor_index": control.index, "cursor_at": waiting_for.at_utc})
        else:
            moved = _advance(state, waiting_for)
        return moved.model_copy(update={"skipped": state.skipped + 1}), (entry,)
    if isinstance(control, OccurrenceCompleted):
        if control.list_id != state.list_id:
            log.warning("series %s: completion from list %s ignored", state.series_id, control.list_id)
            return state, ()
        entry = OccurrenceEntry(
            index=control.index,
            key=entry_key(state.series_id, control.index),
            completed_at=control.completed_at,
            item_id=control.item_id,
        )
        if state.awaiting == control.index:
            state = state.model_copy(
                update={
                    "cursor_index": control.index,
                    "cursor_at": control.completed_at,
                    "awaiting": None,
                    "awaiting_at": None,
                }
            )
        return state, (entry,)
    return _edit(state, control, now), ()


def _edit(state: SeriesState, edit: EditSeries, now: datetime) -> SeriesState:
    changes: dict[str, object] = {"revision": state.revision + 1, "live_since": now}
    if edit.template is not None:
        try:
            changes["template"] = edit.template.apply(state.template)
        except ValidationError as exc:
            log.warning("series %s: template edit ignored: %s", state.series_id, exc)
    if edit.rule is not None:
        try:
            definition = Schedule.model_validate({**state.definition.model_dump(), "rule": edit.rule})
        except ValueError as exc:
            log.warning("series %s: rule edit ignored: %s", state.series_id, exc)
            return state.model_copy(update=changes)
        changes["definition"] = definition
        changes["index_offset"] = next_index(state)
        if definition.anchor == "completion":
            changes["schedule"] = definition
        else:
            # The new rule, phased from the series' dtstart, from its first occurrence after now on;
            # COUNT counts from there (COUNT is dropped to find that occurrence).
            unbounded = Schedule.model_validate(
                {
                    **definition.model_dump(),
                    "rule": str(dataclasses.replace(definition.parsed_rule, count=None)),
                }
            )
            first = occurrence_after(unbounded, max(state.cursor_at, now))
            if first is None:
                return _end(state.model_copy(update=changes), "completed", now)
            changes["schedule"] = Schedule.model_validate(
                {
                    **definition.model_dump(),
                    "dtstart": first.local,
                    "exdates": tuple(d for d in definition.exdates if d > first.local),
                }
            )
    return state.model_copy(update=changes)


def _resume(state: SeriesState, at: datetime) -> SeriesState:
    """Unpause at `at`: every unhandled occurrence due by then is dropped (counted as missed), whatever
    the catch-up policy, so the series goes on with the first occurrence after `at`."""
    if state.paused_at is None:
        return state
    state = state.model_copy(update={"paused_at": None, "live_since": at})
    if state.schedule.anchor == "completion":
        pending = None if state.awaiting is not None else _completion_next(state)
        if pending is None or pending.at_utc > at:
            return state
        # As if completed at the resume: the next one is computed from there.
        return state.model_copy(
            update={"cursor_index": pending.index, "cursor_at": at, "missed": state.missed + 1}
        )
    count, newest = _due_span(state, at)
    if newest is None:
        return state
    return _advance(state, newest).model_copy(update={"missed": state.missed + count})


def snapshot(state: SeriesState) -> SeriesSnapshot:
    """The record fields the workflow owns, as of `state`."""
    last = state.awaiting if state.awaiting is not None else state.cursor_index
    last_at = (
        state.awaiting_at
        if state.awaiting is not None
        else (state.cursor_at if state.cursor_index is not None else None)
    )
    return SeriesSnapshot(
        generation=state.generation,
        revision=state.revision,
        rule=state.definition.rule,
        template=state.template,
        created=state.created,
        missed=state.missed,
        skipped=state.skipped,
        last_index=last,
        last_at=last_at,
        ended=state.ended,
        ended_at=state.ended_at,
    )


def upcoming(state: SeriesState, n: int) -> list[Occurrence]:
    """The next `n` occurrences not yet handled (for anchor=completion at most the one computed)."""
    if state.ended is not None or state.paused_at is not None or n <= 0:
        return []  # paused: what comes next depends on when the series is resumed
    if state.schedule.anchor == "completion":
        nxt = None if state.awaiting is not None else _completion_next(state)
        return [nxt] if nxt is not None else []
    return next_occurrences(state.schedule, state.cursor_at, n, index_offset=state.index_offset)


def _entry(state: SeriesState, occurrence: Occurrence, **fields: object) -> OccurrenceEntry:
    return OccurrenceEntry.model_validate(
        {
            "index": occurrence.index,
            "key": entry_key(state.series_id, occurrence.index),
            "scheduled_at": occurrence.at_utc,
            "local": occurrence.local,
            **fields,
        }
    )


def _advance(state: SeriesState, occurrence: Occurrence) -> SeriesState:
    schedule, offset = rebase(state.schedule, occurrence, state.index_offset)
    return state.model_copy(
        update={
            "schedule": schedule,
            "index_offset": offset,
            "cursor_index": occurrence.index,
            "cursor_at": occurrence.at_utc,
        }
    )


def _due_span(state: SeriesState, now: datetime) -> tuple[int, Occurrence | None]:
    """How many unhandled occurrences are due by `now`, and the newest of them."""
    count, newest = 0, None
    for occurrence in iter_occurrences(state.schedule, index_offset=state.index_offset):
        if occurrence.at_utc > now:
            break
        if occurrence.at_utc <= state.cursor_at or (
            state.cursor_index is not None and occurrence.index <= state.cursor_index
        ):
            continue
        count, newest = count + 1, occurrence
    return count, newest


def _completion_next(state: SeriesState) -> Occurrence | None:
    if state.cursor_index is None:
        return occurrence_after(state.schedule, state.cursor_at, index_offset=state.index_offset)
    return next_after_completion(
        state.schedule, state.cursor_at, state.cursor_index, index_offset=state.index_offset
    )


def _end(state: SeriesState, reason: str, now: datetime) -> SeriesState:
    return state.model_copy(update={"ended": reason, "ended_at": now})
