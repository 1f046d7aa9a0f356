"""One series stack per package run: the sidecar, the app channel with the list actors and the series
worker, sharing one manual clock (the SDK's actor runtime is process-global, so one clock for all)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from sidecar import ManualClock
from tests.workflows.series.stack import SeriesStack
from workflows.config import SeriesSettings
from workflows.series_client import SeriesService

SETTINGS = SeriesSettings(min_interval=timedelta(hours=1))


@pytest.fixture(scope="package")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[SeriesStack]:
    with SeriesStack(tmp_path_factory.mktemp("series"), clock, SETTINGS).running() as served:
        yield served


@pytest.fixture(autouse=True)
def _this_sidecar(stack: SeriesStack) -> None:
    stack.use()


@pytest.fixture
async def service(stack: SeriesStack, owner: str) -> AsyncIterator[SeriesService]:
    """The service; the owner's series still running afterwards are cancelled, so later clock jumps
    in other tests do not make them work in the background."""
    async with stack.service() as svc:
        yield svc
        for series in (await svc.list(owner, limit=200)).items:
            if series.status in ("running", "paused"):
                await svc.cancel(owner, series.id)


@pytest.fixture
def owner() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def list_id(stack: SeriesStack, owner: str) -> str:
    list_id = f"l-{uuid.uuid4().hex[:12]}"
    await stack.new_list(owner, list_id)
    return list_id
