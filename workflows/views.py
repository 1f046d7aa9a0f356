"""What the series and workflow APIs take and return: request bodies (a new series, a patch) and the
resources shown to users (a series, its occurrences, a workflow instance and its timeline)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, NaiveDatetime

from todo_actors.due import ZoneKey
from todo_actors.model import ItemId
from workflows.models import OccurrenceEntry, SeriesTemplate, TemplatePatch

__all__ = [
    "Failure",
    "HistoryStep",
    "OccurrenceHistory",
    "OccurrencesPage",
    "Series",
    "SeriesHistory",
    "SeriesPage",
    "SeriesPatch",
    "SeriesSpec",
    "SeriesStatus",
    "TimelineEntry",
    "Upcoming",
    "WorkflowInfo",
    "WorkflowPage",
    "WorkflowRef",
    "WorkflowTimeline",
]

SeriesStatus = Literal["running", "paused", "completed", "cancelled", "failed"]
Rule = Annotated[str, Field(min_length=1, max_length=1000, examples=["FREQ=MONTHLY;BYMONTHDAY=1"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeriesSpec(_Body):
    """A new series: which list, what item, and when (RFC 5545 RRULE from `dtstart`, wall time in `tz`)."""

    list_id: ItemId
    template: SeriesTemplate
    rule: Rule
    dtstart: NaiveDatetime = Field(
        description="First candidate occurrence, a local wall time in `tz` (its time of day is the series')"
    )
    tz: ZoneKey = "UTC"
    exdates: list[NaiveDatetime] = Field(default=[], max_length=1000)
    anchor: Literal["schedule", "completion"] = Field(
        "schedule",
        description="`completion`: the next occurrence is computed from when the last was completed",
    )
    catch_up: Literal["skip", "latest", "all"] = Field(
        "skip", description="Occurrences missed while the engine was down or the series paused"
    )


class SeriesPatch(_Body):
    """Change the rule and/or template; applies from the next occurrence on (COUNT counts from there)."""

    rule: Rule | None = None
    template: TemplatePatch | None = None


class Upcoming(BaseModel):
    index: int
    at: AwareDatetime
    local: datetime


class WorkflowRef(BaseModel):
    instance_id: str
    runtime_status: str | None = Field(description="The engine's status, None once purged")


class Series(BaseModel):
    """A recurring task: its definition, where it stands and what comes next."""

    id: ItemId
    list_id: ItemId
    template: SeriesTemplate
    rule: str
    dtstart: datetime
    tz: str
    exdates: list[datetime]
    anchor: Literal["schedule", "completion"]
    catch_up: Literal["skip", "latest", "all"]
    status: SeriesStatus
    ended_reason: str | None = None
    next_occurrence_at: AwareDatetime | None = None
    next_occurrence_index: int | None = None
    awaiting_completion_of: int | None = None
    upcoming: list[Upcoming] = []
    occurrences_created: int
    occurrences_missed: int
    occurrences_skipped: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    workflow: WorkflowRef


class SeriesPage(BaseModel):
    items: list[Series]
    next_cursor: str | None = None


class OccurrencesPage(BaseModel):
    """Every occurrence handled so far (oldest first, paginated) and, on the first page, what comes next."""

    items: list[OccurrenceEntry]
    next_cursor: str | None = None
    upcoming: list[Upcoming] = []


class HistoryStep(BaseModel):
    """One step the series' workflow took for an occurrence: `kind` (timer, notify, recreate, skip,
    completion) and what happened to it (`event`: set, fired, scheduled, completed) at `at`."""

    kind: Literal["timer", "notify", "recreate", "skip", "completion"]
    event: Literal["set", "fired", "scheduled", "completed"]
    at: AwareDatetime
    detail: str


class OccurrenceHistory(BaseModel):
    """An occurrence's steps in time order; `generation` is the workflow run that created it."""

    index: int
    key: str
    scheduled_at: AwareDatetime | None = None
    generation: int | None = None
    outcome: str | None = None
    item_id: ItemId | None = None
    steps: list[HistoryStep]


class SeriesHistory(BaseModel):
    """A series' workflow steps across all its runs (continue-as-new keeps only the current one in the
    engine), one entry per occurrence, oldest first."""

    series_id: ItemId
    items: list[OccurrenceHistory]
    next_cursor: str | None = None


class Failure(BaseModel):
    message: str
    error_type: str | None = None
    stack_trace: str | None = None


class WorkflowInfo(BaseModel):
    """A workflow instance as the engine reports it; `series_id` names the series it runs."""

    instance_id: str
    name: str | None
    series_id: str | None
    runtime_status: str
    created_at: AwareDatetime | None
    last_updated_at: AwareDatetime | None
    input: JsonValue = None
    output: JsonValue = None
    custom_status: JsonValue = None
    failure: Failure | None = None


class WorkflowPage(BaseModel):
    items: list[WorkflowInfo]
    next_cursor: str | None = None


class TimelineEntry(BaseModel):
    """One step of a workflow's current generation, in words (`detail`) and fields."""

    at: AwareDatetime
    kind: str
    event_id: int
    name: str | None = None
    detail: str
    data: dict[str, Any] = {}


class WorkflowTimeline(BaseModel):
    """The current generation's history (earlier generations are discarded by continue-as-new; the
    series' occurrence log keeps what they did)."""

    instance_id: str
    generation: int | None = None
    events: list[TimelineEntry]
