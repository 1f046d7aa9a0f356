"""What the series workflow carries: its state between generations, the control events it accepts, the
inputs and outputs of its activities and the custom status it shows, one pydantic model each.

Everything here crosses the workflow engine as JSON, so every model round-trips through `model_dump(mode=
"json")` and `model_validate` unchanged (the SDK's own decoder never sees user strings as dates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from todo_actors.due import Reminder
from todo_actors.model import ItemId, Labels, Notes, Title, UserId, WholePriority
from workflows.recurrence import Schedule

__all__ = [
    "CONTROL",
    "AnyControl",
    "Control",
    "EditSeries",
    "EndReason",
    "EndSeries",
    "PauseSeries",
    "ResumeSeries",
    "NotifyInput",
    "OccurrenceCompleted",
    "OccurrenceEntry",
    "RecordInput",
    "RecreateInput",
    "RecreateResult",
    "SeriesProgress",
    "SeriesSnapshot",
    "SeriesState",
    "SeriesTemplate",
    "SkipNext",
    "TemplatePatch",
    "TimerStep",
    "dump",
    "utc",
]

EndReason = Literal["completed", "cancelled", "terminated", "list_deleted", "failed"]
"""Why a series ended: its rule ran out (COUNT/UNTIL), the user cancelled it (`/v1/series`) or terminated
its workflow (`/v1/workflows`), its list was deleted, or its workflow failed."""

DueMode = Literal["occurrence", "all_day", "none"]


def utc(value: datetime) -> datetime:
    """An aware UTC instant from an aware datetime or a naive one that means UTC (the engine's clock)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeriesTemplate(_Frozen):
    """The item each occurrence adds to the list.

    `due`: `occurrence` gives the item the occurrence's wall time in the series' zone as its due,
    `all_day` its date, `none` no due. Reminders are relative to that due (`before_due`); an absolute
    reminder would fire once for the whole series, so it is refused.
    """

    title: Title
    notes: Notes = ""
    priority: WholePriority = 0
    labels: Labels = ()
    reminders: tuple[Reminder, ...] = Field(default=(), max_length=10)
    due: DueMode = "occurrence"

    @model_validator(mode="after")
    def _relative_reminders(self) -> SeriesTemplate:
        if any(r.before_due is None for r in self.reminders):
            raise ValueError("a series' reminders must be relative ('before_due'), not absolute ('at')")
        if self.reminders and self.due == "none":
            raise ValueError("reminders need a due: set 'due' to 'occurrence' or 'all_day'")
        return self


class TemplatePatch(_Frozen):
    """Template fields to change; absent fields stay as they are."""

    title: Title | None = None
    notes: Notes | None = None
    priority: WholePriority | None = None
    labels: Labels | None = None
    reminders: tuple[Reminder, ...] | None = Field(default=None, max_length=10)
    due: DueMode | None = None

    def apply(self, template: SeriesTemplate) -> SeriesTemplate:
        """The template with these changes; ValidationError if the result is inconsistent."""
        changes = {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}
        return SeriesTemplate.model_validate({**template.model_dump(), **changes})


class SeriesState(_Frozen):
    """The series workflow's input, i.e. everything it knows between two generations.

    `definition` is the schedule as the user gave it (after edits); `schedule` is the one the workflow
    expands, re-based at the last handled occurrence so expansion cost does not grow with the series'
    age. `cursor_index`/`cursor_at` name the last occurrence handled (created, skipped or missed; for
    anchor=completion: the last one completed, `cursor_at` being its completion time); before any, the
    index is None and `cursor_at` the series' creation. `awaiting` is the created occurrence an
    anchor=completion series waits on. `paused_at` is set while paused; `live_since` is when the series
    was started, last resumed or edited: an occurrence ready (see `cycle.lead`) before then is not late,
    as it could not have been created earlier. `applied` is the id of the last control applied.
    """

    series_id: ItemId
    owner: UserId
    list_id: ItemId
    template: SeriesTemplate
    definition: Schedule
    schedule: Schedule
    index_offset: int = Field(default=0, ge=0)
    cursor_index: int | None = None
    cursor_at: AwareDatetime
    awaiting: int | None = None
    awaiting_at: AwareDatetime | None = None
    grace_seconds: int = Field(default=3600, ge=0)
    generation: int = Field(default=0, ge=0)
    revision: int = Field(default=0, ge=0)
    created: int = Field(default=0, ge=0)
    missed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)
    ended: EndReason | None = None
    ended_at: AwareDatetime | None = None
    paused_at: AwareDatetime | None = None
    live_since: AwareDatetime | None = None
    applied: str | None = Field(default=None, max_length=64)


ControlId = Annotated[str | None, Field(max_length=64)]
"""Set by the API on the controls it raises: the workflow shows the last one applied in its custom status,
so the API can answer with the state after the change."""


class SkipNext(_Frozen):
    """Skip occurrence `index` (the next one due): it is logged as skipped and never created."""

    kind: Literal["skip"] = "skip"
    index: int = Field(ge=0)
    id: ControlId = None


class EditSeries(_Frozen):
    """Change the rule and/or template from the next occurrence on (the rule was validated by the API)."""

    kind: Literal["edit"] = "edit"
    id: ControlId = None
    rule: str | None = Field(default=None, max_length=1000)
    template: TemplatePatch | None = None


