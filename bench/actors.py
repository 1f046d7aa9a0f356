"""Actor benchmarks through the embedded sidecar (issue 2): invocation throughput and latency, reminder
bursts and spread reminders fired through the app channel, and sidecar RSS.

    .venv/bin/python bench/actors.py [--quick]

Starts `todo-engine sidecar run` and a uvicorn app hosting `BenchActor` as child processes on free ports,
drives them over loopback HTTP with keep-alive connections, and prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procstat import cpu_seconds, free_port, rss_mb  # noqa: E402


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Stack:
    def __init__(self, data: Path) -> None:
        self.app_port = free_port()
        self.http_port = free_port()
        self.grpc_port = free_port()
        env = dict(os.environ, DAPR_HTTP_PORT=str(self.http_port), DAPR_GRPC_PORT=str(self.grpc_port))
        self.sidecar = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sidecar",
                "run",
                "--app-id",
                "bench",
                "--app-port",
                str(self.app_port),
                "--dapr-http-port",
                str(self.http_port),
                "--dapr-grpc-port",
                str(self.grpc_port),
                "--data-dir",
                str(data),
                "--log-level",
                "warn",
            ],
            cwd=ROOT,
        )
        self.app = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.actor_app:app",
                "--port",
                str(self.app_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
        )
        self.base = f"http://127.0.0.1:{self.http_port}/v1.0"

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(600):
            try:
                async with session.get(f"{self.base}/healthz") as r:
                    if r.status == 204:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("stack did not become ready")

    def stop(self) -> None:
        for p in (self.sidecar, self.app):  # sidecar first: it deactivates actors on the app
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        for p in (self.sidecar, self.app):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


async def invoke(session: aiohttp.ClientSession, base: str, actor_id: str) -> float:
    t0 = time.perf_counter()
    async with session.post(f"{base}/actors/BenchActor/{actor_id}/method/Ping", data=b"") as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"invoke failed: {r.status}")
    return time.perf_counter() - t0


async def closed_loop(session: aiohttp.ClientSession, base: str, seconds: float, workers: int) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await invoke(session, base, f"a{(done + i) % 1000}")
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    return done / (time.perf_counter() - t0)


async def open_loop(session: aiohttp.ClientSession, base: str, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    tasks = []
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

        async def one(k: int = i) -> None:
            latencies.append(await invoke(session, base, f"o{k % 1000}"))

        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies


async def reminders(
    session: aiohttp.ClientSession, stack: Stack, n: int, spread: float, deliver: bool = False
) -> dict[str, float]:
    """Register `n` reminders due together (or spread over `spread` s) and measure their fires; with
    `deliver`, each fire also publishes an event to the durable broker and the counts are of deliveries."""
    app = f"http://127.0.0.1:{stack.app_port}/bench/fires"
    async with session.delete(app):
        pass
    due_at = time.time() + 3.0 + n / 500  # registration is over before the first is due
    sem = asyncio.Semaphore(64)
    expected: dict[str, float] = {}

    async def register(i: int) -> None:
        at = int((due_at + (spread * i / n if spread else 0.0)) * 1e6) / 1e6  # what the stamp says
        expected[f"r{i}"] = at
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"
        async with (
            sem,
            session.put(
                f"{stack.base}/actors/BenchActor/m{i % 500}/reminders/r{i}",
                json={"dueTime": stamp, **({"data": "ZGVsaXZlcg=="} if deliver else {})},  # b"deliver"
            ) as r,
        ):
            if r.status != 204:
                raise RuntimeError(f"reminder create failed: {r.status} {await r.text()}")

    t0 = time.perf_counter()
    await asyncio.gather(*(register(i) for i in range(n)))
    reg_rate = n / (time.perf_counter() - t0)
    await asyncio.sleep(max(0.0, due_at - time.time() - 0.05))
    cpu0 = cpu_seconds(stack.sidecar.pid), cpu_seconds(stack.app.pid)
    deadline = due_at + spread + 60
    fires: list[list[object]] = []
    source = app.replace("/fires", "/deliveries") if deliver else app
    while time.time() < deadline:
        async with session.get(source) as r:
            fires = await r.json()
            if deliver:  # (name, delivered at) -> the shape of a fire
                fires = [["", name, at] for name, at in fires]
        if len({f[1] for f in fires}) >= n:
            break
        await asyncio.sleep(0.25)
    cpu = cpu_seconds(stack.sidecar.pid) - cpu0[0], cpu_seconds(stack.app.pid) - cpu0[1]
    first: dict[str, float] = {}
    for _, name, at in fires:
        first.setdefault(str(name), float(str(at)))
    lateness = [(first[k] - expected[k]) * 1000 for k in first]
    early = sum(1 for k in first if first[k] < expected[k])
    span = (max(first.values()) - min(first.values())) if first else float("nan")
    return {
        "registered/s": reg_rate,
        "fired": float(len(first)),
        "lost": float(n - len(first)),
        "duplicates": float(len(fires) - len(first)),
        "early": float(early),
        "fires/s": (len(first) / span) if span and span > 0 else float("nan"),
        "lateness p50 ms": statistics.median(lateness) if lateness else float("nan"),
        "lateness p99 ms": pct(lateness, 99),
        # CPU per fire is steadier than fires/s on a shared machine (it includes the bench's polling).
        "CPU per fire, sidecar ms": cpu[0] * 1000 / n,
        "CPU per fire, app ms": cpu[1] * 1000 / n,
    }


async def main(quick: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-actors-"))
    stack = Stack(data)
    rows: list[tuple[str, str]] = []
    try:
        conn = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=conn) as session:
            await stack.wait_ready(session)
            await asyncio.sleep(0.5)
            rows.append(("sidecar RSS idle (MB)", f"{rss_mb(stack.sidecar.pid):.1f}"))
            await closed_loop(session, stack.base, 2, 32)  # warm-up: activations, connections
            rps = await closed_loop(session, stack.base, 5 if quick else 15, 32)
            rows.append(("actor invoke, closed loop x32 (req/s)", f"{rps:.0f}"))
            lat = await open_loop(session, stack.base, 500, 5 if quick else 20)
            rows.append(("actor invoke @500 req/s p50 (ms)", f"{pct(lat, 50) * 1000:.2f}"))
            rows.append(("actor invoke @500 req/s p99 (ms)", f"{pct(lat, 99) * 1000:.2f}"))
            n = 2000 if quick else 10_000
            burst = await reminders(session, stack, n, 0)
            for k, v in burst.items():
                rows.append((f"reminder burst {n}: {k}", f"{v:.1f}"))
            durable = await reminders(session, stack, n, 0, deliver=True)
            for k, v in durable.items():
                rows.append((f"reminder burst {n}, each fire published and delivered: {k}", f"{v:.1f}"))
            spread = await reminders(session, stack, n, 10 if quick else 20)
            for k, v in spread.items():
                rows.append((f"reminders spread over {10 if quick else 20}s: {k}", f"{v:.1f}"))
            # 100k reminders registered far in the future: memory must not grow with them.
            far = time.time() + 30 * 86400
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(far))
            sem = asyncio.Semaphore(64)
            count = 20_000 if quick else 100_000

            async def put(i: int) -> None:
                async with (
                    sem,
                    session.put(
                        f"{stack.base}/actors/BenchActor/f{i % 1000}/reminders/far{i}",
                        json={"dueTime": stamp},
                    ) as r,
                ):
                    await r.read()

            await asyncio.gather(*(put(i) for i in range(count)))
            rows.append(
                (f"sidecar RSS with {count} reminders registered (MB)", f"{rss_mb(stack.sidecar.pid):.1f}")
            )
    finally:
        stack.stop()
    width = max(len(k) for k, _ in rows)
    print(f"{'metric'.ljust(width)}  value")
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    print(json.dumps(dict(rows)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    asyncio.run(main(parser.parse_args().quick))
