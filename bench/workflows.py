"""Workflow engine benchmark: throughput and latency of 3-activity chains, idle memory, timer lateness.

The sidecar (grpc.aio + WorkflowEngine + Scheduler on SQLite) and the SDK worker run in separate
processes, the client in this one, so the figures include the gRPC hops a real app pays. DBOS
(PyPI `dbos`, SQLite in WAL mode, in-process by design) runs the same workflow shape as a peer.

    python bench/workflows.py [--workflows 1000] [--idle 10000] [--timers 500] [--no-dbos]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.workflows")

HERE = Path(__file__).resolve()


# -- roles run in child processes --------------------------------------------------------------------


def run_sidecar(db_path: str) -> None:
    """Serve the workflow engine on 127.0.0.1:<free port>; print the port; stop on SIGTERM, then print
    the history sent to workers (HistoryTraffic) as one JSON line."""
    from dataclasses import asdict

    import grpc

    from sidecar.clock import SystemClock
    from sidecar.db import Database
    from sidecar.scheduler import Scheduler
    from sidecar.workflows import GRPC_SERVER_OPTIONS, WorkflowEngine, add_workflow_service

    async def serve() -> None:
        clock = SystemClock()
        db = Database(db_path)
        scheduler = Scheduler(db, clock)
        engine = WorkflowEngine(db, scheduler, clock)
        await scheduler.start()
        await engine.start()
        server = grpc.aio.server(options=list(GRPC_SERVER_OPTIONS))
        add_workflow_service(server, engine)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await engine.stop()
        await server.stop(grace=0.5)
        await scheduler.stop()
        db.close()
        print(json.dumps(asdict(engine.history_traffic)), flush=True)

    asyncio.run(serve())


def noop(ctx: Any, value: int) -> int:
    return value


def chain3(ctx: Any, value: int):  # type: ignore[no-untyped-def]
    a = yield ctx.call_activity(noop, input=value)
    b = yield ctx.call_activity(noop, input=a)
    return (yield ctx.call_activity(noop, input=b))


def timed(ctx: Any, due_epoch: float):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    due = datetime.fromtimestamp(due_epoch, UTC).replace(tzinfo=None)
    yield ctx.create_timer(due)
    return (ctx.current_utc_datetime - due).total_seconds()


def idle(ctx: Any, _: Any):  # type: ignore[no-untyped-def]
    yield ctx.create_timer(timedelta(days=1))


def run_worker(
    port: str,
    workflows: tuple[Any, ...] = (chain3, timed, idle),
    activities: tuple[Any, ...] = (noop,),
    **options: Any,
) -> None:
    """An SDK worker for `workflows` and `activities` (WorkflowRuntime `options`); stops on SIGTERM."""
    from dapr.ext.workflow import WorkflowRuntime

    runtime = WorkflowRuntime(host="127.0.0.1", port=port, **options)
    for wf in workflows:
        runtime.register_workflow(wf)
    for act in activities:
        runtime.register_activity(act)
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    runtime.start()
    print("ready", flush=True)
    while not stop:
        time.sleep(0.1)
    runtime.shutdown()


def run_dbos(db_path: str, count: int) -> None:
    """The same shape on DBOS: `count` workflows of 3 sequential no-op steps; prints JSON."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # persistent in the file; DBOS keeps it
    from dbos import DBOS

    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{db_path}", "log_level": "WARNING"})

    @DBOS.step()
    def dbos_noop(value: int) -> int:
        return value

    @DBOS.step()
    def dbos_last(value: int) -> float:
        return time.time()  # the third no-op step also reports when the chain finished

    @DBOS.workflow()
    def dbos_chain3(value: int) -> float:
        return dbos_last(dbos_noop(dbos_noop(value)))

    DBOS.launch()

    def start(i: int) -> tuple[float, Any]:
        return time.time(), DBOS.start_workflow(dbos_chain3, i)

    t0 = time.time()
    with ThreadPoolExecutor(64) as pool:  # the same offered load as the engine's 64 starters
        started = list(pool.map(start, range(count)))
    finished = [h.get_result() for _, h in started]
    elapsed = time.time() - t0
    latencies = [end - begin for (begin, _), end in zip(started, finished, strict=True)]
    print(json.dumps({"elapsed": elapsed, "latencies": latencies}), flush=True)
    DBOS.destroy()


# -- the driver --------------------------------------------------------------------------------------