class OccurrenceCompleted(_Frozen):
    """The item of occurrence `index` was completed (anchor=completion computes the next one from it)."""

    kind: Literal["completed"] = "completed"
    index: int = Field(ge=0)
    completed_at: AwareDatetime
    list_id: ItemId
    item_id: ItemId | None = None
    id: ControlId = None


class PauseSeries(_Frozen):
    """Pause at `at`: no occurrence that comes due from then until the resume is ever created."""

    kind: Literal["pause"] = "pause"
    at: AwareDatetime
    id: ControlId = None


class ResumeSeries(_Frozen):
    """Resume at `at`: what came due while paused is dropped (counted as missed); the series goes on with
    the first occurrence after `at`."""

    kind: Literal["resume"] = "resume"
    at: AwareDatetime
    id: ControlId = None


class EndSeries(_Frozen):
    """End the series now (its list was deleted): the workflow records the reason and completes."""

    kind: Literal["end"] = "end"
    reason: Literal["list_deleted"]
    at: AwareDatetime
    id: ControlId = None


AnyControl = SkipNext | EditSeries | OccurrenceCompleted | PauseSeries | ResumeSeries | EndSeries
Control = Annotated[AnyControl, Field(discriminator="kind")]
CONTROL: TypeAdapter[AnyControl] = TypeAdapter(Control)
"""Parses the payload of the `series.control` external event."""


class NotifyInput(_Frozen):
    series_id: ItemId
    owner: UserId
    list_id: ItemId
    index: int = Field(ge=0)
    key: str
    scheduled_at: AwareDatetime
    local: datetime
    tz: str
    title: Title


class OccurrenceEntry(_Frozen):
    """One occurrence in the series' log. Sent by the workflow as a patch: None leaves the logged value."""

    index: int = Field(ge=0)
    key: str
    scheduled_at: AwareDatetime | None = None
    local: datetime | None = None
    status: Literal["created", "skipped", "deleted", "failed"] | None = None
    notified_at: AwareDatetime | None = None
    item_id: ItemId | None = None
    created_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    skipped_at: AwareDatetime | None = None
    error: str | None = Field(default=None, max_length=500)
    # The workflow steps behind the entry (read by `GET /v1/series/{id}/history`): the durable timer the
    # generation waited on, then the notify and recreate steps of its activity. Times are the workflow's
    # (deterministic on replay), so a retried activity rewrites the same values: no duplicate steps.
    generation: int | None = None
    timer_set_at: AwareDatetime | None = None
    timer_fires_at: AwareDatetime | None = None
    timer_fired_at: AwareDatetime | None = None
    notify_scheduled_at: AwareDatetime | None = None
    outcome: str | None = Field(default=None, max_length=20)


class SeriesSnapshot(_Frozen):
    """The workflow-owned part of the series record, written with every log entry. `generation` orders
    writes: a late retry of an older generation's activity never rolls the record back."""

    generation: int = Field(ge=0)
    revision: int = Field(ge=0)
    rule: str
    template: SeriesTemplate
    created: int = Field(ge=0)
    missed: int = Field(ge=0)
    skipped: int = Field(ge=0)
    last_index: int | None = None
    last_at: AwareDatetime | None = None
    ended: EndReason | None = None
    ended_at: AwareDatetime | None = None


class TimerStep(_Frozen):
    """The durable timer a generation waited on before creating an occurrence: set, due, fired."""

    set_at: AwareDatetime
    fires_at: AwareDatetime
    fired_at: AwareDatetime


class RecreateInput(_Frozen):
    """Add occurrence `index`'s item to the list (idempotent by `(series_id, index)`) and log it."""

    series_id: ItemId
    owner: UserId
    list_id: ItemId
    index: int = Field(ge=0)
    key: str
    scheduled_at: AwareDatetime
    local: datetime
    tz: str
    template: SeriesTemplate
    notified_at: AwareDatetime
    snapshot: SeriesSnapshot
    generation: int = Field(default=0, ge=0)
    timer: TimerStep | None = None
    notify_scheduled_at: AwareDatetime | None = None


class RecreateResult(_Frozen):
    """`created`: the item exists (made now or by an earlier attempt); `deleted`: the user deleted it
    since; `list_missing`: the list is gone; `failed`: the list refused it (say, it is full)."""

    outcome: Literal["created", "deleted", "list_missing", "failed"]
    item_id: ItemId | None = None
    error: str | None = None


class RecordInput(_Frozen):
    """Log entries to merge and the snapshot to store, for changes that create no item."""

    series_id: ItemId
    at: AwareDatetime
    entries: tuple[OccurrenceEntry, ...] = ()
    snapshot: SeriesSnapshot


class SeriesProgress(_Frozen):
    """The workflow's custom status: what it is doing now."""

    phase: Literal["creating", "waiting", "awaiting_completion", "paused", "ended"]
    generation: int
    next_index: int | None = None
    next_at: AwareDatetime | None = None
    create_at: AwareDatetime | None = None
    awaiting: int | None = None
    applied: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> SeriesProgress | None:
        if not raw:
            return None
        try:
            return cls.model_validate_json(raw)
        except ValueError:
            return None


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the JSON object the workflow engine carries."""
    return model.model_dump(mode="json")
