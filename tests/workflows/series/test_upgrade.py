"""A series part-way through an occurrence when the one-activity version is deployed: its generation's history
names the two activities of before (series_notify, then series_recreate). The new worker replays it down the
old branch (`ONE_ACTIVITY_PATCH` is not in that history), finishes the occurrence once, and the next
generation runs as one activity."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from dapr.ext.workflow import DaprWorkflowContext

import workflows.runtime
from tests.workflows.series.stack import SeriesStack, spec, step, wait_until
from workflows.activities import SeriesActivities
from workflows.config import SeriesSettings
from workflows.models import RecreateInput, RecreateResult
from workflows.series import ONE_ACTIVITY_PATCH, series_workflow
from workflows.series_client import SeriesService


class _BeforeThePatch:
    """The workflow context as the code before the patch saw it: it never asked, so it never took it."""

    def __init__(self, ctx: DaprWorkflowContext) -> None:
        self._ctx = ctx

    def is_patched(self, name: str) -> bool:
        assert name == ONE_ACTIVITY_PATCH
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def old_series(ctx: DaprWorkflowContext, state: Any) -> Any:
    return series_workflow(_BeforeThePatch(ctx), state)  # type: ignore[arg-type]


class OldWorkerActivities(SeriesActivities):
    """The real activities; recreate hangs (the old worker dies with it in flight); both kinds counted."""

    def __init__(self, settings: SeriesSettings, dapr_address: str) -> None:
        super().__init__(settings, dapr_address=dapr_address)
        self.recreates = 0
        self.occurrences = 0

    async def occurrence(self, payload: RecreateInput) -> RecreateResult:
        self.occurrences += 1
        return await super().occurrence(payload)

    async def recreate(self, payload: RecreateInput) -> RecreateResult:
        self.recreates += 1
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_mid_occurrence_history_from_before_the_patch_replays_cleanly(
    stack: SeriesStack, service: SeriesService, owner: str, list_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dtstart = datetime.combine((stack.now() + timedelta(days=1)).date(), time(9))
    series = await service.create(owner, spec(list_id, "FREQ=DAILY", dtstart))
    series = await stack.settled(service, owner, series.id, 0)
    stack.stop_worker()
    old = OldWorkerActivities(stack.settings, stack.grpc_address)
    with monkeypatch.context() as patched:
        patched.setattr(workflows.runtime, "series_workflow", old_series)
        stack.start_worker(old)
        try:
            assert series.next_occurrence_at is not None
            stack.advance_to(series.next_occurrence_at)
            await wait_until(lambda: old.recreates == 1)  # notify ran as its own activity, recreate hangs
        finally:
            stack.stop_worker()
    assert old.occurrences == 0
    assert await stack.items(list_id, series.id) == []

    stack.start_worker()  # the upgrade: replays series_notify + series_recreate, runs recreate again
    items = await stack.wait_items(list_id, series.id, 1)
    series = await stack.settled(service, owner, series.id, 1)
    assert series.status == "running"
    series, items = await step(stack, service, owner, series, 2)  # the next one: one activity
    assert [i.occurrence for i in items] == [0, 1]
    log = await service.occurrences(owner, series.id)
    assert [e.item_id for e in log.items] == [i.id for i in items]
    assert all(e.notified_at is not None and e.created_at is not None for e in log.items)
    notified = stack.events.of("occurrence.due", lambda e: e["data"]["series_id"] == series.id)
    assert sorted({e["id"] for e in notified}) == [f"{series.id}:0", f"{series.id}:1"]
