"""The engine (sidecar and worker) stopped for three days, then restarted on the same data dir: each series
handles what it missed per its catch-up policy, and a worker lost between notify and recreate loses
nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from tests.workflows.series.stack import SeriesStack, spec, step, wait_until
from workflows.activities import SeriesActivities
from workflows.config import SeriesSettings
from workflows.models import RecreateInput, RecreateResult, SeriesSnapshot
from workflows.series_client import SeriesService


async def test_catch_up_policies_after_three_days_down(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    dtstart = datetime.combine((stack.now() + timedelta(days=1)).date(), time(9))
    made = {
        policy: await service.create(owner, spec(list_id, "FREQ=DAILY", dtstart, catch_up=policy))
        for policy in ("skip", "latest", "all")
    }
    first = made["skip"].next_occurrence_at
    assert first is not None
    stack.advance_to(first)
    for series in made.values():
        await stack.wait_items(list_id, series.id, 1)
        await stack.settled(service, owner, series.id, 1)
    stack.stop_engine()
    try:
        stack.advance_to(first + timedelta(days=3, hours=2))  # occurrences 1-3 fall due while down
    finally:
        stack.start_engine()
    expected = {"skip": [0], "latest": [0, 3], "all": [0, 1, 2, 3]}
    for policy, series in made.items():
        items = await stack.wait_items(list_id, series.id, len(expected[policy]))
        now = await stack.settled(service, owner, series.id, 4)
        assert [i.occurrence for i in items] == expected[policy], policy
        assert now.next_occurrence_index == 4
        assert now.occurrences_missed == {"skip": 3, "latest": 2, "all": 0}[policy]
    await asyncio.sleep(0.3)
    for policy, series in made.items():  # and nothing more arrives
        assert len(await stack.items(list_id, series.id)) == len(expected[policy])


class GatedActivities(SeriesActivities):
    """The real activities, except that the first `recreate` of one series hangs until the worker dies."""

    def __init__(self, settings: SeriesSettings, series_id: str, dapr_address: str) -> None:
        super().__init__(settings, dapr_address=dapr_address)
        self.series_id = series_id
        self.entered = asyncio.Event()
        self.calls = 0

    async def recreate(self, payload: RecreateInput) -> RecreateResult:
        if payload.series_id == self.series_id:
            self.calls += 1
            if self.calls == 1:
                self.entered.set()
                await asyncio.sleep(3600)
        return await super().recreate(payload)


async def test_worker_lost_between_notify_and_recreate(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    dtstart = datetime.combine((stack.now() + timedelta(days=1)).date(), time(9))
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", dtstart))
    series = await stack.settled(service, owner, series.id, 0)
    stack.stop_worker()
    gated = GatedActivities(stack.settings, series.id, stack.grpc_address)
    stack.start_worker(gated)
    assert series.next_occurrence_at is not None
    stack.advance_to(series.next_occurrence_at)
    await wait_until(
        lambda: bool(stack.events.of("occurrence.due", lambda e: e["data"]["series_id"] == series.id))
    )
    await wait_until(lambda: gated.calls == 1)
    stack.stop_worker()  # the worker dies with recreate in flight (notify is done)
    assert await stack.items(list_id, series.id) == []
    stack.start_worker()  # a fresh worker: the sidecar dispatches recreate again
    items = await stack.wait_items(list_id, series.id, 1)
    series = await stack.settled(service, owner, series.id, 1)
    _, items = await step(stack, service, owner, series, 2)
    assert [i.occurrence for i in items] == [0, 1]
    log = await service.occurrences(owner, series.id)
    assert [e.item_id for e in log.items] == [i.id for i in items]
    notified = stack.events.of("occurrence.due", lambda e: e["data"]["series_id"] == series.id)
    assert sorted({e["id"] for e in notified}) == [f"{series.id}:0", f"{series.id}:1"]


async def test_recreate_twice_adds_one_item(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str
) -> None:
    dtstart = datetime.combine((stack.now() + timedelta(days=1)).date(), time(9))
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", dtstart))
    series, items = await step(stack, service, owner, series, 1)
    log = await service.occurrences(owner, series.id)
    entry = log.items[0]
    assert entry.scheduled_at is not None and entry.local is not None and entry.notified_at is not None
    record = await service.owned(owner, series.id)

    payload = RecreateInput(
        series_id=series.id,
        owner=owner,
        list_id=list_id,
        index=0,
        key=entry.key,
        scheduled_at=entry.scheduled_at,
        local=entry.local,
        tz="UTC",
        template=record.template,
        notified_at=entry.notified_at,
        snapshot=SeriesSnapshot(
            generation=0,
            revision=0,
            rule=record.rule,
            template=record.template,
            created=1,
            missed=0,
            skipped=0,
        ),
    )
    activities = SeriesActivities(stack.settings, dapr_address=stack.grpc_address)
    again = [await activities.recreate(payload) for _ in range(2)]
    await activities.aclose()
    assert [r.item_id for r in again] == [items[0].id, items[0].id]
    assert len(await stack.items(list_id, series.id)) == 1
    after = await service.owned(owner, series.id)
    assert (
        after.occurrences_created == record.occurrences_created
    )  # an older generation's snapshot is ignored