def spawn(*args: str, script: Path = HERE) -> tuple[subprocess.Popen[str], str]:
    """Run a role of `script` in a child process; returns it and the first line it prints."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def gather_limited(coros: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def drive(port: str, args: argparse.Namespace, sidecar_pid: int) -> dict[str, Any]:
    from dapr.ext.workflow import WorkflowStatus
    from dapr.ext.workflow.aio import DaprWorkflowClient

    client = DaprWorkflowClient(host="127.0.0.1", port=port)
    out: dict[str, Any] = {}

    # 1. throughput and start-to-completion latency of 3-activity chains
    t0 = time.time()
    ids = await gather_limited(
        [client.schedule_new_workflow(chain3, input=i) for i in range(args.workflows)], 64
    )
    states = await gather_limited(
        [client.wait_for_workflow_completion(i, timeout_in_seconds=600) for i in ids], 256
    )
    elapsed = time.time() - t0
    assert all(s is not None and s.runtime_status == WorkflowStatus.COMPLETED for s in states)
    lat = [(s.last_updated_at - s.created_at).total_seconds() for s in states]
    out["engine"] = {"elapsed": elapsed, "latencies": lat}

    # 2. timer lateness: timers due 2-4 s from now, lateness seen by the resumed workflow
    now = time.time()
    dues = [now + 2 + 2 * i / max(1, args.timers) for i in range(args.timers)]
    ids = await gather_limited([client.schedule_new_workflow(timed, input=d) for d in dues], 64)
    states = await gather_limited(
        [client.wait_for_workflow_completion(i, timeout_in_seconds=120) for i in ids], 256
    )
    out["lateness"] = [float(s.serialized_output) for s in states]

    return out


async def idle_memory(port: str, count: int, sidecar_pid: int) -> dict[str, float]:
    """RSS of a fresh sidecar before and after `count` workflows park on one-day timers."""
    from dapr.ext.workflow.aio import DaprWorkflowClient

    client = DaprWorkflowClient(host="127.0.0.1", port=port)
    warm = await gather_limited([client.schedule_new_workflow(chain3, input=i) for i in range(50)], 16)
    await gather_limited([client.wait_for_workflow_completion(i, timeout_in_seconds=60) for i in warm], 50)
    before = rss_mib(sidecar_pid)
    await gather_limited([client.schedule_new_workflow(idle) for _ in range(count)], 64)
    await asyncio.sleep(2)
    return {"before": before, "after": rss_mib(sidecar_pid), "idle": count}


def with_engine(db: Path, run: Any) -> Any:
    """Start a sidecar process and a worker process on a fresh database, run `run(port, pid)`."""
    sidecar, port = spawn("--role", "sidecar", "--db", str(db))
    worker, _ = spawn("--role", "worker", "--port", port)
    try:
        return asyncio.run(run(port, sidecar.pid))
    finally:
        for proc in (worker, sidecar):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--timers", type=int, default=500)
    parser.add_argument("--no-dbos", action="store_true")
    parser.add_argument("--role", choices=["sidecar", "worker", "dbos"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "sidecar":
        return run_sidecar(args.db)
    if args.role == "worker":
        return run_worker(args.port)
    if args.role == "dbos":
        return run_dbos(args.db, args.workflows)

    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="wfbench-"))
    results = with_engine(tmp / "throughput.db", lambda port, pid: drive(port, args, pid))
    results["rss"] = with_engine(tmp / "idle.db", lambda port, pid: idle_memory(port, args.idle, pid))
    if not args.no_dbos and importlib.util.find_spec("dbos") is None:
        print("dbos is not installed (pip install dbos): skipping the DBOS peer")
        args.no_dbos = True
    if not args.no_dbos:
        dbos, line = spawn("--role", "dbos", "--db", str(tmp / "dbos.db"), "--workflows", str(args.workflows))
        dbos.wait(600)
        results["dbos"] = json.loads(line)

    rows = [("system", "workflows/s", "p50 ms", "p99 ms")]
    for name in ("engine", "dbos"):
        if name in results:
            r = results[name]
            rows.append(
                (
                    "todo-engine sidecar" if name == "engine" else "DBOS 3.x (SQLite WAL)",
                    f"{args.workflows / r['elapsed']:.0f}",
                    f"{1000 * statistics.median(r['latencies']):.1f}",
                    f"{1000 * pct(r['latencies'], 0.99):.1f}",
                )
            )
    print(f"\n{args.workflows} workflows x 3 sequential no-op activities")
    for row in rows:
        print(f"  {row[0]:<24}{row[1]:>12}{row[2]:>10}{row[3]:>10}")
    late = results["lateness"]
    print(
        f"\ntimer lateness ({len(late)} timers, seen by the resumed workflow): "
        f"p50 {1000 * statistics.median(late):.1f} ms, p99 {1000 * pct(late, 0.99):.1f} ms"
    )
    rss = results["rss"]
    grown = rss["after"] - rss["before"]
    print(
        f"sidecar RSS: {rss['before']:.0f} MiB -> {rss['after']:.0f} MiB with {rss['idle']} "
        f"workflows idle on timers (+{grown:.0f} MiB, {1024 * grown / rss['idle']:.1f} KiB each)"
    )


if __name__ == "__main__":
    main()
