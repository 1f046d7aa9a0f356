"""Scheduler-level reminder benchmark: burst drain rate, spread lateness and memory with 100k jobs.

Runs the durable `Scheduler` alone (real SQLite file in a temp dir, `SystemClock`, trivial handler),
each scenario in a fresh interpreter so memory figures do not leak between them:

    /work/venv/bin/python bench/reminders_burst.py [--jobs 10000] [--spread 20] [--far 100000]

Compare with performance-anchors.md S3: burst of 10k drained in <= 5 s (>= 2k/s durable), spread
lateness p99 <= 1 s, never early, 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sidecar.clock import SystemClock
from sidecar.db import Database
from sidecar.scheduler import Job, Scheduler

__all__ = ["main"]


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _open(tmp: str) -> tuple[Database, Scheduler, SystemClock]:
    clock = SystemClock()
    db = Database(Path(tmp) / "sidecar.db")
    scheduler = Scheduler(db, clock)
    return db, scheduler, clock


async def _wait_empty(scheduler: Scheduler, limit: float) -> float:
    """Poll until every job is durably done; returns the wall time when the table became empty."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if await scheduler.count() == 0:
            return time.time()
        await asyncio.sleep(0.005)
    return float("nan")


async def burst(jobs: int) -> dict[str, float]:
    """`jobs` one-shot jobs registered by concurrent single puts, all due at one instant."""
    with tempfile.TemporaryDirectory() as tmp:
        db, scheduler, clock = await _open(tmp)
        lateness: list[float] = []

        async def handler(job: Job) -> None:
            lateness.append(clock.now() - job.due)

        scheduler.register("reminder", handler)
        await scheduler.start()
        due = clock.now() + 3.0 + jobs / 2000
        t0 = time.perf_counter()
        await asyncio.gather(*(scheduler.put(Job(f"r||{i}", "reminder", due)) for i in range(jobs)))
        put_rate = jobs / (time.perf_counter() - t0)
        await clock.wait_until(due)
        done_at = await _wait_empty(scheduler, 60.0)
        await scheduler.stop()
        db.close()
    drain = done_at - due
    return {
        "registrations_per_s": put_rate,
        "fired": len(lateness),
        "drain_s": drain,
        "durable_fires_per_s": jobs / drain,
        "lateness_p50_ms": 1000 * _pct(lateness, 0.5),
        "lateness_p99_ms": 1000 * _pct(lateness, 0.99),
        "lateness_max_ms": 1000 * max(lateness),
    }


async def spread(jobs: int, seconds: float) -> dict[str, float]:
    """`jobs` one-shot jobs due uniformly over `seconds`; lateness, early, lost and duplicates."""
    with tempfile.TemporaryDirectory() as tmp:
        db, scheduler, clock = await _open(tmp)
        fired: dict[str, list[float]] = {}

        async def handler(job: Job) -> None:
            fired.setdefault(job.key, []).append(clock.now() - job.due)

        scheduler.register("reminder", handler)
        await scheduler.start()
        start = clock.now() + 1.0
        await scheduler.put_many(
            [Job(f"r||{i}", "reminder", start + seconds * i / jobs) for i in range(jobs)]
        )
        await clock.wait_until(start + seconds)
        await _wait_empty(scheduler, 10.0)
        await scheduler.stop()
        db.close()
    firsts = [v[0] for v in fired.values()]
    return {
        "fired": len(fired),
        "lateness_p50_ms": 1000 * statistics.median(firsts),
        "lateness_p99_ms": 1000 * _pct(firsts, 0.99),
        "lateness_max_ms": 1000 * max(firsts),
        "early": sum(1 for v in fired.values() for x in v if x < 0),
        "lost": jobs - len(fired),
        "duplicates": sum(len(v) - 1 for v in fired.values()),
    }


async def far(jobs: int) -> dict[str, float]:
    """RSS with `jobs` jobs due a day from now (they must stay on disk, not in the heap)."""
    with tempfile.TemporaryDirectory() as tmp:
        db, scheduler, clock = await _open(tmp)

        async def handler(job: Job) -> None:
            return None

        scheduler.register("reminder", handler)
        await scheduler.start()
        await scheduler.settled()
        before = _rss_kib()
        base = clock.now() + 86_400
        for chunk in range(0, jobs, 10_000):
            await scheduler.put_many(
                [
                    Job(f"r||{i}", "reminder", base + i, payload=b'"cmVtaW5kZXI="')
                    for i in range(chunk, min(jobs, chunk + 10_000))
                ]
            )
        await scheduler.settled()
        after = _rss_kib()
        result = {
            "jobs_stored": float(await scheduler.count()),
            "heap_size": float(scheduler.heap_size()),
            "rss_before_mib": before / 1024,
            "rss_after_mib": after / 1024,
            "rss_growth_mib": (after - before) / 1024,
        }
        await scheduler.stop()
        db.close()
    return result


def _run(scenario: str, args: argparse.Namespace) -> dict[str, float]:
    if scenario == "burst":
        return asyncio.run(burst(args.jobs))
    if scenario == "spread":
        return asyncio.run(spread(args.jobs, args.spread))
    return asyncio.run(far(args.far))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=20.0)
    parser.add_argument("--far", type=int, default=100_000)
    parser.add_argument("--scenario", choices=["burst", "spread", "far"])
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(_run(args.scenario, args)))
        return
    forwarded = ["--jobs", str(args.jobs), "--spread", str(args.spread), "--far", str(args.far)]
    for scenario in ("burst", "spread", "far"):
        out = subprocess.run(
            [sys.executable, __file__, "--scenario", scenario, *forwarded],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        print(f"\n{scenario}")
        for name, value in figures.items():
            print(f"  {name:<22} {value:>12.1f}")


if __name__ == "__main__":
    main()
