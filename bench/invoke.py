"""Service invocation through one embedded sidecar to its own app (issue 16): the latency the sidecar adds
to an HTTP call at a fixed rate, against calling the same app directly.

    .venv/bin/python -m bench.invoke [--rate 500] [--seconds 20] [--sidecars 2]

Starts `python -m sidecar run` and a uvicorn app (`app` below: one empty POST handler) as child processes,
sends the same open-loop load (fixed arrival rate, keep-alive connections) straight to the app and then
through `/v1.0/invoke/bench/method/ping`, and prints p50/p99 of each and the difference. daprd's own
figure for one HTTP hop: +0.91 ms p50, +2.04 ms p99.

With `--sidecars 2` a second sidecar (`front`, no app) joins the first through a host registry of the
run's own, and the load also goes app -> front's sidecar -> bench's sidecar -> app, as between two apps
on one host; the added time is then also given per sidecar (half of the two-sidecar path's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.actors import ROOT, free_port, pct


async def _ping(request: Request) -> Response:
    await request.body()
    return Response(b"pong", media_type="text/plain")


app = Starlette(routes=[Route("/ping", _ping, methods=["POST"])])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc/<pid>/stat), robust to a busy machine unlike latency."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _call(session: aiohttp.ClientSession, url: str) -> float:
    t0 = time.perf_counter()
    async with session.post(url, data=b"{}") as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status}")
    return time.perf_counter() - t0


async def _open_loop(session: aiohttp.ClientSession, url: str, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

        async def one() -> None:
            latencies.append(await _call(session, url))

        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies


async def _wait(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(600):
        try:
            async with session.get(url) as r:
                if r.status == 204:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("sidecar did not become ready")


def _sidecar(app_id: str, http_port: int, data: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sidecar", "run", "--app-id", app_id, *extra]
        + ["--dapr-http-port", str(http_port), "--dapr-grpc-port", str(free_port())]
        + ["--data-dir", str(data / app_id), "--registry-dir", str(data / "registry"), "--log-level", "warn"],
        cwd=ROOT,
    )


async def main(rate: float, seconds: float, sidecars: int) -> None:
    app_port, http_port, front_port = free_port(), free_port(), free_port()
    two: list[float] = []
    with tempfile.TemporaryDirectory() as data:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "bench.invoke:app", "--port", str(app_port)]
                + ["--log-level", "warning", "--no-access-log"],
                cwd=ROOT,
            ),
            _sidecar("bench", http_port, Path(data), "--app-port", str(app_port)),
        ]
        if sidecars == 2:
            procs.append(_sidecar("front", front_port, Path(data)))
        try:
            connector = aiohttp.TCPConnector(limit=256)
            async with aiohttp.ClientSession(connector=connector) as session:
                await _wait(session, f"http://127.0.0.1:{http_port}/v1.0/healthz")
                direct_url = f"http://127.0.0.1:{app_port}/ping"
                via_url = f"http://127.0.0.1:{http_port}/v1.0/invoke/bench/method/ping"
                two_url = f"http://127.0.0.1:{front_port}/v1.0/invoke/bench/method/ping"
                urls = [direct_url, via_url]
                if sidecars == 2:
                    await _wait(session, f"http://127.0.0.1:{front_port}/v1.0/healthz")
                    urls.append(two_url)
                for url in urls:  # warm every path's connections
                    await _open_loop(session, url, rate, 1)
                direct = await _open_loop(session, direct_url, rate, seconds)
                cpu0 = _cpu_seconds(procs[1].pid)
                via = await _open_loop(session, via_url, rate, seconds)
                sidecar_cpu = (_cpu_seconds(procs[1].pid) - cpu0) / len(via)
                if sidecars == 2:
                    cpu_front, cpu_back = _cpu_seconds(procs[2].pid), _cpu_seconds(procs[1].pid)
                    two = await _open_loop(session, two_url, rate, seconds)
                    front_cpu = (_cpu_seconds(procs[2].pid) - cpu_front) / len(two)
                    back_cpu = (_cpu_seconds(procs[1].pid) - cpu_back) / len(two)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
    print(f"{len(direct)} calls each at {rate:.0f} req/s over {seconds:.0f} s")
    print(f"{'path':<36}{'p50 ms':>10}{'p99 ms':>10}")
    paths = [("app directly", direct), ("through the sidecar", via)]
    if two:
        paths.append(("through two sidecars", two))
    for name, lat in paths:
        print(f"{name:<36}{pct(lat, 50) * 1000:>10.2f}{pct(lat, 99) * 1000:>10.2f}")
    print(f"sidecar CPU per invocation: {sidecar_cpu * 1000:.3f} ms")
    print(
        f"{'added by the sidecar':<36}{(pct(via, 50) - pct(direct, 50)) * 1000:>+10.2f}"
        f"{(pct(via, 99) - pct(direct, 99)) * 1000:>+10.2f}"
    )
    if two:
        print(f"CPU per invocation: front sidecar {front_cpu * 1000:.3f} ms, back {back_cpu * 1000:.3f} ms")
        print(
            f"{'added per sidecar (two sidecars)':<36}{(pct(two, 50) - pct(direct, 50)) * 500:>+10.2f}"
            f"{(pct(two, 99) - pct(direct, 99)) * 500:>+10.2f}"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--sidecars", type=int, choices=[1, 2], default=1)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds, args.sidecars))
