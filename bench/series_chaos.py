"""Chaos run for series: kill -9 the sidecar or the app (list actors + series worker) at random moments
while 50 minutely series run, restart it, and check afterwards that every series created exactly the
occurrences it should have - none missing, none twice.

    /work/venv/bin/python -m bench.series_chaos [--series 50] [--count 6] [--seed 1]

Each series is `FREQ=MINUTELY;COUNT=<count>` with catch_up="all" (the minimum interval is lowered to one
minute for the run), spread over the minute so kills land at every stage of a cycle: waiting on the
timer, notify, recreate, the occurrence-log write, continue-as-new.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.series_procs import Procs, wall_now
from workflows.config import SeriesSettings
from workflows.series_client import SeriesService
from workflows.views import SeriesSpec

log = logging.getLogger("bench.series_chaos")

OWNERS = 5


async def create(service: SeriesService, n: int, count: int) -> list[tuple[str, str, str]]:
    base = (wall_now() + dt.timedelta(seconds=20)).replace(microsecond=0)
    made = []
    for i in range(n):
        owner, list_id = f"chaos-u{i % OWNERS}", f"chaos-l{i % OWNERS}"
        start = base + dt.timedelta(seconds=(i * 60 // n))
        spec = SeriesSpec.model_validate(
            {
                "list_id": list_id,
                "template": {"title": f"chaos {i}"},
                "rule": f"FREQ=MINUTELY;COUNT={count}",
                "dtstart": start.replace(tzinfo=None).isoformat(),
                "catch_up": "all",
            }
        )
        made.append((owner, list_id, (await service.create(owner, spec)).id))
    return made


async def restart(procs: Procs, which: str) -> None:
    if which == "sidecar":
        procs.start_sidecar()
    else:
        procs.start_app()
    await procs.wait_ready(120)


async def chaos(procs: Procs, until: float, rng: random.Random) -> Counter[str]:
    kills: Counter[str] = Counter()
    while time.time() < until:
        await asyncio.sleep(rng.uniform(4, 20))
        if time.time() >= until:
            break
        victim = rng.choice(["sidecar", "app"])
        procs.kill(victim)
        kills[victim] += 1
        log.warning("kill -9 %s (%s)", victim, wall_now().time().isoformat(timespec="seconds"))
        await asyncio.sleep(rng.uniform(0, 3))
        await restart(procs, victim)
    return kills


async def converge(service: SeriesService, made: list[tuple[str, str, str]], timeout: float) -> float:
    """Seconds until every series reports completed (its COUNT reached)."""
    t0 = time.monotonic()
    pending = list(made)
    while pending and time.monotonic() - t0 < timeout:
        still = []
        for owner, list_id, series_id in pending:
            try:
                status: str = (await service.get(owner, series_id, upcoming=0)).status
            except Exception as exc:  # the stack may still be coming back
                log.info("get %s: %r", series_id, exc)
                status = "unknown"
            if status != "completed":
                still.append((owner, list_id, series_id))
        pending = still
        if pending:
            await asyncio.sleep(2)
    if pending:
        log.error("%d series did not complete: %s", len(pending), [s for _, _, s in pending][:5])
    return time.monotonic() - t0


async def run(n: int, count: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="series-chaos-") as tmp:
        procs = Procs(Path(tmp), min_interval_s=60)
        procs.start_sidecar()
        procs.start_app()
        try:
            await procs.wait_ready()
            procs.configure_sdk()
            await asyncio.sleep(2)
            settings = SeriesSettings(min_interval=dt.timedelta(minutes=1), series_per_owner=10_000)
            async with procs.service(settings) as service:
                await asyncio.gather(*(procs.new_list(f"chaos-u{k}", f"chaos-l{k}") for k in range(OWNERS)))
                made = await create(service, n, count)
                last_due = time.time() + 20 + 60 + count * 60
                print(
                    f"{n} series x {count} occurrences; chaos until ~{count + 1} minutes from now", flush=True
                )
            kills = await chaos(procs, last_due, rng)
            async with procs.service(settings) as service:
                converge_s = await converge(service, made, timeout=600)
                created: dict[str, list[int]] = {}
                for list_id in sorted({lid for _, lid, _ in made}):
                    for item in await procs.items(list_id):
                        if item.series_id is not None and item.occurrence is not None:
                            created.setdefault(item.series_id, []).append(item.occurrence)
                missing = duplicates = mismatched_log = 0
                for owner, _, series_id in made:
                    got = Counter(created.get(series_id, []))
                    missing += len(set(range(count)) - set(got))
                    duplicates += sum(c - 1 for c in got.values() if c > 1)
                    page = await service.occurrences(owner, series_id, upcoming=0)
                    if sorted(e.index for e in page.items if e.status == "created") != sorted(got):
                        mismatched_log += 1
        finally:
            procs.stop()
    print(
        f"kills: sidecar {kills['sidecar']}, app {kills['app']}; all series completed {converge_s:.0f} s "
        f"after the last kill window"
    )
    print(f"occurrences expected {n * count}, created {sum(len(v) for v in created.values())}")
    print(
        f"missing {missing}, duplicates {duplicates}, "
        f"series whose occurrence log disagrees with the list {mismatched_log}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run(args.series, args.count, args.seed))


if __name__ == "__main__":
    main()
