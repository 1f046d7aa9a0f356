"""Series records, occurrence logs and owner indexes in the Dapr state store, through the gRPC `DaprClient`.

Every read-modify-write is optimistic (ETags) and retried on conflict: the workflow's activities and the
API may write the same record, and an activity may run twice. A log write and its record update go in one
state transaction, so the record's ETag also serializes concurrent writers of a page.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Final, TypeVar

import grpc
from dapr.aio.clients import DaprClient

# A private module of public types: the SDK exports them nowhere else (its docs import them so).
from dapr.clients.grpc._request import TransactionalStateOperation
from dapr.clients.grpc._state import Concurrency, StateOptions
from pydantic import BaseModel

from todo_actors.errors import LimitExceeded
from workflows.models import OccurrenceEntry, SeriesSnapshot
from workflows.records import (
    ListSeries,
    OccurrencePage,
    OwnedSeries,
    OwnerIndex,
    SeriesRecord,
    list_key,
    merge_entry,
    owner_key,
    page_key,
    page_of,
    record_key,
)

__all__ = ["ConflictRetriesExhausted", "SeriesStore", "is_conflict"]

log = logging.getLogger("workflows.store")

M = TypeVar("M", bound=BaseModel)

_ATTEMPTS: Final = 30


class ConflictRetriesExhausted(RuntimeError):
    """Too many concurrent writers kept changing a key; retryable later."""


def is_conflict(exc: BaseException) -> bool:
    """Whether a `DaprClient` error is an ETag mismatch (gRPC ABORTED), worth re-reading and retrying."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, grpc.RpcError) and candidate.code() == grpc.StatusCode.ABORTED:
            return True
    return False


