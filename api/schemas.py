"""Request and response bodies of the public API, built from the domain's own field types.

Bodies forbid unknown fields, so a read-only field a client sends (`id`, `owner`, `version`, timestamps,
counts, `status`, series fields) is a 422 naming it, never silently dropped. Patches tell an absent field
(leave alone) from an explicit null (clear), like the commands they become.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, TypeVar

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from todo_actors.due import Due, Reminder, ZoneKey
from todo_actors.model import (
    Description,
    ItemId,
    Labels,
    ListSummary,
    ListTitle,
    Notes,
    Position,
    Title,
    TodoItem,
    WholePriority,
    whole_number,
)

__all__ = [
    "READ_ONLY_FIELDS",
    "ClockAdvance",
    "ClockState",
    "Instant",
    "ItemCreate",
    "ItemPage",
    "ItemPatch",
    "ListCreate",
    "ListPage",
    "ListPatch",
    "PositionCursor",
    "Reorder",
    "command",
    "set_fields",
]

C = TypeVar("C", bound=BaseModel)

READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "owner",
        "version",
        "created_at",
        "updated_at",
        "completed_at",
        "open_count",
        "completed_count",
        "status",
        "series_id",
        "occurrence",
        "list_id",
    }
)
"""Fields the server sets; a body carrying one is rejected with a message saying so."""

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def _rfc3339_text(value: Any) -> Any:
    # pydantic would also read `0.5` or `1700000000` as Unix time; the document says `date-time`.
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2030-01-01T09:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
"""A query parameter instant: RFC 3339 text with an offset (`format: date-time`), nothing looser."""

PositionCursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{1,12}$", description="`next_cursor` of the previous page (a position)"),
]
"""The cursor of collections paged by position (series, workflows, occurrences): any such number is a
place to start from (past the end, an empty page), so the pattern is the whole rule."""


WholePosition = Annotated[Position, BeforeValidator(whole_number)]

# Bounds the payload only; the domain answers "limit exceeded" with the configured reminders limit.
Reminders = Annotated[list[Reminder], Field(max_length=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListCreate(_Body):
    title: ListTitle
    description: Description = ""
    tz: ZoneKey = Field("UTC", description="IANA zone in which all-day and floating dues of the list resolve")


class ListPatch(_Body):
    """Only the fields present change; `description: null` clears it."""

    title: ListTitle | None = None
    description: Description | None = None
    tz: ZoneKey | None = None


class ItemCreate(_Body):
    title: Title
    notes: Notes = ""
    priority: WholePriority = 0
    labels: Labels = ()
    due: Due | None = None
    start: Due | None = None
    deadline: Due | None = None
    reminders: Reminders = []
    position: WholePosition | None = None
    parent_id: ItemId | None = None


class ItemPatch(_Body):
    """Only the fields present change; null clears `due`, `start`, `deadline`, `parent_id` and resets
    `notes`, `labels`, `reminders`, `priority`. Complete or reopen with the `:complete`/`:reopen` actions."""

    title: Title | None = None
    notes: Notes | None = None
    priority: WholePriority | None = None
    labels: Labels | None = None
    due: Due | None = None
    start: Due | None = None
    deadline: Due | None = None
    reminders: Reminders | None = None
    position: WholePosition | None = None
    parent_id: ItemId | None = None


class Reorder(_Body):
    ids: Annotated[
        list[ItemId], Field(min_length=1, max_length=10_000, json_schema_extra={"uniqueItems": True})
    ]


class ListPage(BaseModel):
    items: list[ListSummary]
    next_cursor: str | None = None


class ItemPage(BaseModel):
    items: list[TodoItem]
    next_cursor: str | None = None
    list_version: int


class ClockAdvance(_Body):
    """Time passes with the engine up: every reminder, timer and job due on the way fires at its instant."""

    seconds: float = Field(ge=0, le=100 * 365 * 24 * 3600, strict=True, allow_inf_nan=False)
    wait: bool = Field(
        default=True, strict=True, description="answer once the target is reached and the engine is quiet"
    )
    settle_timeout: float = Field(
        default=30,
        gt=0,
        le=3600,
        strict=True,
        allow_inf_nan=False,
        description="seconds the engine may stay busy at one instant before the advance gives up",
    )


class ClockState(BaseModel):
    now: dt.datetime
    offset_seconds: float
    advancing: bool = False
    steps: int | None = Field(default=None, description="due instants the clock stood at on its way")
    target: dt.datetime | None = None


def command(cls: type[C], **fields: Any) -> C:
    """Build a domain command from request values; a rule the command adds (a null title, a
    `before_due` reminder without a due) is a 422 on the body like any other validation error."""
    try:
        return cls(**fields)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def set_fields(body: BaseModel) -> dict[str, Any]:
    """The fields a client actually sent, as model values (nested models stay models)."""
    return {name: getattr(body, name) for name in body.model_fields_set}
