"""Fixtures for the scheduler tests: the factory's scheduler on a real SQLite file per test, a ManualClock,
and a recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sidecar.clock import ManualClock
from sidecar.db import Database
from sidecar.scheduler import Job, Scheduler
from tests.stack import close_scheduler
from tests.stack import open_scheduler as scheduler_on

Opener = Callable[..., Awaitable[tuple[Scheduler, Database]]]


@dataclass
class Recorder:
    """A job handler that records each call as (key, now at call, job) and can be told to fail."""

    clock: ManualClock
    calls: list[tuple[str, float, Job]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # key -> how many next calls raise

    async def __call__(self, job: Job) -> None:
        self.calls.append((job.key, self.clock.now(), job))
        left = self.failures.get(job.key, 0)
        if left:
            self.failures[job.key] = left - 1
            raise RuntimeError(f"handler failure for {job.key}")

    def keys(self) -> list[str]:
        return [key for key, _, _ in self.calls]

    def count(self, key: str) -> int:
        return self.keys().count(key)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sidecar.db"


@pytest.fixture
async def open_scheduler(db_path: Path, clock: ManualClock) -> AsyncIterator[Opener]:
    """Opens (Scheduler, Database) pairs on the test's file; all are stopped and closed at the end."""
    opened: list[tuple[Scheduler, Database]] = []

    async def _open(start: bool = True, **options: Any) -> tuple[Scheduler, Database]:
        pair = await scheduler_on(db_path, clock, start=start, **options)
        opened.append(pair)
        return pair

    yield _open
    for scheduler, db in reversed(opened):
        await close_scheduler(scheduler, db)
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in leftover if t.get_name().startswith(("job:", "scheduler-"))]


@pytest.fixture
def recorder(clock: ManualClock) -> Recorder:
    return Recorder(clock)
