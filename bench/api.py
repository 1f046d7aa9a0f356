"""S1 (performance-anchors §4.2): REST CRUD through the facade (app + embedded sidecar, actor per list)
vs the same endpoints in plain FastAPI + SQLite (`bench/plain_peer.py`), in one invocation.

    .venv/bin/python bench/api.py [--quick] [--lists N] [--seconds S] [--touch N] [--touch-only]
        [--facade-only] [--facade-tree DIR] [--resources-path DIR]

Mix: 70% GET a list's items, 20% POST an item, 10% complete an item; list chosen Zipf(1.1) over the
seeded lists of 100 users. For each system: the max rate (closed loop), then fixed arrival rates (open
loop: latency counted from the scheduled send time, so queueing shows). Then the facade alone: RSS of
app + sidecar after N distinct lists were touched (a GET on each activates its actor in both processes).
Everything runs on loopback; the driver shares the 2 cores with the systems under test.

Before/after comparisons drive another checkout's facade (`--facade-tree`) with this one driver, so only the
system under test differs; `--resources-path dapr/components` runs it on `pubsub.in-memory` instead of the
durable default, which separates the cost of durable delivery from the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import functools
import gc
import itertools
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.targets import ROOT, Target, start_facade, start_peer, wait_ready

USERS = 100


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Zipf:
    """Ranks 0..n-1 with P(k) ~ 1/(k+1)^s, by inverse CDF."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        weights = [1 / (k + 1) ** s for k in range(n)]
        self.cdf = list(itertools.accumulate(weights))
        self.rng = rng

    def draw(self) -> int:
        return bisect.bisect_left(self.cdf, self.rng.random() * self.cdf[-1])


async def seed(session: aiohttp.ClientSession, target: Target, n_lists: int, items_for: int) -> float:
    """n lists over USERS users; the `items_for` hottest lists get 2 items each. Returns lists/s."""
    sem = asyncio.Semaphore(32)
    made: list[tuple[str, str] | None] = [None] * n_lists

    async def one(k: int) -> None:
        user = f"user{k % USERS}"
        async with (
            sem,
            session.post(
                f"{target.base}/v1/lists", json={"title": f"list {k}"}, headers=target.headers(user)
            ) as r,
        ):
            if r.status != 201:
                raise RuntimeError(f"seed list failed: {r.status} {await r.text()}")
            made[k] = (user, (await r.json())["id"])

    t0 = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(n_lists)))
    rate = n_lists / (time.perf_counter() - t0)
    target.lists = [m for m in made if m is not None]

    async def items(user: str, list_id: str) -> None:
        for title in ("milk", "eggs"):
            async with (
                sem,
                session.post(
                    f"{target.base}/v1/lists/{list_id}/items",
                    json={"title": title},
                    headers=target.headers(user),
                ) as r,
            ):
                target.items.setdefault(list_id, []).append((await r.json())["id"])

    await asyncio.gather(*(items(u, lid) for u, lid in target.lists[:items_for]))
    return rate


class Mix:
    def __init__(self, target: Target, seed_: int) -> None:
        self.target = target
        self.rng = random.Random(seed_)
        self.zipf = Zipf(len(target.lists), 1.1, self.rng)

    def next(self) -> tuple[str, str, str, dict[str, str] | None]:
        t = self.target
        roll = self.rng.random()
        if roll < 0.7:
            user, list_id = t.lists[self.zipf.draw()]
            return user, "GET", f"/v1/lists/{list_id}/items?limit=50", None
        if roll < 0.9:
            user, list_id = t.lists[self.zipf.draw()]
            return user, "POST", f"/v1/lists/{list_id}/items", {"title": "bench item"}
        while True:  # complete: a list that has items
            user, list_id = t.lists[self.zipf.draw()]
            ids = t.items.get(list_id)
            if ids:
                return user, "POST", f"/v1/lists/{list_id}/items/{self.rng.choice(ids)}:complete", None


async def request(
    session: aiohttp.ClientSession, target: Target, op: tuple[str, str, str, dict[str, str] | None]
) -> int:
    user, method, path, body = op
    async with session.request(method, target.base + path, json=body, headers=target.headers(user)) as r:
        data = await r.read()
        if r.status == 201 and method == "POST" and path.endswith("/items"):
            target.items.setdefault(path.split("/")[3], []).append(json.loads(data)["id"])
        return r.status


