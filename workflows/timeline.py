"""A workflow's history events (`HistoryEvent` protos) as a timeline a person can read: timers set and
fired, activities scheduled and their outcome, events raised, suspensions, the generation's start.

Engine-internal bookkeeping (the per-turn `workflowStarted` marker) is left out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

# Private: the durabletask protos ship only here, and no public SDK API reads what these read.
from dapr.ext.workflow._durabletask.internal import orchestration_pb2

from workflows.views import TimelineEntry, WorkflowTimeline

__all__ = ["build_timeline"]

_SENTINEL_YEAR: Final = 9999
_STATUS_NAMES: Final = {
    value: name.removeprefix("ORCHESTRATION_STATUS_").lower()
    for name, value in orchestration_pb2.OrchestrationStatus.items()
}


def build_timeline(instance_id: str, events: list[Any]) -> WorkflowTimeline:
    """The timeline of one instance's current generation, oldest first."""
    activities: dict[int, str] = {}
    timers: dict[int, datetime] = {}
    generation: int | None = None
    entries: list[TimelineEntry] = []
    for event in events:
        kind = event.WhichOneof("eventType")
        at = event.timestamp.ToDatetime(tzinfo=UTC)
        body: Any = getattr(event, kind) if kind else None
        entry: TimelineEntry | None = None
        if kind == "executionStarted":
            data = _json(body.input) if body.HasField("input") else None
            if isinstance(data, dict) and isinstance(data.get("generation"), int):
                generation = data["generation"]
            detail = (
                f"continued as new: generation {generation} started"
                if generation
                else f"workflow {body.name!r} started"
            )
            entry = TimelineEntry(
                at=at,
                kind="started",
                event_id=event.eventId,
                name=body.name,
                detail=detail,
                data={"generation": generation} if generation is not None else {},
            )
        elif kind == "taskScheduled":
            activities[event.eventId] = body.name
            data = _json(body.input) if body.HasField("input") else None
            entry = TimelineEntry(
                at=at,
                kind="activity_scheduled",
                event_id=event.eventId,
                name=body.name,
                detail=f"activity {body.name} scheduled{_about(data)}",
                data=_small(data),
            )
        elif kind == "taskCompleted":
            name = activities.get(body.taskScheduledId)
            data = _json(body.result) if body.HasField("result") else None
            entry = TimelineEntry(
                at=at,
                kind="activity_completed",
                event_id=event.eventId,
                name=name,
                detail=f"activity {name} completed{_outcome(data)}",
                data=_small(data),
            )
        elif kind == "taskFailed":
            name = activities.get(body.taskScheduledId)
            message = body.failureDetails.errorMessage
            entry = TimelineEntry(
                at=at,
                kind="activity_failed",
                event_id=event.eventId,
                name=name,
                detail=f"activity {name} failed: {message}",
                data={"error_type": body.failureDetails.errorType},
            )
        elif kind == "timerCreated":
            fire_at = body.fireAt.ToDatetime(tzinfo=UTC)
            timers[event.eventId] = fire_at
            entry = _timer_created(event.eventId, at, fire_at, body)
        elif kind == "timerFired":
            fire_at = body.fireAt.ToDatetime(tzinfo=UTC)
            entry = TimelineEntry(
                at=at,
                kind="timer_fired",
                event_id=event.eventId,
                detail=f"timer {body.timerId} fired (set for {fire_at.isoformat()})",
                data={"timer_id": body.timerId, "fire_at": fire_at.isoformat()},
            )
        elif kind == "eventRaised":
            data = _json(body.input) if body.HasField("input") else None
            what = f" ({data['kind']})" if isinstance(data, dict) and "kind" in data else ""
            entry = TimelineEntry(
                at=at,
                kind="event_raised",
                event_id=event.eventId,
                name=body.name,
                detail=f"event {body.name!r} received{what}",
                data=_small(data),
            )
        elif kind in ("executionSuspended", "executionResumed"):
            verb = "paused" if kind == "executionSuspended" else "resumed"
            entry = TimelineEntry(at=at, kind=verb, event_id=event.eventId, detail=f"workflow {verb}")
        elif kind == "executionTerminated":
            entry = TimelineEntry(
                at=at, kind="terminate_requested", event_id=event.eventId, detail="termination requested"
            )
        elif kind == "executionCompleted":
            status = _STATUS_NAMES.get(body.workflowStatus, str(body.workflowStatus))
            data = _json(body.result) if body.HasField("result") else None
            failure = body.failureDetails.errorMessage if body.HasField("failureDetails") else ""
            entry = TimelineEntry(
                at=at,
                kind=status,
                event_id=event.eventId,
                detail=f"workflow {status}" + (f": {failure}" if failure else ""),
                data=_small(data),
            )
        elif kind not in (None, "workflowStarted"):
            entry = TimelineEntry(at=at, kind=kind, event_id=event.eventId, detail=kind)
        if entry is not None:
            entries.append(entry)
    return WorkflowTimeline(instance_id=instance_id, generation=generation, events=entries)


def _timer_created(event_id: int, at: datetime, fire_at: datetime, body: Any) -> TimelineEntry:
    origin = body.WhichOneof("origin")
    if origin == "externalEvent":
        name = body.externalEvent.name
        if fire_at.year >= _SENTINEL_YEAR:
            detail = f"waiting for event {name!r} (no timeout)"
        else:
            detail = f"timer set for {fire_at.isoformat()} (next occurrence), or event {name!r} first"
    elif origin == "activityRetry":
        detail = f"activity retry scheduled for {fire_at.isoformat()}"
    else:
        detail = f"timer set for {fire_at.isoformat()}"
    return TimelineEntry(
        at=at,
        kind="timer_created",
        event_id=event_id,
        detail=detail,
        data={"fire_at": fire_at.isoformat(), "origin": origin},
    )


def _json(value: Any) -> Any:
    try:
        return json.loads(value.value)
    except (ValueError, AttributeError):
        return None


def _about(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("index"), int):
        return f" for occurrence {data['index']}"
    return ""


def _outcome(data: Any) -> str:
    if isinstance(data, dict) and "outcome" in data:
        item = f", item {data['item_id']}" if data.get("item_id") else ""
        return f": {data['outcome']}{item}"
    return ""


def _small(data: Any) -> dict[str, Any]:
    """Top-level scalars of a payload (enough to read; whole inputs can be large)."""
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}
