"""A series' history across all its workflow runs, read back from its occurrence log.

The engine keeps only the current run's history (continue-as-new discards the rest), so the recreate
activity records each occurrence's steps - the durable timer, notify, recreate - in the occurrence log,
keyed by occurrence: a replayed or retried activity rewrites the same entry instead of adding steps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from workflows.models import OccurrenceEntry
from workflows.views import HistoryStep, OccurrenceHistory

__all__ = ["occurrence_history"]

Kind = Literal["timer", "notify", "recreate", "skip", "completion"]
Event = Literal["set", "fired", "scheduled", "completed"]


def occurrence_history(entry: OccurrenceEntry) -> OccurrenceHistory:
    """The steps logged for one occurrence, in time order (steps at the same instant in workflow order)."""
    candidates: list[tuple[Kind, Event, datetime | None, str]] = [
        ("timer", "set", entry.timer_set_at, _timer_detail(entry)),
        ("timer", "fired", entry.timer_fired_at, "the durable timer fired"),
        ("notify", "scheduled", entry.notify_scheduled_at, "series_occurrence scheduled"),
        ("notify", "completed", entry.notified_at, "occurrence.due published"),
        ("recreate", "scheduled", entry.notified_at, "item add requested (same activity, after the publish)"),
        ("recreate", "completed", entry.created_at, _recreate_detail(entry)),
        ("skip", "completed", entry.skipped_at, "skipped by the user"),
        ("completion", "completed", entry.completed_at, "the occurrence's item was completed"),
    ]
    if entry.created_at is None and entry.outcome not in (None, "created"):
        # No item, so no item time: the step completed when it was recorded, right after it was scheduled.
        candidates[5] = ("recreate", "completed", entry.notified_at, _recreate_detail(entry))
    steps = [
        HistoryStep(kind=kind, event=event, at=at, detail=detail)
        for kind, event, at, detail in candidates
        if at is not None
    ]
    steps.sort(key=lambda step: step.at)  # stable: steps at one instant stay in workflow order
    return OccurrenceHistory(
        index=entry.index,
        key=entry.key,
        scheduled_at=entry.scheduled_at,
        generation=entry.generation,
        outcome=entry.outcome,
        item_id=entry.item_id,
        steps=steps,
    )


def _timer_detail(entry: OccurrenceEntry) -> str:
    fires = "" if entry.timer_fires_at is None else f" for {entry.timer_fires_at.isoformat()}"
    return f"durable timer set{fires}"


def _recreate_detail(entry: OccurrenceEntry) -> str:
    if entry.outcome in (None, "created"):
        return f"item {entry.item_id} added to the list"
    return f"{entry.outcome}: {entry.error}" if entry.error else str(entry.outcome)
