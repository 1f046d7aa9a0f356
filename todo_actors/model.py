"""The todo list and its items as immutable pydantic models: the state a list actor holds.

Pure functions in `transitions` turn one `TodoList` into the next; `layout` maps it onto actor state keys.
Every string a user typed is kept verbatim (a title "2025-01-01 file taxes" stays a string).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from todo_actors.due import UTC, Due, Reminder, UtcDatetime, ZoneKey, zone

__all__ = [
    "MAX_LABELS",
    "MAX_MEMBERS",
    "MAX_POSITION",
    "MAX_REMINDERS",
    "ItemId",
    "Labels",
    "ListSummary",
    "MemberRole",
    "Role",
    "Status",
    "Title",
    "TodoItem",
    "TodoList",
    "WholePriority",
    "whole_number",
]

MAX_REMINDERS = 10
MAX_LABELS = 20
# Members of one list besides its owner: the member set travels in every event of the list.
MAX_MEMBERS = 100
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
Labels = Annotated[
    tuple[Label, ...],
    Field(max_length=MAX_LABELS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]
Priority = Annotated[int, Field(strict=True, ge=0, le=4)]
"""0 = none, 1 = low ... 4 = urgent."""


def whole_number(value: Any) -> Any:
    """JSON Schema counts 3.0 as an integer (API documents say `integer`); the domain's ints are strict, so a
    request's float without a fraction is taken as that int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholePriority = Annotated[Priority, BeforeValidator(whole_number)]
"""A priority as a request gives it (3.0 is 3)."""
Position = Annotated[int, Field(strict=True, ge=0, le=MAX_POSITION)]
Occurrence = Annotated[int, Field(strict=True, ge=0)]
Version = Annotated[int, Field(strict=True, ge=1)]
Status = Literal["open", "completed"]
Role = Literal["owner", "editor", "viewer"]
"""What a user may do on a list: `viewer` reads, `editor` also changes items (their reminders, subtasks and
series), `owner` also changes and deletes the list and its members. A list has exactly one owner."""
MemberRole = Literal["editor", "viewer"]
"""The role of a member who is not the owner (the owner is `TodoList.owner`, never in `members`)."""


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
    role: Role | None = Field(None, description="The caller's role on this list")


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
    members: dict[UserId, MemberRole] = {}

    @model_validator(mode="after")
    def _keys_match(self) -> TodoList:
        for key, item in self.items.items():
            if key != item.id:
                raise ValueError(f"item stored under {key!r} has id {item.id!r}")
        if self.owner in self.members:
            raise ValueError("the owner is not also a member")
        return self

    def role_of(self, user: str) -> Role | None:
        """`user`'s role on this list, None for a stranger."""
        return "owner" if user == self.owner else self.members.get(user)

    def recipients(self) -> tuple[str, ...]:
        """Who besides the owner receives this list's events: its members, in a stable order."""
        return tuple(sorted(self.members))

    @property
    def zone(self) -> ZoneInfo:
        """The zone all-day and floating dues are read in (the owner's default zone)."""
        return UTC if self.tz == "UTC" else zone(self.tz)

    def order(self) -> tuple[str, ...]:
        """Item ids in display order."""
        return tuple(item.id for item in self.ordered_items())

    def ordered_items(self) -> Sequence[TodoItem]:
        """The items in display order: by `position`, then creation, then id. Sorted once per state; a
        successor made by `with_items` updates its predecessor's order instead of sorting again (a
        5,000-item list was re-sorted on every read after a write). Do not mutate the result."""
        index: _OrderIndex | None = self.__dict__.get(_ORDER)
        if index is None or index.source is not self.items:
            items = sorted(self.items.values(), key=item_order_key)
            index = _OrderIndex(self.items, [item_order_key(i) for i in items], items)
            self.__dict__[_ORDER] = index
        return index.items

    def last_position(self) -> int:
        """The largest item position (0 for an empty list). Through the display order, so the next
        states (each add asks) carry it instead of scanning every item again."""
        ordered = self.ordered_items()
        return ordered[-1].position if ordered else 0

    def changed_since(self, old: TodoList) -> frozenset[str] | None:
        """The ids of the items `with_items` replaced, added or removed to make this state from `old`;
        None if this state was not made that way (compare the items instead)."""
        diff: _Diff | None = self.__dict__.get(_DIFF)
        return diff.ids if diff is not None and diff.source is old.items else None

    def with_items(self, changes: Mapping[str, TodoItem | None], **fields: Any) -> TodoList:
        """A copy with items replaced, added or (None) removed and list fields set, without validation
        (the caller validated them); carries the display order over if this state had computed it."""
        items = dict(self.items)
        for item_id, item in changes.items():
            if item is None:
                items.pop(item_id, None)
            else:
                items[item_id] = item
        new = self.model_copy(update={"items": items, **fields})
        new.__dict__[_DIFF] = _Diff(self.items, frozenset(changes))
        index: _OrderIndex | None = self.__dict__.get(_ORDER)
        if index is not None and index.source is self.items:
            keys, ordered = list(index.keys), list(index.items)
            for item_id, item in changes.items():
                old = self.items.get(item_id)
                if old is not None:
                    at = bisect.bisect_left(keys, item_order_key(old))
                    del keys[at], ordered[at]
                if item is not None:
                    key = item_order_key(item)
                    at = bisect.bisect_left(keys, key)
                    keys.insert(at, key)
                    ordered.insert(at, item)
            new.__dict__[_ORDER] = _OrderIndex(items, keys, ordered)
        return new

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

    def summary(self, caller: str | None = None) -> ListSummary:
        """The list without its items; with `caller`, their role on it."""
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
            role=None if caller is None else self.role_of(caller),
        )


OrderKey = tuple[int, dt.datetime, str]


def item_order_key(item: TodoItem) -> OrderKey:
    """The display-order key: position, then creation, then id (ids are unique: no ties)."""
    return (item.position, item.created_at, item.id)


class _OrderIndex(NamedTuple):
    """A state's items in display order with their keys, for the `items` dict it was built from.

    Kept in the model's `__dict__`, not as a field or private attribute, so it is neither serialized nor
    part of equality; `source` makes a copy with other items (`model_copy`) recompute it."""

    source: Mapping[str, TodoItem]
    keys: list[OrderKey]
    items: list[TodoItem]


_ORDER = "_order_index"


class _Diff(NamedTuple):
    """Which items `with_items` changed, kept like `_OrderIndex`: `source` is the predecessor's items."""

    source: Mapping[str, TodoItem]
    ids: frozenset[str]


_DIFF = "_items_diff"
