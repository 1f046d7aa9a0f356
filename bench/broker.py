"""Durable broker benchmark (`pubsub.embedded.sqlite`): throughput, publish->delivery latency, memory.

Runs a `PubSubEngine` with the durable component (real SQLite file, `synchronous=FULL`) and a real
subscriber app over HTTP on a thread; publishes through `PubSubEngine.publish` (what the HTTP and gRPC
publish APIs call). Each scenario runs in a fresh interpreter, so memory figures do not leak between them:

    PYTHONPATH=. .venv/bin/python bench/broker.py [--events 20000] [--rate 500] [--backlog 100000]

Goals: published+delivered >= 5,000 events/s; p99 publish->delivery <= 50 ms at 500 events/s; RSS growth
<= +50 MB with 100k undelivered messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sidecar.appchannel import AppChannel
from sidecar.clock import SystemClock
from sidecar.pubsub import BrokerSpec, PubSubEngine

__all__ = ["main"]

TOPIC = "bench"


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _App:
    """A subscriber that records when each event arrived (by the `n` in its data)."""

    def __init__(self, bulk: bool) -> None:
        self.arrived: dict[int, float] = {}
        self.bulk = bulk
        self.server: uvicorn.Server | None = None

    def build(self) -> Starlette:
        sub: dict[str, Any] = {"pubsubname": "pubsub", "topic": TOPIC, "route": "/events"}
        if self.bulk:
            sub["bulkSubscribe"] = {"enabled": True, "maxMessagesCount": 500, "maxAwaitDurationMs": 5}

        async def subscribe(request: Request) -> Response:
            return Response(json.dumps([sub]), media_type="application/json")

        async def events(request: Request) -> Response:
            body = json.loads(await request.body())
            now = time.monotonic()
            if "entries" in body:
                for entry in body["entries"]:
                    self.arrived[entry["event"]["data"]["n"]] = now
                ok = [{"entryId": e["entryId"], "status": "SUCCESS"} for e in body["entries"]]
                return Response(json.dumps({"statuses": ok}), media_type="application/json")
            self.arrived[body["data"]["n"]] = now
            return Response(b"null", media_type="application/json")

        return Starlette(
            routes=[
                Route("/dapr/subscribe", subscribe, methods=["GET"]),
                Route("/events", events, methods=["POST"]),
            ]
        )

    def serve(self) -> int:
        config = uvicorn.Config(self.build(), port=0, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        thread = threading.Thread(target=self.server.run, daemon=True)
        thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return int(self.server.servers[0].sockets[0].getsockname()[1])


async def _engine(data: Path, port: int | None, type_: str = "pubsub.embedded.sqlite") -> PubSubEngine:
    engine = PubSubEngine(
        [BrokerSpec("pubsub", type_)],
        "bench",
        AppChannel("127.0.0.1", port),
        SystemClock(),
        data_dir=data,
    )
    await engine.start()
    return engine


async def _publish(engine: PubSubEngine, n: int) -> None:
    await engine.publish("pubsub", TOPIC, json.dumps({"n": n}).encode(), "application/json", {})


async def _publishers(engine: PubSubEngine, count: int, concurrency: int = 256) -> None:
    """Publish events 0..count-1 from `concurrency` concurrent publishers (as many API requests)."""
    numbers = iter(range(count))

    async def publisher() -> None:
        for n in numbers:
            await _publish(engine, n)

    await asyncio.gather(*(publisher() for _ in range(concurrency)))


async def throughput(events: int, bulk: bool, type_: str = "pubsub.embedded.sqlite") -> dict[str, Any]:
    app = _App(bulk)
    port = app.serve()
    with tempfile.TemporaryDirectory() as tmp:
        engine = await _engine(Path(tmp), port, type_)
        await engine.load_subscriptions()
        start = time.monotonic()
        await _publishers(engine, events)
        published = time.monotonic() - start
        await engine.idle()
        elapsed = time.monotonic() - start
        await engine.stop()
    return {
        "scenario": f"throughput, {type_}, {'bulk' if bulk else 'one event per request'} subscription",
        "events": events,
        "published_per_s": round(events / published),
        "published_and_delivered_per_s": round(events / elapsed),
        "delivered": len(app.arrived),
    }


async def latency(rate: int, seconds: float, type_: str = "pubsub.embedded.sqlite") -> dict[str, Any]:
    app = _App(bulk=False)
    port = app.serve()
    sent: dict[int, float] = {}
    acked: dict[int, float] = {}

    async def publish(n: int) -> None:
        await _publish(engine, n)
        acked[n] = time.monotonic()

    with tempfile.TemporaryDirectory() as tmp:
        engine = await _engine(Path(tmp), port, type_)
        await engine.load_subscriptions()
        tasks = []
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            sent[n] = time.monotonic()
            tasks.append(asyncio.create_task(publish(n)))
        await asyncio.gather(*tasks)
        await engine.idle()
        await engine.stop()
    lags = sorted((app.arrived[n] - t) * 1000 for n, t in sent.items())
    publish_lags = sorted((acked[n] - t) * 1000 for n, t in sent.items())
    return {
        "scenario": f"publish->delivery at {rate} events/s, {type_}",
        "events": len(lags),
        "publish_p99_ms": round(publish_lags[int(len(lags) * 0.99)], 2),
        "p50_ms": round(lags[len(lags) // 2], 2),
        "p99_ms": round(lags[int(len(lags) * 0.99)], 2),
        "max_ms": round(lags[-1], 2),
    }


async def backlog(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = await _engine(Path(tmp), None)  # no app: the subscription is known, nothing delivered
        engine._brokers["pubsub"].remember(TOPIC)  # type: ignore[union-attr]
        await _publish(engine, -1)
        before = _rss_kib()
        start = time.monotonic()
        await _publishers(engine, count)
        elapsed = time.monotonic() - start
        after = _rss_kib()
        pending = engine.pending()
        await engine.stop()
        # the app comes up (bulk subscription): the restarted engine pages the backlog in
        app = _App(bulk=True)
        drain = await _engine(Path(tmp), app.serve())
        start = time.monotonic()
        await drain.load_subscriptions()
        await drain.idle()
        drained = time.monotonic() - start
        drained_rss = _rss_kib()
        await drain.stop()
    return {
        "scenario": f"{count} undelivered messages",
        "published_per_s": round(count / elapsed),
        "pending": pending[("pubsub", TOPIC)],
        "rss_growth_mib": round((after - before) / 1024, 1),
        "drained_after_restart_per_s": round(len(app.arrived) / drained),
        "rss_growth_after_drain_mib": round((drained_rss - before) / 1024, 1),
    }


def _run_child(args: list[str]) -> None:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    sys.stdout.write(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument(
        "--scenario", choices=["throughput", "bulk", "in-memory", "latency", "latency-in-memory", "backlog"]
    )
    args = parser.parse_args()
    if args.scenario is None:
        common = ["--events", str(args.events), "--rate", str(args.rate), "--seconds", str(args.seconds)]
        for scenario in ("throughput", "bulk", "in-memory", "latency", "latency-in-memory", "backlog"):
            _run_child([*common, "--backlog", str(args.backlog), "--scenario", scenario])
        return
    runs = {
        "throughput": lambda: throughput(args.events, bulk=False),
        "bulk": lambda: throughput(args.events, bulk=True),
        "in-memory": lambda: throughput(args.events, bulk=False, type_="pubsub.in-memory"),
        "latency": lambda: latency(args.rate, args.seconds),
        "latency-in-memory": lambda: latency(args.rate, args.seconds, "pubsub.in-memory"),
        "backlog": lambda: backlog(args.backlog),
    }
    result = asyncio.run(runs[args.scenario]())
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
