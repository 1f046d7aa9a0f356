"""Webhook delivery benchmark: deliveries/s and event->delivery latency with a local receiver.

    .venv/bin/python -m bench.webhooks [--items 500] [--hooks 4] [--concurrency 8]

Runs `todo-engine up --dev-clock` (with `TODO_WEBHOOKS_ALLOW_PRIVATE=true`, the receiver is on loopback) as a
child process, as a user would; registers `--hooks` webhooks for `task.created` on a local aiohttp receiver
in this process. Each item added is one feed event and `--hooks` deliveries, each a durable workflow.

- live: `--items` items added through the public API by `--concurrency` clients; deliveries/s (first write
  to last delivery) and event->delivery p50/p99 (the event's own timestamp to the receiver's arrival);
- burst: `--items` more while the receiver answers 503, then one dev-clock advance of 12 h makes every
  pending retry due at once: deliveries/s and the CPU per delivery of the app and the sidecar.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from aiohttp import web

from bench.time_travel import children, cpu_seconds, start_up


class Receiver:
    """Answers 204 (503 while `failing`); keeps each delivered message's latency (arrival minus the event's
    timestamp) and arrival time, and the messages that failed."""

    def __init__(self) -> None:
        self.failing = False
        self.failed: set[str] = set()
        self.delivered: dict[str, tuple[float, float]] = {}
        self.duplicates = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        message = request.headers["webhook-id"]
        if self.failing:
            self.failed.add(message)
            return web.Response(status=503)
        if message in self.delivered:
            self.duplicates += 1
        else:
            self.delivered[message] = now - _epoch(json.loads(body)["timestamp"]), now
        return web.Response(status=204)

    async def wait(self, count: Callable[[], int], expected: int) -> None:
        deadline = time.monotonic() + 600
        while count() < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if count() < expected:
            print(f"timed out: {count()} of {expected} arrived")


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Engine:
    """The child `todo-engine up` process and its sidecar, for CPU readings."""

    def __init__(self, pid: int) -> None:
        self.pids = pid, children(pid)

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.pids[0]), sum(cpu_seconds(p) for p in self.pids[1])


async def write_items(c: httpx.AsyncClient, list_id: str, items: int, concurrency: int) -> float:
    """Add `items` items with `concurrency` clients; the seconds it took."""
    queue = iter(range(items))
    started = time.perf_counter()

    async def writer() -> None:
        for k in queue:
            (await c.post(f"/v1/lists/{list_id}/items", json={"title": f"item {k}"})).raise_for_status()

    await asyncio.gather(*(writer() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run(url: str, token: str, engine: Engine, items: int, hooks: int, concurrency: int) -> None:
    receiver = Receiver()
    server = web.Application()
    server.router.add_post("/{hook}", receiver.handle)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    headers = {"Authorization": f"Bearer {token}"}
    expected = items * hooks
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as c:
            while (await c.get("/health/ready")).status_code != 200:
                await asyncio.sleep(0.1)
            for n in range(hooks):
                body = {"url": f"http://127.0.0.1:{port}/hook{n}", "events": ["task.created"]}
                (await c.post("/v1/webhooks", json=body)).raise_for_status()
            list_id = (await c.post("/v1/lists", json={"title": "bench"})).json()["id"]

            # Live: deliveries as the events happen.
            started = time.time()
            took = await write_items(c, list_id, items, concurrency)
            await receiver.wait(lambda: len(receiver.delivered), expected)
            live = [latency * 1000 for latency, _ in receiver.delivered.values()]
            p50, p99 = statistics.median(live), percentile(live, 0.99)
            live_wall = max(at for _, at in receiver.delivered.values()) - started
            print(f"items: {items} ({items / took:.0f} items/s written), webhooks: {hooks}")
            print(
                f"live: {len(live)} of {expected} deliveries, {len(live) / live_wall:.0f} deliveries/s "
                f"(first write to last delivery, {live_wall:.1f} s); event->delivery p50 "
                f"{p50:.0f} ms, p99 {p99:.0f} ms, max {max(live):.0f} ms"
            )

            # Burst: the receiver fails until every new message has failed once (their retries run on
            # in wall time meanwhile), then one clock advance of 12 h makes every pending retry due at once.
            receiver.failing = True
            await write_items(c, list_id, items, concurrency)
            await receiver.wait(lambda: len(receiver.failed), expected)
            cpu0, t0 = engine.cpu(), time.time()
            receiver.failing = False
            advance = {"seconds": 12 * 3600, "settle_timeout": 600}
            (await c.post("/v1/dev/clock:advance", json=advance)).raise_for_status()
            await receiver.wait(lambda: len(receiver.failed & receiver.delivered.keys()), expected)
            cpu1 = engine.cpu()
            arrivals = [receiver.delivered[m][1] for m in receiver.failed if m in receiver.delivered]
            burst = sum(1 for at in arrivals if at >= t0)
            burst_wall = max(arrivals) - t0
            per = 1000 / max(burst, 1)
            print(
                f"burst: {burst} retries due at once delivered in {burst_wall:.1f} s: "
                f"{burst / burst_wall:.0f} deliveries/s; CPU per delivery app "
                f"{(cpu1[0] - cpu0[0]) * per:.2f} ms, sidecar {(cpu1[1] - cpu0[1]) * per:.2f} ms"
            )
            print(f"duplicates: {receiver.duplicates}")
    finally:
        await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=500)
    p.add_argument("--hooks", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    os.environ["TODO_WEBHOOKS_ALLOW_PRIVATE"] = "true"  # the child reads it: the receiver is on loopback
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        proc, url, token = start_up(Path(tmp))
        try:
            asyncio.run(run(url, token, Engine(proc.pid), args.items, args.hooks, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
