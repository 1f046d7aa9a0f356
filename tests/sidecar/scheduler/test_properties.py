"""Property tests: the tick arithmetic, and the whole scheduler against a simple model of it."""

from __future__ import annotations

import asyncio
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.clock import ManualClock
from sidecar.scheduler import Job
from sidecar.scheduler.model import next_tick
from tests.stack import close_scheduler, open_scheduler

T0 = 1_700_000_000.0


@given(
    offset=st.floats(0, 10_000, allow_nan=False),
    period=st.floats(0.001, 3600, allow_nan=False),
    remaining=st.none() | st.integers(1, 10),
    ttl=st.none() | st.floats(0.001, 100_000, allow_nan=False),
    late=st.floats(0, 100_000, allow_nan=False),
)
def test_next_tick_stays_on_grid_in_the_future_and_inside_limits(offset, period, remaining, ttl, late):
    job = Job("k", "r", T0 + offset, period, remaining, None if ttl is None else T0 + offset + ttl)
    now = job.due + late
    following = next_tick(job, now)
    if remaining == 1:
        assert following is None
        return
    if following is None:
        assert job.expires is not None  # only ttl can end an unlimited or longer job
        return
    assert following.due > now
    assert following.due > job.due
    slack = 4 * math.ulp(following.due)  # epoch floats carry ~0.2 us of rounding
    steps = round((following.due - job.due) / period)
    assert steps >= 1
    assert abs(following.due - (job.due + steps * period)) <= slack
    assert following.due - period <= now + slack  # the first grid tick after now
    assert following.remaining == (None if remaining is None else remaining - 1)
    assert job.expires is None or following.due < job.expires
    assert (following.key, following.kind, following.period) == ("k", "r", period)


job_specs = st.lists(
    st.tuples(
        st.floats(0, 20, allow_nan=False),  # due offset
        st.none() | st.tuples(st.floats(1, 5, allow_nan=False), st.integers(1, 3)),
        st.booleans(),  # deleted before it is due
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=job_specs, steps=st.lists(st.floats(0.3, 0.9, allow_nan=False), min_size=1))
def test_scheduler_fires_each_tick_once_never_early(specs, steps):
    """Advancing by less than any period never skips a tick, so counts are exact."""
    asyncio.run(_run_model(specs, steps))


async def _run_model(specs, steps) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock()
        scheduler, db = await open_scheduler(Path(tmp) / "sidecar.db", clock, start=False, window=5.0)
        fired: dict[str, list[tuple[float, float]]] = {}

        async def handler(job: Job) -> None:
            fired.setdefault(job.key, []).append((clock.now(), job.due))

        scheduler.register("reminder", handler)
        await scheduler.start()
        try:
            now = clock.now()
            jobs = []
            for i, (offset, periodic, _) in enumerate(specs):
                period, remaining = periodic if periodic else (None, None)
                jobs.append(Job(f"j{i}", "reminder", now + 1 + offset, period, remaining))
            await scheduler.put_many(jobs)
            for i, (_, _, deleted) in enumerate(specs):
                if deleted:
                    await scheduler.delete(f"j{i}")
            horizon = now + 1 + 20 + 5 * 3 + 1
            index = 0
            while clock.now() < horizon:
                clock.advance(steps[index % len(steps)])
                index += 1
                await scheduler.settled()
            for i, (_, periodic, deleted) in enumerate(specs):
                calls = fired.get(f"j{i}", [])
                expected = 0 if deleted else (periodic[1] if periodic else 1)
                assert len(calls) == expected, (i, calls)
                assert all(at >= due for at, due in calls)
            assert await scheduler.count() == 0
        finally:
            await close_scheduler(scheduler, db)
