"""`GET /v1/lists` for a user with 1,000 lists shared with them (issue #17's figure): the member's index
actor holds 1,000 shared entries, and each page asks every list on it for its summary and the caller's role.

    .venv/bin/python bench/shared_lists.py [--lists 1000] [--owners 10] [--rounds 50]

Seeds `--lists` lists over `--owners` owners through `todo-engine up`, shares each with one reader (editor or
viewer, alternating), then times sequential requests by the reader: the first page (the default size, 50),
and the whole walk in pages of 500. Prints p50/p99 wall time per request and CPU per request (app and
sidecar, from /proc), which the other engineers' load on the machine disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import pct
from bench.procstat import children, cpu_seconds
from bench.targets import Target, start_facade, wait_ready

READER = "reader"


async def seed(session: aiohttp.ClientSession, target: Target, n_lists: int, owners: int) -> float:
    """Make the lists and share each with the reader; returns lists shared per second."""
    sem = asyncio.Semaphore(16)

    async def one(k: int) -> None:
        owner = f"owner{k % owners}"
        async with sem:
            async with session.post(
                f"{target.base}/v1/lists", json={"title": f"list {k}"}, headers=target.headers(owner)
            ) as r:
                if r.status != 201:
                    raise RuntimeError(f"list {k}: {r.status} {await r.text()}")
                list_id = (await r.json())["id"]
            role = "editor" if k % 2 else "viewer"
            async with session.post(
                f"{target.base}/v1/lists/{list_id}/members",
                json={"user": READER, "role": role},
                headers=target.headers(owner),
            ) as r:
                if r.status != 201:
                    raise RuntimeError(f"share {k}: {r.status} {await r.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(n_lists)))
    return n_lists / (time.perf_counter() - started)


async def walk(session: aiohttp.ClientSession, target: Target, limit: int, whole: bool) -> int:
    """One request (or, `whole`, every page) of the reader's lists; returns how many lists came back."""
    seen, cursor = 0, None
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        async with session.get(f"{target.base}/v1/lists", params=params, headers=target.headers(READER)) as r:
            if r.status != 200:
                raise RuntimeError(f"GET /v1/lists: {r.status} {await r.text()}")
            page = await r.json()
        seen += len(page["items"])
        cursor = page["next_cursor"]
        if not whole or cursor is None:
            return seen


async def measure(
    session: aiohttp.ClientSession, target: Target, rounds: int, limit: int, whole: bool
) -> dict[str, Any]:
    app = target.procs[0].pid
    pids = {"app": app, "sidecar": children(app)[0]}
    got = await walk(session, target, limit, whole)  # warm: actors activated, connections open
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await walk(session, target, limit, whole)
        times.append((time.perf_counter() - started) * 1000)
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    return {
        "lists returned": got,
        "p50 ms": round(pct(times, 50), 1),
        "p99 ms": round(pct(times, 99), 1),
        **{f"CPU ms {name}": round((after[name] - before[name]) * 1000 / rounds, 1) for name in pids},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="shared-lists-"))
    target = start_facade(data)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_ready(session, target)
            rate = await seed(session, target, args.lists, args.owners)
            return {
                "shared lists": args.lists,
                "seed lists+shares/s": round(rate, 1),
                "first page (limit 50)": await measure(session, target, args.rounds, 50, whole=False),
                "whole walk (pages of 500)": await measure(session, target, args.rounds, 500, whole=True),
            }
    finally:
        target.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lists", type=int, default=1000)
    p.add_argument("--owners", type=int, default=10)
    p.add_argument("--rounds", type=int, default=50)
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
