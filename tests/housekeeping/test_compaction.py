"""Feed compaction and its registry on the real state store: `Feed.compact` deletes the oldest events up to
the first younger one and resumes from where it stopped; a new `Housekeeping` (a restarted process) finds
the users an earlier one registered and compacts them when their oldest event falls behind the retention."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from api.channel.feed import Feed, FeedAppend
from api.channel.housekeeping import Housekeeping, tick_time
from api.middleware.metrics import ApiMetrics
from tests.api.conftest import Stack
from todo_actors.sidecar_http import SidecarHttp
from workflows.taskhub import TaskHub

# Event times are the events' own. Long before the clock: the other tests' users in the shared registry are
# never due at these cutoffs, and the stack's own runs delete these events only after this test.
T0 = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[SidecarHttp]:
    pool = SidecarHttp(stack.settings.dapr_http_endpoint, api_token=stack.settings.dapr_token)
    yield pool
    await pool.close()


def _feed(http: SidecarHttp) -> Feed:
    return Feed(http, "statestore", max_events=100, seen_ttl_seconds=3600)


async def _append_days(feed: Feed, user: str, days: list[int]) -> None:
    await feed.append_batch(
        [
            FeedAppend(user, f"{user}-{d}", "task.created", {"d": d}, at=T0 + dt.timedelta(days=d))
            for d in days
        ]
    )


async def test_compact_deletes_the_oldest_and_resumes(http: SidecarHttp) -> None:
    user, feed = f"u-{uuid.uuid4().hex[:8]}", _feed(http)
    await _append_days(feed, user, [0, 1, 2, 10, 11])
    first = await feed.compact(user, T0 + dt.timedelta(days=2), floor=0)
    assert (first.deleted, first.floor, first.oldest) == (2, 2, T0 + dt.timedelta(days=2))
    page = await feed.page(user, 0, 100)
    assert [e.data["d"] for e in page.events] == [2, 10, 11]
    again = await feed.compact(user, T0 + dt.timedelta(days=2), floor=first.floor)
    assert again.deleted == 0 and again.floor == 2  # nothing new: one read, nothing deleted
    everything = await feed.compact(user, T0 + dt.timedelta(days=30), floor=again.floor)
    assert (everything.deleted, everything.floor, everything.oldest) == (3, 5, None)
    assert (await feed.page(user, 0, 100)).events == []
    await _append_days(feed, user, [40])  # cursors go on after a compaction
    assert [e.cursor for e in (await feed.page(user, 0, 100)).events] == ["6"]


async def test_a_restarted_process_compacts_users_registered_before(stack: Stack, http: SidecarHttp) -> None:
    user, feed = f"u-{uuid.uuid4().hex[:8]}", _feed(http)
    taskhub = TaskHub(stack.settings.dapr_grpc_address, stack.settings.dapr_token)
    metrics = ApiMetrics()

    def housekeeping() -> Housekeeping:
        return Housekeeping(
            taskhub=taskhub,
            feed=feed,
            http=http,
            store="statestore",
            metrics=metrics,
            clock=lambda: T0,
            workflow_retention_seconds=10 * 365 * 86_400,  # purge nothing of the other tests
            feed_retention_seconds=5 * 86_400,
        )

    try:
        await _append_days(feed, user, [0, 3, 8])
        first = housekeeping()
        first.touched(user)
        run = await first.run(T0 + dt.timedelta(days=6))  # cutoff day 1
        assert run is not None and (run.feed_events_deleted, run.feed_users_checked) == (1, 1)
        quiet = await first.run(T0 + dt.timedelta(days=7))  # oldest kept is day 3, cutoff day 2: no read
        assert quiet is not None and quiet.feed_users_checked == 0

        restarted = housekeeping()  # nothing touched in this one
        run = await restarted.run(T0 + dt.timedelta(days=14))  # cutoff day 9
        assert run is not None and run.feed_events_deleted == 2
        assert (await feed.page(user, 0, 100)).events == []
        text = metrics.response().body.decode()
        assert 'todo_housekeeping_items_total{kind="feed_events_deleted"} 3.0' in text
        assert 'todo_housekeeping_runs_total{outcome="ok"} 3.0' in text
    finally:
        await taskhub.aclose()


def test_tick_time_reads_daprds_read_time() -> None:
    assert tick_time({"readtimeutc": "2026-03-01 10:00:00.1234567 +0000 UTC"}) == dt.datetime(
        2026, 3, 1, 10, 0, 0, 123456, tzinfo=dt.UTC
    )
    assert tick_time({"readtimeutc": "2026-03-01 10:00:00 +0000 UTC"}) == dt.datetime(
        2026, 3, 1, 10, tzinfo=dt.UTC
    )
    assert tick_time({"readtimeutc": "yesterday"}) is None
    assert tick_time({}) is None
