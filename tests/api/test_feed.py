"""The change feed on the real state store: cursors only grow and never repeat, duplicates are dropped,
concurrent appenders (several `Feed`s, as replicas would be) share nothing, and old events are pruned."""

from __future__ import annotations

import asyncio

from api.channel.feed import Feed, FeedAppend
from api.channel.feed_signal import FeedSignal
from tests.api.conftest import Stack
from todo_actors.sidecar_http import SidecarHttp


async def test_append_dedupe_bound_and_page(stack: Stack, user: str) -> None:
    notified: list[str] = []
    http = SidecarHttp(stack.settings.dapr_http_endpoint, api_token=stack.settings.dapr_token)
    try:
        feed = Feed(http, "statestore", max_events=10, seen_ttl_seconds=3600, on_append=notified.append)
        assert (await feed.page(user, 0, 100)).events == []
        cursors = [await feed.append(user, f"{user}-e{n}", "task.created", {"n": n}) for n in range(25)]
        assert cursors == list(range(1, 26)) and notified == [user] * 25
        assert await feed.append(user, f"{user}-e3", "task.created", {"n": 3}) is None  # a redelivery
        page = await feed.page(user, 0, 100)
        assert [e.cursor for e in page.events] == [str(c) for c in range(16, 26)]  # only the newest 10
        assert [e.data["n"] for e in page.events] == list(range(15, 25))
        assert page.next_cursor == "25" and not page.has_more
        first = await feed.page(user, 17, 3)
        assert [e.cursor for e in first.events] == ["18", "19", "20"] and first.has_more
        assert (await feed.page(user, 25, 10)).events == [] and (
            await feed.page(user, 25, 10)
        ).next_cursor == "25"
    finally:
        await http.close()


async def test_concurrent_appenders_never_share_a_cursor(stack: Stack, user: str) -> None:
    endpoint, token = stack.settings.dapr_http_endpoint, stack.settings.dapr_token
    pools = [SidecarHttp(endpoint, api_token=token) for _ in "ab"]
    try:
        feeds = [Feed(p, "statestore", max_events=1000, seen_ttl_seconds=3600) for p in pools]
        # 40 events, each delivered to both "replicas" at once.
        results = await asyncio.gather(
            *(
                feed.append(user, f"{user}-c{n}", "task.updated", {"n": n})
                for n in range(40)
                for feed in feeds
            )
        )
        cursors = [c for c in results if c is not None]
        assert sorted(cursors) == list(range(1, 41))
        page = await feeds[0].page(user, 0, 500)
        assert sorted(int(str(e.data["n"])) for e in page.events) == list(range(40))
        assert len({e.id for e in page.events}) == 40
    finally:
        for pool in pools:
            await pool.close()


async def test_a_batch_spans_users_keeps_its_order_and_drops_duplicates(stack: Stack, user: str) -> None:
    other = f"{user}-other"
    notified: list[str] = []
    http = SidecarHttp(stack.settings.dapr_http_endpoint, api_token=stack.settings.dapr_token)
    try:
        feed = Feed(http, "statestore", max_events=10, seen_ttl_seconds=3600, on_append=notified.append)
        assert await feed.append(user, f"{user}-b0", "task.created", {"n": 0}) == 1
        batch = [
            FeedAppend(user, f"{user}-b0", "task.created", {"n": 0}),  # appended before: a redelivery
            FeedAppend(other, f"{user}-b1", "task.created", {"n": 1}),
            FeedAppend(user, f"{user}-b2", "task.updated", {"n": 2}),
            FeedAppend(other, f"{user}-b1", "task.created", {"n": 1}),  # twice in one batch
            *(FeedAppend(user, f"{user}-b{n}", "task.updated", {"n": n}) for n in range(3, 15)),
        ]
        cursors = await feed.append_batch(batch)
        assert cursors == [None, 1, 2, None, *range(3, 15)]
        assert sorted(set(notified)) == sorted({user, other})
        mine = await feed.page(user, 0, 100)
        # 14 events in all for `user`, pruned to the newest 10, in batch order.
        assert [e.cursor for e in mine.events] == [str(c) for c in range(5, 15)]
        assert [e.data["n"] for e in mine.events] == list(range(5, 15))
        theirs = await feed.page(other, 0, 100)
        assert [(e.cursor, e.id) for e in theirs.events] == [("1", f"{user}-b1")]
        assert await feed.append_batch(batch) == [None] * len(batch)  # the whole batch redelivered
        assert await feed.append_batch([]) == []
    finally:
        await http.close()


async def test_signal_wakes_a_watcher_only_for_its_user() -> None:
    signal = FeedSignal()
    with signal.watch("alice") as alice, signal.watch("bob") as bob:
        signal.notify("alice")
        assert await alice.wait(1.0) is True
        assert await bob.wait(0.05) is False
    with signal.watch("alice") as again:
        # Notified before waiting still counts (the watch was registered first).
        signal.notify("alice")
        assert await again.wait(0.01) is True
