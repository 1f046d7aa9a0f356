"""The series workflow: one durable, never-ending workflow per recurring task.

Each generation plans from its input and `ctx.current_utc_datetime` only (`cycle.plan`): it creates what
is due (one activity per occurrence: notify, then recreate) or waits on a durable timer for the next
occurrence while listening for control events (skip, edit, completion), then continues as new. The
workflow itself does no I/O; activities do, and every one of them is idempotent by occurrence key.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from dapr.ext.workflow import DaprWorkflowContext, RetryPolicy
from pydantic import ValidationError

from workflows import cycle
from workflows.models import (
    CONTROL,
    NotifyInput,
    RecordInput,
    RecreateInput,
    RecreateResult,
    SeriesProgress,
    SeriesState,
    TimerStep,
    dump,
    utc,
)
from workflows.recurrence import Occurrence

__all__ = [
    "ACTIVITY_RETRY",
    "CONTROL_EVENT",
    "NOTIFY_ACTIVITY",
    "OCCURRENCE_ACTIVITY",
    "ONE_ACTIVITY_PATCH",
    "RECORD_ACTIVITY",
    "RECREATE_ACTIVITY",
    "SERIES_WORKFLOW",
    "series_workflow",
]

log = logging.getLogger("workflows.series")

SERIES_WORKFLOW: Final = "series"
CONTROL_EVENT: Final = "series.control"
OCCURRENCE_ACTIVITY: Final = "series_occurrence"
"""Notify, then recreate, one occurrence: one activity (not two) saves a workflow turn per occurrence."""
RECORD_ACTIVITY: Final = "series_record"
ONE_ACTIVITY_PATCH: Final = "series-one-activity-per-occurrence"
"""The workflow patch (`ctx.is_patched`) that made an occurrence one activity: a generation whose history
was recorded before it (notify and recreate scheduled as two activities) replays and finishes that way."""
NOTIFY_ACTIVITY: Final = "series_notify"
RECREATE_ACTIVITY: Final = "series_recreate"

ACTIVITY_RETRY: Final = RetryPolicy(
    first_retry_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    max_retry_interval=timedelta(minutes=5),
    max_number_of_attempts=50,
)
"""Activities fail only when the sidecar, the store or the list's host is unreachable: retry for hours
(durable retry timers), so an outage delays occurrences instead of failing the series."""

Steps = Generator[Any, Any, Any]

PLANS_KEPT: Final = 1024
"""Plans remembered (`_plan`): two per series between two turns, the oldest dropped first (a few KB each;
1024 covers ~500 series due at one instant)."""

_plans: OrderedDict[tuple[str, str], cycle.Plan] = OrderedDict()
_plans_lock = threading.Lock()  # the worker runs orchestrators on several threads


def series_workflow(ctx: DaprWorkflowContext, given: SeriesState | dict[str, Any]) -> Steps:
    """Run one generation of a series (see the module docstring); the input is a `SeriesState`."""
    state = given if isinstance(given, SeriesState) else SeriesState.model_validate(given)
    started = _now(ctx)
    plan = _plan(state, started)
    if plan.create:
        state = yield from _create(ctx, plan.state, plan.create)
        return _continue(ctx, state)
    if plan.state.missed != state.missed:  # catch_up="skip" dropped what fell due: record it
        yield from _record(ctx, plan.state, ())
    state = plan.state
    if state.ended is not None:
        return (yield from _finish(ctx, state))
    if plan.next is not None:
        fires_at = cycle.create_at(state, plan.next)
        _status(ctx, state, "waiting", plan.next)
        # The item's creation time is the wait's timeout: when the timer wins, the SDK drops the waiter, so
        # a control event arriving while we create is buffered and carried over (save_events) - not lost.
        wait = ctx.wait_for_external_event(CONTROL_EVENT, timeout=_naive(fires_at))
    else:  # paused, or waiting for the awaited occurrence's completion: only a control moves it on
        _status(ctx, state, "paused" if state.paused_at is not None else "awaiting_completion", None)
        wait = ctx.wait_for_external_event(CONTROL_EVENT)
    try:
        raw = yield wait
    except TimeoutError:  # the occurrence is ready (or, after an outage, maybe long past)
        fired = _now(ctx)
        due = _plan(state, fired)
        if due.create:
            assert plan.next is not None
            timer = TimerStep(set_at=started, fires_at=fires_at, fired_at=fired)
            after = yield from _create(ctx, due.state, due.create, timer=(plan.next.index, timer))
        else:
            after = due.state
            if after.missed != state.missed:
                yield from _record(ctx, after, ())
        return _continue(ctx, after)
    state = yield from _control(ctx, state, raw, plan.next)
    if state.ended is not None:
        return (yield from _finish(ctx, state))
    return _continue(ctx, state)


def _create(
    ctx: DaprWorkflowContext,
    state: SeriesState,
    occurrences: tuple[Occurrence, ...],
    *,
    timer: tuple[int, TimerStep] | None = None,
) -> Steps:
    """Notify and recreate each occurrence in order (one activity each); returns the state after the last.
    `timer` is the durable timer this generation waited on, and the index of the occurrence it was set for."""
    _status(ctx, state, "creating", occurrences[0])
    for occurrence in occurrences:
        # Workflow time (deterministic on replay) stamps both steps: the activity notifies, then recreates.
        notify_at = now = _now(ctx)
        two_steps = not ctx.is_patched(ONE_ACTIVITY_PATCH)
        if two_steps:  # history from before the patch: notify was an activity of its own
            yield ctx.call_activity(
                NOTIFY_ACTIVITY, input=dump(_notify_input(state, occurrence)), retry_policy=ACTIVITY_RETRY
            )
            now = _now(ctx)
        after = cycle.created(state, occurrence, "created", now)
        recreate = RecreateInput(
            **_occurrence_fields(state, occurrence),
            template=state.template,
            notified_at=now,
            snapshot=cycle.snapshot(after),
            generation=state.generation,
            timer=timer[1] if timer is not None and timer[0] == occurrence.index else None,
            notify_scheduled_at=notify_at,
        )
        activity = RECREATE_ACTIVITY if two_steps else OCCURRENCE_ACTIVITY
        raw = yield ctx.call_activity(activity, input=dump(recreate), retry_policy=ACTIVITY_RETRY)
        result = RecreateResult.model_validate(raw)
        state = (
            cycle.created(state, occurrence, result.outcome, now) if result.outcome != "created" else after
        )
        if not ctx.is_replaying:
            log.info(
                "series %s: occurrence %d (%s) %s, item %s",
                state.series_id,
                occurrence.index,
                occurrence.at_utc.isoformat(),
                result.outcome,
                result.item_id,
            )
        if result.outcome != "created":  # the snapshot sent along assumed it would be
            yield from _record(ctx, state, ())
        if state.ended is not None:
            break
    return state


def _notify_input(state: SeriesState, occurrence: Occurrence) -> NotifyInput:
    return NotifyInput(**_occurrence_fields(state, occurrence), title=state.template.title)


def _occurrence_fields(state: SeriesState, occurrence: Occurrence) -> dict[str, Any]:
    """What the notify and recreate inputs of an occurrence share."""
    return {
        "series_id": state.series_id,
        "owner": state.owner,
        "list_id": state.list_id,
        "index": occurrence.index,
        "key": cycle.entry_key(state.series_id, occurrence.index),
        "scheduled_at": occurrence.at_utc,
        "local": occurrence.local,
        "tz": state.schedule.tz,
    }


def _plan(state: SeriesState, now: datetime) -> cycle.Plan:
    """`cycle.plan`, remembered. Every turn replays the generation from its start, so without this the
    same plan (a pure function of the state and the workflow's clock, ~0.1-0.4 ms of rule expansion)
    is recomputed up to three times per occurrence. The key is exact (the state's JSON, the instant's
    ISO form), so a hit is the plan the computation would return."""
    key = (state.model_dump_json(), now.isoformat())
    with _plans_lock:
        found = _plans.get(key)
        if found is not None:
            _plans.move_to_end(key)
            return found
    made = cycle.plan(state, now)
    with _plans_lock:
        _plans[key] = made
        if len(_plans) > PLANS_KEPT:
            _plans.popitem(last=False)
    return made


def _control(ctx: DaprWorkflowContext, state: SeriesState, raw: Any, waiting_for: Occurrence | None) -> Steps:
    try:
        control = CONTROL.validate_python(raw)
    except ValidationError as exc:
        if not ctx.is_replaying:
            log.warning("series %s: malformed control event ignored: %s", state.series_id, exc)
        return state
    now = _now(ctx)
    changed, entries = cycle.apply_control(state, control, waiting_for, now)
    if changed != state or entries:
        if not ctx.is_replaying:
            log.info("series %s: applied %s", state.series_id, control.kind)
        yield from _record(ctx, changed, entries)
    if control.id is not None:  # shown in the custom status, so the API answers with the new state
        changed = changed.model_copy(update={"applied": control.id})
    return changed


def _record(ctx: DaprWorkflowContext, state: SeriesState, entries: tuple[Any, ...]) -> Steps:
    record = RecordInput(
        series_id=state.series_id, at=_now(ctx), entries=entries, snapshot=cycle.snapshot(state)
    )
    yield ctx.call_activity(RECORD_ACTIVITY, input=dump(record), retry_policy=ACTIVITY_RETRY)


def _finish(ctx: DaprWorkflowContext, state: SeriesState) -> Steps:
    yield from _record(ctx, state, ())
    _status(ctx, state, "ended", None)
    if not ctx.is_replaying:
        log.info("series %s ended (%s) after %d occurrences", state.series_id, state.ended, state.created)
    return {"series_id": state.series_id, "ended": state.ended, "occurrences_created": state.created}


def _continue(ctx: DaprWorkflowContext, state: SeriesState) -> None:
    ctx.continue_as_new(dump(state.model_copy(update={"generation": state.generation + 1})), save_events=True)


def _status(ctx: DaprWorkflowContext, state: SeriesState, phase: str, occurrence: Occurrence | None) -> None:
    progress = SeriesProgress.model_validate(
        {
            "phase": phase,
            "generation": state.generation,
            "next_index": None if occurrence is None else occurrence.index,
            "next_at": None if occurrence is None else occurrence.at_utc,
            "create_at": None if occurrence is None else cycle.create_at(state, occurrence),
            "awaiting": state.awaiting,
            "applied": state.applied,
        }
    )
    ctx.set_custom_status(progress.model_dump_json())


def _now(ctx: DaprWorkflowContext) -> datetime:
    return utc(ctx.current_utc_datetime)


def _naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)
