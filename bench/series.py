"""Series benchmark: creation rate, sidecar and app RSS with many series idle on their timers, and how late
occurrences are when a thousand fall due within one minute (real clock, no manual time).

    /work/venv/bin/python -m bench.series [--idle 10000] [--burst 1000] [--window 60]

Starts the embedded sidecar and the app (list actors + series worker) as child processes; this process is
the API side (`SeriesService`). Lateness = when the item was created (list actor clock) minus the
occurrence's scheduled instant; "notified" = the workflow time once `occurrence.due` was published.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.series_procs import Procs, pct, wall_now
from workflows.config import SeriesSettings
from workflows.series_client import SeriesService
from workflows.views import SeriesSpec

log = logging.getLogger("bench.series")

OWNERS = 100


def spec(list_id: str, at: dt.datetime, title: str) -> SeriesSpec:
    return SeriesSpec.model_validate(
        {
            "list_id": list_id,
            "template": {"title": title},
            "rule": "FREQ=DAILY",
            "dtstart": at.replace(tzinfo=None, microsecond=0).isoformat(),
        }
    )


async def create_many(
    service: SeriesService, starts: list[dt.datetime], title: str, concurrency: int = 64
) -> tuple[list[tuple[str, str, str]], list[float]]:
    """Create one series per start time, round-robin over the owners; returns (owner, list, id) and the
    per-create latencies in ms."""
    gate = asyncio.Semaphore(concurrency)
    made: list[tuple[str, str, str]] = []
    latencies: list[float] = []

    async def one(i: int, at: dt.datetime) -> None:
        owner, list_id = f"bench-u{i % OWNERS}", f"bench-l{i % OWNERS}"
        async with gate:
            t0 = time.perf_counter()
            series = await service.create(owner, spec(list_id, at, title))
            latencies.append((time.perf_counter() - t0) * 1000)
        made.append((owner, list_id, series.id))

    await asyncio.gather(*(one(i, at) for i, at in enumerate(starts)))
    return made, latencies


async def settle_rss(procs: Procs, seconds: float = 10.0) -> tuple[float, float]:
    await asyncio.sleep(seconds)
    return procs.rss()


async def run(idle: int, burst: int, window: float) -> None:
    with tempfile.TemporaryDirectory(prefix="series-bench-") as tmp:
        procs = Procs(Path(tmp))
        procs.start_sidecar()
        procs.start_app()
        try:
            await procs.wait_ready()
            procs.configure_sdk()
            await asyncio.sleep(2)  # the worker connects in the background
            settings = SeriesSettings(series_per_owner=1_000_000)
            async with procs.service(settings) as service:
                await asyncio.gather(*(procs.new_list(f"bench-u{k}", f"bench-l{k}") for k in range(OWNERS)))
                base_sidecar, base_app = await settle_rss(procs, 3)

                tomorrow = wall_now() + dt.timedelta(days=1)
                starts = [tomorrow + dt.timedelta(seconds=random.uniform(0, 3600)) for _ in range(idle)]
                t0, cpu0 = time.perf_counter(), procs.cpu()
                _, create_ms = await create_many(service, starts, "idle")
                create_s = time.perf_counter() - t0
                create_cpu = [b - a for a, b in zip(cpu0, procs.cpu(), strict=True)]
                idle_sidecar, idle_app = await settle_rss(procs)

                lead = max(20.0, burst / (idle / create_s) * 1.5 + 10)
                first = (wall_now() + dt.timedelta(seconds=lead)).replace(microsecond=0)
                due = [first + dt.timedelta(seconds=window * i / burst) for i in range(burst)]
                made, _ = await create_many(service, due, "burst")
                if wall_now() > first:
                    log.warning("burst creation overran the first due time by %s", wall_now() - first)
                deadline = time.monotonic() + lead + window + 300
                lists = sorted({list_id for _, list_id, _ in made})
                while time.monotonic() < deadline:
                    counts = await asyncio.gather(*(procs.items(lid) for lid in lists))
                    created = sum(1 for items in counts for i in items if i.title == "burst")
                    if created >= burst:
                        break
                    await asyncio.sleep(1)
                late_ms, notified_ms = [], []
                for owner, _, series_id in made:
                    page = await service.occurrences(owner, series_id, upcoming=0)
                    for entry in page.items:
                        if entry.created_at and entry.scheduled_at:
                            late_ms.append((entry.created_at - entry.scheduled_at).total_seconds() * 1000)
                        if entry.notified_at and entry.scheduled_at:
                            notified_ms.append(
                                (entry.notified_at - entry.scheduled_at).total_seconds() * 1000
                            )
                burst_sidecar, burst_app = procs.rss()
        finally:
            procs.stop()
        print(f"series benchmark: {idle} idle series, {burst} due within {window:.0f} s")
        print(
            f"  creation: {idle / create_s:8.1f} series/s   (create p50 {pct(create_ms, 50):.1f} ms, "
            f"p99 {pct(create_ms, 99):.1f} ms, {idle} in {create_s:.1f} s)"
        )
        print(
            f"  CPU while creating: sidecar {create_cpu[0]:.1f} s, app {create_cpu[1]:.1f} s, "
            f"driver (API side) {create_cpu[2]:.1f} s"
        )
        print(f"  RSS before series:       sidecar {base_sidecar:7.1f} MB   app {base_app:7.1f} MB")
        print(f"  RSS with {idle} idle: sidecar {idle_sidecar:7.1f} MB   app {idle_app:7.1f} MB")
        print(f"  RSS after the burst:     sidecar {burst_sidecar:7.1f} MB   app {burst_app:7.1f} MB")
        print(f"  burst: {len(late_ms)}/{burst} items created")
        for name, values in (("item created", late_ms), ("notified", notified_ms)):
            if values:
                print(
                    f"  lateness ({name}): p50 {pct(values, 50):8.0f} ms  p99 {pct(values, 99):8.0f} ms  "
                    f"max {max(values):8.0f} ms  mean {statistics.fmean(values):8.0f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=1_000)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run(args.idle, args.burst, args.window))


if __name__ == "__main__":
    main()
