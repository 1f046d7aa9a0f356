"""The todo list and its items as immutable pydantic models: the state a list actor holds.

Pure functions in `transitions` turn one `TodoList` into the next; `layout` maps it onto actor state keys.
Every string a user typed is kept verbatim (a title "2025-01-01 file taxes" stays a string).
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from todo_actors.due import UTC, Due, Reminder, UtcDatetime, ZoneKey, zone

__all__ = [
    "MAX_LABELS",
    "MAX_POSITION",
    "MAX_REMINDERS",
    "ItemId",
    "Labels",
    "ListSummary",
    "Status",
    "Title",
    "TodoItem",
    "TodoList",
]

MAX_REMINDERS = 10
MAX_LABELS = 20
# Positions are sent to browsers: stay within JavaScript's exact integers.
MAX_POSITION = 2**53 - 1


def _utf8(text: str) -> str:
    # Python strings may hold lone surrogates ("\ud800"), which no JSON encoder or store can write.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text is not valid unicode (lone surrogate)") from exc
    return text


def _unique(labels: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be unique")
    return labels


# Ids become parts of actor state keys, reminder names and URLs, hence the tight alphabet.
ItemId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
ListId = ItemId
SeriesId = ItemId
UserId = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_utf8)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_utf8)]
ListTitle = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_utf8)]
Notes = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_utf8)]
Description = Annotated[str, StringConstraints(max_length=2_000), AfterValidator(_utf8)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_utf8)]
Labels = Annotated[tuple[Label, ...], Field(max_length=MAX_LABELS), AfterValidator(_unique)]
Priority = Annotated[int, Field(strict=True, ge=0, le=4)]
"""0 = none, 1 = low ... 4 = urgent."""
Position = Annotated[int, Field(strict=True, ge=0, le=MAX_POSITION)]
Occurrence = Annotated[int, Field(strict=True, ge=0)]
Version = Annotated[int, Field(strict=True, ge=1)]
Status = Literal["open", "completed"]


class TodoItem(BaseModel):
    """One item of a list. `version` grows by one on every change (it is the item's ETag)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ItemId
    title: Title
    notes: Notes = ""
    status: Status = "open"
    priority: Priority = 0
    labels: Labels = ()
    due: Due | None = None
    start: Due | None = None
    deadline: Due | None = None
    reminders: Annotated[tuple[Reminder, ...], Field(max_length=MAX_REMINDERS)] = ()
    position: Position = 0
    parent_id: ItemId | None = None
    series_id: SeriesId | None = None
    occurrence: Occurrence | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    completed_at: UtcDatetime | None = None
    version: Version = 1

    @model_validator(mode="after")
    def _consistent(self) -> TodoItem:
        if self.due is None and any(r.before_due is not None for r in self.reminders):
            raise ValueError("a reminder with 'before_due' needs the item to have a due")
        if (self.series_id is None) != (self.occurrence is None):
            raise ValueError("'series_id' and 'occurrence' go together")
        if (self.status == "completed") != (self.completed_at is not None):
            raise ValueError("'completed_at' is set exactly when the item is completed")
        if self.parent_id == self.id:
            raise ValueError("an item cannot be its own parent")
        return self

    @property
    def series_key(self) -> tuple[str, int] | None:
        if self.series_id is None or self.occurrence is None:
            return None
        return (self.series_id, self.occurrence)


class ListSummary(BaseModel):
    """A list without its items, with the counts the API shows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ListId
    owner: UserId
    title: ListTitle
    description: Description
    tz: ZoneKey
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: Version
    open_count: int
    completed_count: int


class TodoList(BaseModel):
    """A list with all its items. `version` grows by one on every change to the list or any item.

    `items` maps id to item; the display order is by `position` (ties by creation, then id), see
    `order()`. `deleted_series` remembers the `(series_id, occurrence)` keys of deleted occurrence items
    (newest last, bounded) so a retried recurrence never re-creates what the user deleted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ListId
    owner: UserId
    title: ListTitle
    description: Description = ""
    tz: ZoneKey = "UTC"
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: Version = 1
    items: dict[ItemId, TodoItem] = {}
    deleted_series: tuple[tuple[SeriesId, Occurrence], ...] = ()

    @model_validator(mode="after")
    def _keys_match(self) -> TodoList:
        for key, item in self.items.items():
            if key != item.id:
                raise ValueError(f"item stored under {key!r} has id {item.id!r}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The zone all-day and floating dues are read in (the owner's default zone)."""
        return UTC if self.tz == "UTC" else zone(self.tz)

    def order(self) -> tuple[str, ...]:
        """Item ids in display order."""
        return tuple(
            item.id for item in sorted(self.items.values(), key=lambda i: (i.position, i.created_at, i.id))
        )

    def ordered_items(self) -> list[TodoItem]:
        return [self.items[i] for i in self.order()]

    @property
    def open_count(self) -> int:
        return sum(1 for i in self.items.values() if i.status == "open")

    @property
    def completed_count(self) -> int:
        return len(self.items) - self.open_count

    def find_occurrence(self, series_id: str, occurrence: int) -> TodoItem | None:
        key = (series_id, occurrence)
        return next((i for i in self.items.values() if i.series_key == key), None)

    def children(self, item_id: str) -> list[TodoItem]:
        return [i for i in self.items.values() if i.parent_id == item_id]

    def summary(self) -> ListSummary:
        open_count = self.open_count
        return ListSummary(
            id=self.id,
            owner=self.owner,
            title=self.title,
            description=self.description,
            tz=self.tz,
            created_at=self.created_at,
            updated_at=self.updated_at,
            version=self.version,
            open_count=open_count,
            completed_count=len(self.items) - open_count,
        )
