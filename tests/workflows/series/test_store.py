"""The occurrence log's write (`SeriesStore.log`): the record and its pages are read in one bulk read and
written in one ETag-guarded transaction, against the real sidecar's state store."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
from dapr.aio.clients import DaprClient

from tests.workflows.series.conftest import SETTINGS
from tests.workflows.series.stack import SeriesStack
from workflows.models import OccurrenceEntry, SeriesSnapshot, SeriesTemplate
from workflows.records import SeriesRecord
from workflows.store import SeriesStore

AT = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
TEMPLATE = SeriesTemplate(title="water the plants")


@pytest.fixture
async def store(stack: SeriesStack) -> AsyncIterator[SeriesStore]:
    async with DaprClient(address=stack.grpc_address) as client:
        yield SeriesStore(client, SETTINGS.state_store)


@pytest.fixture
def series_id() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def _record(series_id: str) -> SeriesRecord:
    return SeriesRecord(
        id=series_id,
        owner="store-owner",
        list_id="l-store",
        instance_id=f"series-{series_id}",
        template=TEMPLATE,
        rule="FREQ=DAILY",
        dtstart=AT.replace(tzinfo=None),
        tz="UTC",
        anchor="schedule",
        catch_up="all",
        grace_seconds=3600,
        created_at=AT,
        updated_at=AT,
    )


def _snapshot(created: int, generation: int = 1) -> SeriesSnapshot:
    return SeriesSnapshot(
        generation=generation,
        revision=0,
        rule="FREQ=DAILY",
        template=TEMPLATE,
        created=created,
        missed=0,
        skipped=0,
    )


def _entry(series_id: str, index: int, **fields: object) -> OccurrenceEntry:
    return OccurrenceEntry.model_validate(
        {
            "index": index,
            "key": f"{series_id}:{index}",
            "scheduled_at": AT + dt.timedelta(days=index),
            "local": (AT + dt.timedelta(days=index)).replace(tzinfo=None),
            **fields,
        }
    )


async def test_log_merges_entries_across_pages_and_applies_the_snapshot(
    store: SeriesStore, series_id: str
) -> None:
    await store.insert(_record(series_id))
    first = [
        _entry(series_id, 0, status="created", item_id="i0"),
        _entry(series_id, 150, status="created"),
    ]
    assert await store.log(series_id, first, _snapshot(created=2), AT)
    # A retried write of the same occurrence merges into its entry: one entry, the new field added.
    retry = [_entry(series_id, 150, item_id="i150")]
    assert await store.log(series_id, retry, _snapshot(created=2), AT + dt.timedelta(minutes=1))
    record = await store.get(series_id)
    assert record is not None
    assert record.pages == (0, 1) and record.occurrences_created == 2 and record.generation == 1
    assert record.updated_at == AT + dt.timedelta(minutes=1)
    entries = await store.occurrences(record, record.pages)
    assert [(e.index, e.status, e.item_id) for e in entries] == [
        (0, "created", "i0"),
        (150, "created", "i150"),
    ]


async def test_concurrent_logs_of_one_series_lose_nothing(store: SeriesStore, series_id: str) -> None:
    await store.insert(_record(series_id))
    # Every writer reads the same record and page, so all but one conflict and re-read (ETags).
    writes = [
        store.log(series_id, [_entry(series_id, i, status="created")], _snapshot(i), AT) for i in range(8)
    ]
    assert all(await asyncio.gather(*writes))
    record = await store.get(series_id)
    assert record is not None and record.pages == (0,)
    assert [e.index for e in await store.occurrences(record, record.pages)] == list(range(8))


async def test_log_of_a_series_without_record_writes_nothing(store: SeriesStore, series_id: str) -> None:
    assert not await store.log(series_id, [_entry(series_id, 3, status="created")], _snapshot(1), AT)
    assert await store.occurrences(_record(series_id).model_copy(update={"pages": (0,)}), [0]) == []
    assert await store.get(series_id) is None
