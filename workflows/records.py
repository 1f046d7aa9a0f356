"""What the state store keeps about series: one record per series, its occurrence log in pages of 100
entries, and a per-owner index of series ids, with the keys they live under.

An occurrence write touches one page (at most 100 entries) and the small record, never a blob that
grows with the series' age: the record lists only the page numbers.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from todo_actors.model import ItemId, UserId
from workflows.models import EndReason, OccurrenceEntry, SeriesSnapshot, SeriesTemplate

__all__ = [
    "PAGE_SIZE",
    "ListSeries",
    "OccurrencePage",
    "OwnedSeries",
    "OwnerIndex",
    "SeriesRecord",
    "list_key",
    "merge_entry",
    "owner_key",
    "page_key",
    "page_of",
    "record_key",
]

PAGE_SIZE: Final = 100


def record_key(series_id: str) -> str:
    return f"series:{series_id}"


def page_of(index: int) -> int:
    return index // PAGE_SIZE


def page_key(series_id: str, page: int) -> str:
    return f"series:{series_id}:log:{page}"


def owner_key(owner: str) -> str:
    # Owners are arbitrary text (JWT `sub`); a digest keeps the key short and free of separators.
    return "series-owner:" + hashlib.sha256(owner.encode("utf-8")).hexdigest()[:40]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeriesRecord(_Model):
    """A series: its definition (rule and template change with edits), who owns it, and its progress
    as the workflow last recorded it (`generation` = the workflow generation that wrote it)."""

    id: ItemId
    owner: UserId
    list_id: ItemId
    instance_id: str
    template: SeriesTemplate
    rule: str
    dtstart: datetime
    tz: str
    exdates: tuple[datetime, ...] = ()
    anchor: Literal["schedule", "completion"]
    catch_up: Literal["skip", "latest", "all"]
    grace_seconds: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    generation: int = -1
    revision: int = 0
    occurrences_created: int = 0
    missed: int = 0
    skipped: int = 0
    last_index: int | None = None
    last_at: AwareDatetime | None = None
    ended: EndReason | None = None
    ended_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    pages: tuple[int, ...] = ()

    def with_snapshot(self, snapshot: SeriesSnapshot, at: datetime) -> SeriesRecord:
        """The record with the workflow's snapshot applied, unless it is older than what is stored."""
        if snapshot.generation < self.generation:
            return self
        return self.model_copy(
            update={
                "generation": snapshot.generation,
                "revision": snapshot.revision,
                "rule": snapshot.rule,
                "template": snapshot.template,
                "occurrences_created": snapshot.created,
                "missed": snapshot.missed,
                "skipped": snapshot.skipped,
                "last_index": snapshot.last_index,
                "last_at": snapshot.last_at,
                # An end the API recorded (cancelled, terminated) outlives a late activity's snapshot.
                "ended": snapshot.ended if snapshot.ended is not None else self.ended,
                "ended_at": snapshot.ended_at if snapshot.ended is not None else self.ended_at,
                "updated_at": max(self.updated_at, at),
            }
        )


def list_key(list_id: str) -> str:
    return f"series-list:{list_id}"


class ListSeries(_Model):
    """The series ever made on a list (any member's), so deleting the list can end them at once."""

    series: tuple[str, ...] = Field(default=(), max_length=100_000)


class OccurrencePage(_Model):
    """Entries of occurrences `page * 100` to `page * 100 + 99`, by index."""

    entries: dict[int, OccurrenceEntry] = {}


def merge_entry(old: OccurrenceEntry | None, patch: OccurrenceEntry) -> OccurrenceEntry:
    """`patch`'s set fields over `old` (a retried write merges to the same entry)."""
    if old is None:
        return patch
    values = old.model_dump()
    values.update({k: v for k, v in patch.model_dump().items() if v is not None})
    return OccurrenceEntry.model_validate(values)


class OwnedSeries(_Model):
    id: ItemId
    created_at: AwareDatetime


class OwnerIndex(_Model):
    """A user's series, oldest first. Bounded by the series-per-user limit; never rewritten per
    occurrence."""

    series: tuple[OwnedSeries, ...] = Field(default=(), max_length=100_000)