@contextlib.contextmanager
def driver_heap_quiet() -> Iterator[None]:
    """No garbage collection in this (the load generator's) process while a step is measured.

    The driver keeps every list, item id and in-flight task: its own full collections took ~70 ms and
    showed up as a burst of late requests, i.e. in the system's p99.9 (seen with a gc callback)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def closed_loop(
    session: aiohttp.ClientSession, target: Target, seconds: float, workers: int, mix: Mix | None = None
) -> tuple[float, int]:
    mix = mix or Mix(target, 1)
    done = errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < stop_at:
            status = await request(session, target, mix.next())
            done += 1
            errors += status >= 300

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.perf_counter() - t0), errors


async def open_loop(
    session: aiohttp.ClientSession, target: Target, rate: float, seconds: float
) -> dict[str, float]:
    mix = Mix(target, 2)
    latencies: list[float] = []
    errors = 0
    tasks = []
    start = time.perf_counter()

    async def one(at: float, op: tuple[str, str, str, dict[str, str] | None]) -> None:
        nonlocal errors
        status = await request(session, target, op)
        latencies.append(time.perf_counter() - at)
        errors += status >= 300

    for i in range(int(rate * seconds)):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at, mix.next())))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    ms = [x * 1000 for x in latencies]
    return {
        "offered": rate,
        "achieved": len(latencies) / elapsed,
        "p50": pct(ms, 50),
        "p90": pct(ms, 90),
        "p99": pct(ms, 99),
        "p99.9": pct(ms, 99.9),
        "errors": float(errors),
    }


async def feed_events(session: aiohttp.ClientSession, target: Target) -> float:
    """Events the facade's feed has taken in so far (its `/metrics` counter, all outcomes)."""
    async with session.get(f"{target.base}/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("todo_feed_events_total{")
    )


async def feed_drain(session: aiohttp.ClientSession, target: Target, quiet: float = 1.0) -> float:
    """Seconds until the feed stops taking in events after the load ended: how far pub/sub deliveries
    (serial per topic, as with daprd's in-memory component) lag behind the writes."""
    start = last_change = time.perf_counter()
    seen = await feed_events(session, target)
    while time.perf_counter() - last_change < quiet:
        await asyncio.sleep(0.1)
        now = await feed_events(session, target)
        if now != seen:
            seen, last_change = now, time.perf_counter()
    return last_change - start


async def touch(session: aiohttp.ClientSession, target: Target, n: int) -> float:
    """GET n distinct lists (the seeded ones, then fresh ids: empty lists whose actors still activate)."""
    sem = asyncio.Semaphore(64)
    ids = [lid for _, lid in target.lists] + [f"t{k:07d}" for k in range(max(0, n - len(target.lists)))]

    async def one(k: int, list_id: str) -> None:
        async with (
            sem,
            session.get(f"{target.base}/v1/lists/{list_id}", headers=target.headers(f"user{k % USERS}")) as r,
        ):
            await r.read()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(k, lid) for k, lid in enumerate(ids[:n])))
    return n / (time.perf_counter() - t0)


async def touch_only(args: argparse.Namespace) -> dict[str, object]:
    """A fresh facade, then GET `args.touch` distinct (empty) lists: what each touched list costs."""
    data = Path(tempfile.mkdtemp(prefix="bench-api-touch-"))
    target = start_facade(data)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
            await wait_ready(session, target)
            before = target.rss()
            rate = await touch(session, target, args.touch)
            after = target.rss()
    finally:
        target.stop()
    return {
        "RSS MB app+sidecar, fresh": round(before, 1),
        f"touch {args.touch} lists: req/s": round(rate, 1),
        f"RSS MB app+sidecar after {args.touch} lists touched": round(after, 1),
        "KB per touched list": round((after - before) * 1024 / args.touch, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    if args.touch_only:
        return await touch_only(args)
    report: dict[str, object] = {}
    rates = [250, 500] if args.quick else [250, 500, 1000]
    facade = functools.partial(start_facade, tree=args.facade_tree, resources=args.resources_path)
    plain = () if args.facade_only else (start_peer, functools.partial(start_peer, workers=2))
    starters = (facade, *plain)
    for starter in starters:
        data = Path(tempfile.mkdtemp(prefix="bench-api-"))
        target = starter(data)
        try:
            conn = aiohttp.TCPConnector(limit=256)
            async with aiohttp.ClientSession(connector=conn) as session:
                await wait_ready(session, target)
                seeded = await seed(session, target, args.lists, min(args.lists, 2000))
                row: dict[str, object] = {"seed lists/s": round(seeded, 1)}
                await closed_loop(session, target, 3, 32)  # warm-up
                with driver_heap_quiet():
                    rps, errors = await closed_loop(session, target, args.seconds, 32)
                row["max req/s (closed loop x32)"] = round(rps, 1)
                row["max errors"] = errors
                for rate in rates:
                    with driver_heap_quiet():
                        measured = await open_loop(session, target, rate, args.seconds)
                    step = {k: round(v, 2) for k, v in measured.items()}
                    if target.name == "facade":
                        step["feed drained s after"] = round(await feed_drain(session, target), 2)
                    row[f"@{rate}"] = step
                row["RSS MB after mix"] = round(target.rss(), 1)
                if target.name == "facade":
                    touched = await touch(session, target, args.touch)
                    row[f"touch {args.touch} lists: req/s"] = round(touched, 1)
                    row[f"RSS MB app+sidecar after {args.touch} lists touched"] = round(target.rss(), 1)
                report[target.name] = row
        finally:
            target.stop()
    if args.facade_only:
        return report
    # Both ratios: the facade's two processes use both cores, a 1-process peer one, a 2-worker peer both.
    facade_row = report["facade"]
    assert isinstance(facade_row, dict)
    peers = {"1 process": "plain FastAPI+SQLite", "2 workers": "plain FastAPI+SQLite (2 workers)"}
    for label, peer_name in peers.items():
        peer = report[peer_name]
        assert isinstance(peer, dict)
        report[f"ratio facade/peer {label} (max req/s)"] = round(
            float(facade_row["max req/s (closed loop x32)"]) / float(peer["max req/s (closed loop x32)"]), 3
        )
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1k lists, 5 s per step, 10k lists touched")
    p.add_argument("--lists", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--touch", type=int, default=None)
    p.add_argument("--touch-only", action="store_true", help="RSS of a fresh facade touching N lists")
    p.add_argument("--facade-only", action="store_true", help="no plain peers (before/after runs)")
    p.add_argument("--facade-tree", type=Path, default=ROOT, help="the checkout whose facade is measured")
    p.add_argument("--resources-path", type=Path, default=None, help="component files for `up`")
    args = p.parse_args()
    args.lists = args.lists or (1000 if args.quick else 10_000)
    args.seconds = args.seconds or (5.0 if args.quick else 30.0)
    args.touch = args.touch or (10_000 if args.quick else 100_000)
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