class SeriesStore:
    """The series' keys in state store `store_name` (see `records` for the layout)."""

    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    # reads ---------------------------------------------------------------------------------------

    async def _read(self, key: str, model: type[M]) -> tuple[M | None, str | None]:
        found = await self._client.get_state(self._store, key)
        if not found.data:
            return None, None
        return model.model_validate_json(found.data), found.etag or None

    async def get(self, series_id: str) -> SeriesRecord | None:
        record, _ = await self._read(record_key(series_id), SeriesRecord)
        return record

    async def owned(self, owner: str) -> tuple[OwnedSeries, ...]:
        index, _ = await self._read(owner_key(owner), OwnerIndex)
        return () if index is None else index.series

    async def of_list(self, list_id: str) -> tuple[str, ...]:
        index, _ = await self._read(list_key(list_id), ListSeries)
        return () if index is None else index.series

    async def occurrences(self, record: SeriesRecord, pages: Iterable[int]) -> list[OccurrenceEntry]:
        """The logged entries on `pages` (page numbers from `record.pages`), by index."""
        wanted = [p for p in pages if p in record.pages]
        if not wanted:
            return []
        found = await self._client.get_bulk_state(self._store, [page_key(record.id, p) for p in wanted])
        entries: list[OccurrenceEntry] = []
        for item in found.items:
            if item.error:
                raise RuntimeError(f"reading {item.key}: {item.error}")
            if item.data:
                entries.extend(OccurrencePage.model_validate_json(item.data).entries.values())
        return sorted(entries, key=lambda e: e.index)

    # writes --------------------------------------------------------------------------------------

    async def insert(self, record: SeriesRecord) -> SeriesRecord:
        """Store a new record; if one exists under its id (a retried create), return that one."""
        try:
            await self._client.save_state(
                self._store,
                record_key(record.id),
                record.model_dump_json(),
                options=StateOptions(concurrency=Concurrency.first_write),
            )
            return record
        except Exception as exc:
            if not is_conflict(exc):
                raise
        existing = await self.get(record.id)
        if existing is None:
            raise ConflictRetriesExhausted(f"series {record.id} was created and deleted concurrently")
        return existing

    async def update(
        self, series_id: str, change: Callable[[SeriesRecord], SeriesRecord | None]
    ) -> SeriesRecord | None:
        """Apply `change` to the stored record (None from `change` = leave it); None if there is none."""
        for attempt in range(_ATTEMPTS):
            record, etag = await self._read(record_key(series_id), SeriesRecord)
            if record is None:
                return None
            new = change(record)
            if new is None or new == record:
                return record
            try:
                await self._client.save_state(
                    self._store, record_key(series_id), new.model_dump_json(), etag=etag
                )
                return new
            except Exception as exc:
                if not is_conflict(exc):
                    raise
            await _backoff(attempt)
        raise ConflictRetriesExhausted(f"series {series_id}: the record kept changing")

    async def log(
        self, series_id: str, entries: Iterable[OccurrenceEntry], snapshot: SeriesSnapshot, at: datetime
    ) -> bool:
        """Merge `entries` into the occurrence log and apply `snapshot` to the record, atomically.

        False when the series has no record (it was never fully created): nothing is written.
        """
        patches = list(entries)
        pages = sorted({page_of(e.index) for e in patches})
        main = record_key(series_id)
        for attempt in range(_ATTEMPTS):
            # The record and the pages in one read (one round trip per occurrence, not two).
            found = await self._client.get_bulk_state(
                self._store, [main, *(page_key(series_id, p) for p in pages)]
            )
            items = {item.key: item for item in found.items}
            for read in items.values():
                if read.error:
                    raise RuntimeError(f"reading {read.key}: {read.error}")
            head = items.get(main)
            if head is None or not head.data:
                log.warning("series %s: no record; occurrence log not written", series_id)
                return False
            record, etag = SeriesRecord.model_validate_json(head.data), head.etag or None
            ops: list[TransactionalStateOperation] = []
            for number in pages:
                key = page_key(series_id, number)
                item = items.get(key)
                page = (
                    OccurrencePage.model_validate_json(item.data) if item and item.data else OccurrencePage()
                )
                merged = dict(page.entries)
                for patch in patches:
                    if page_of(patch.index) == number:
                        merged[patch.index] = merge_entry(merged.get(patch.index), patch)
                data = OccurrencePage(entries=merged).model_dump_json()
                ops.append(TransactionalStateOperation(key=key, data=data, etag=(item and item.etag) or None))
            new = record.with_snapshot(snapshot, at)
            if pages:
                new = new.model_copy(update={"pages": tuple(sorted({*new.pages, *pages}))})
            if not ops and new == record:
                return True
            ops.append(TransactionalStateOperation(key=main, data=new.model_dump_json(), etag=etag))
            try:
                await self._client.execute_state_transaction(self._store, ops)
                return True
            except Exception as exc:
                if not is_conflict(exc):
                    raise
            await _backoff(attempt)
        raise ConflictRetriesExhausted(f"series {series_id}: the log kept changing")

    async def add_owned(self, owner: str, entry: OwnedSeries, limit: int) -> None:
        """Add `entry` to the owner's index (no-op if present); LimitExceeded past `limit` series."""
        key = owner_key(owner)
        for attempt in range(_ATTEMPTS):
            index, etag = await self._read(key, OwnerIndex)
            current = () if index is None else index.series
            if any(s.id == entry.id for s in current):
                return
            if len(current) >= limit:
                raise LimitExceeded(
                    f"a user has at most {limit} series", limit_name="series_per_owner", limit=limit
                )
            if await self._save_index(key, OwnerIndex(series=(*current, entry)), etag):
                return
            await _backoff(attempt)
        raise ConflictRetriesExhausted(f"the series index of {owner!r} kept changing")

    async def _save_index(self, key: str, index: BaseModel, etag: str | None) -> bool:
        """Save an index guarded by the ETag it was read with (first-write when new); False on a conflict."""
        options = None if etag else StateOptions(concurrency=Concurrency.first_write)
        try:
            await self._client.save_state(
                self._store, key, index.model_dump_json(), etag=etag, options=options
            )
        except Exception as exc:
            if not is_conflict(exc):
                raise
            return False
        return True

    async def add_to_list(self, list_id: str, series_id: str) -> None:
        """Add `series_id` to the list's index of series (no-op if present)."""
        key = list_key(list_id)
        for attempt in range(_ATTEMPTS):
            index, etag = await self._read(key, ListSeries)
            current = () if index is None else index.series
            if series_id in current:
                return
            if await self._save_index(key, ListSeries(series=(*current, series_id)), etag):
                return
            await _backoff(attempt)
        raise ConflictRetriesExhausted(f"the series index of list {list_id!r} kept changing")


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
