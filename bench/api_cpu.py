"""CPU per request through the facade, by kind (S1's three: GET a page of items, POST an item, complete
an item), in the app process and in the sidecar, counting the feed delivery each write causes.

    .venv/bin/python bench/api_cpu.py [--lists N] [--seconds S] [--kinds add,complete] [--threads]
        [--strace DIR] [--py-spy DIR] [--facade-tree DIR] [--resources-path DIR]

For each kind alone: a closed loop ×32 over the seeded lists (Zipf, as in `bench/api.py`), then wait for
the feed to drain; CPU is read from /proc before and after. The figure that says where S1's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import Mix, closed_loop, feed_drain, seed
from bench.procstat import children, cpu_seconds
from bench.targets import ROOT, Target, start_facade, wait_ready

KINDS = ("get", "add", "complete")


def thread_cpu(pid: int) -> dict[str, list[float]]:
    """User and system CPU seconds of each thread of `pid`, by thread name (`tid` appended)."""
    out: dict[str, list[float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tick = os.sysconf("SC_CLK_TCK")
        out[f"{name}/{task.name}"] = [int(fields[11]) / tick, int(fields[12]) / tick]
    return out


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


def profile(out: str | None, pid: int, kind: str, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy on the sidecar while one kind runs: raw collapsed stacks of the thread holding the GIL (Python
    CPU, not waits), 200 samples/s."""
    if out is None:
        return None
    Path(out).mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--gil"]
    command += ["--duration", str(int(seconds)), "--output", str(Path(out) / f"sidecar-{kind}.txt")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def trace_syncs(out: str | None, pid: int, kind: str) -> subprocess.Popen[bytes] | None:
    """strace of the sidecar's fsync/fdatasync calls while one kind runs (every thread)."""
    if out is None:
        return None
    Path(out).mkdir(parents=True, exist_ok=True)
    tids = ",".join(task.name for task in Path(f"/proc/{pid}/task").iterdir())
    command = ["strace", "-f", "-e", "trace=fsync,fdatasync", "-p", tids]
    command += ["-o", str(Path(out) / f"{kind}.txt")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def syncs_by_file(out: str, pid: int, kind: str, requests: float) -> dict[str, float]:
    """fsync/fdatasync calls per request, by the file they synced."""
    counts: dict[str, int] = {}
    for match in re.finditer(r"sync\((\d+)\)", (Path(out) / f"{kind}.txt").read_text()):
        try:
            name = Path(os.readlink(f"/proc/{pid}/fd/{match.group(1)}")).name
        except OSError:
            name = f"fd {match.group(1)}"
        counts[name] = counts.get(name, 0) + 1
    return {name: round(n / requests, 3) for name, n in sorted(counts.items())}


async def run(args: argparse.Namespace) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="api-cpu-"))
    target = start_facade(data, tree=args.facade_tree, resources=args.resources_path)
    results: dict[str, object] = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_ready(session, target)
            await seed(session, target, args.lists, args.lists)
            await feed_drain(session, target)
            app = target.procs[0].pid
            processes = {"app": app, "sidecar": children(app)[0]}
            for kind in args.kinds.split(","):
                spy = profile(args.py_spy, processes["sidecar"], kind, args.seconds)
                strace = trace_syncs(args.strace, processes["sidecar"], kind)
                before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                threads_before = thread_cpu(processes["sidecar"]) if args.threads else {}
                started = time.perf_counter()
                rate, errors = await closed_loop(
                    session, target, args.seconds, 32, mix=OnlyKind(target, 1, kind)
                )
                drained = await feed_drain(session, target, quiet=0.5)
                if spy is not None:
                    spy.wait()
                if strace is not None:
                    strace.terminate()
                    strace.wait()
                done = rate * args.seconds
                if args.strace:
                    results[f"{kind} sidecar fsyncs per request"] = syncs_by_file(
                        args.strace, processes["sidecar"], kind, done
                    )
                if args.threads:
                    results[f"{kind} sidecar threads, user/sys CPU ms per request"] = {
                        name: [round((b - a) * 1000 / done, 3) for b, a in zip(cpu, start, strict=True)]
                        for name, cpu in thread_cpu(processes["sidecar"]).items()
                        if (start := threads_before.get(name, [0.0, 0.0])) != cpu
                    }
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
        shutil.rmtree(data, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lists", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of get,add,complete")
    parser.add_argument("--threads", action="store_true", help="sidecar CPU per thread, user and system")
    parser.add_argument("--strace", help="directory for an strace of the sidecar's fsyncs per kind")
    parser.add_argument("--py-spy", help="directory for a py-spy profile of the sidecar per kind")
    parser.add_argument("--facade-tree", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--resources-path", type=Path, default=None, help="component files for `up`")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
