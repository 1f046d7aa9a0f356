"""CPU per request through the facade, by kind (S1's three: GET a page of items, POST an item, complete
an item), in the app process and in the sidecar, counting the feed delivery each write causes.

    .venv/bin/python bench/api_cpu.py [--lists N] [--seconds S]

For each kind alone: a closed loop ×32 over the seeded lists (Zipf, as in `bench/api.py`), then wait for
the feed to drain; CPU is read from /proc before and after. The figure that says where S1's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import Mix, Target, children, closed_loop, feed_drain, seed, start_facade, wait_ready

KINDS = ("get", "add", "complete")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kind_of(op: tuple[str, str, str, object]) -> str:
    _, method, path, _ = op
    if method == "GET":
        return "get"
    return "complete" if path.endswith(":complete") else "add"


class OnlyKind(Mix):
    """The S1 mix with every request of other kinds skipped."""

    def __init__(self, target: Target, seed_: int, kind: str) -> None:
        super().__init__(target, seed_)
        self.kind = kind

    def next(self) -> tuple[str, str, str, dict[str, str] | None]:
        while True:
            op = super().next()
            if kind_of(op) == self.kind:
                return op


async def run(args: argparse.Namespace) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="api-cpu-"))
    target = start_facade(data)
    results: dict[str, object] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_ready(session, target)
            await seed(session, target, args.lists, args.lists)
            await feed_drain(session, target)
            app = target.procs[0].pid
            processes = {"app": app, "sidecar": children(app)[0]}
            for kind in KINDS:
                before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                started = time.perf_counter()
                rate, errors = await closed_loop(
                    session, target, args.seconds, 32, mix=OnlyKind(target, 1, kind)
                )
                drained = await feed_drain(session, target, quiet=0.5)
                done = rate * args.seconds
                results[kind] = {
                    "req/s": round(rate, 1),
                    "errors": errors,
                    "feed drained s after": round(drained, 2),
                    **{
                        f"{name} CPU ms per request": round(
                            (cpu_seconds(pid) - before[name]) * 1000 / done, 2
                        )
                        for name, pid in processes.items()
                    },
                    "wall s": round(time.perf_counter() - started, 1),
                }
    finally:
        target.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lists", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
