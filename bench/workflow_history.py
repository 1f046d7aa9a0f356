"""History sent per workflow turn with stateful-history deltas and without: long sequential workflows.

A workflow of N sequential activities runs N + 1 turns over a history that grows by three events a turn.
Without deltas every turn re-sends the whole history (bytes per turn grow with N); with them a turn carries
only the events committed since the worker's previous turn. Sidecar and SDK worker run in separate
processes (bench/workflows.py's sidecar role), the client in this one.

    python bench/workflow_history.py [--workflows 4] [--steps 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import workflows
from bench.workflows import gather_limited, spawn

HERE = Path(__file__).resolve()
SIDECAR = HERE.parent / "workflows.py"


def step(ctx: Any, value: int) -> int:
    return value + 1


def long_chain(ctx: Any, steps: int):  # type: ignore[no-untyped-def]
    value = 0
    for _ in range(steps):
        value = yield ctx.call_activity(step, input=value)
    return value


def run_worker(port: str, stateful: bool) -> None:
    workflows.run_worker(port, (long_chain,), (step,), disable_stateful_history=not stateful)


async def drive(port: str, workflows: int, steps: int) -> float:
    from dapr.ext.workflow import WorkflowStatus
    from dapr.ext.workflow.aio import DaprWorkflowClient

    client = DaprWorkflowClient(host="127.0.0.1", port=port)
    t0 = time.time()
    ids = await gather_limited(
        [client.schedule_new_workflow(long_chain, input=steps) for _ in range(workflows)], 16
    )
    states = await gather_limited(
        [client.wait_for_workflow_completion(i, timeout_in_seconds=900) for i in ids], 64
    )
    elapsed = time.time() - t0
    assert all(s is not None and s.runtime_status == WorkflowStatus.COMPLETED for s in states)
    assert all(s.serialized_output == str(steps) for s in states)
    return elapsed


def measure(tmp: Path, workflows: int, steps: int, stateful: bool) -> dict[str, Any]:
    mode = "deltas" if stateful else "full"
    sidecar, port = spawn("--role", "sidecar", "--db", str(tmp / f"{mode}-{steps}.db"), script=SIDECAR)
    worker, _ = spawn("--role", "worker", "--port", port, *(["--stateful"] if stateful else []), script=HERE)
    try:
        elapsed = asyncio.run(drive(port, workflows, steps))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        sidecar.send_signal(signal.SIGTERM)
        out, _ = sidecar.communicate(timeout=30)
    traffic = json.loads(out.strip().splitlines()[-1])
    return {"mode": mode, "steps": steps, "elapsed": elapsed, **traffic}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=4)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--role", choices=["worker"], help=argparse.SUPPRESS)
    parser.add_argument("--port", help=argparse.SUPPRESS)
    parser.add_argument("--stateful", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "worker":
        return run_worker(args.port, args.stateful)

    tmp = Path(tempfile.mkdtemp(prefix="wfhist-"))
    print(f"{args.workflows} concurrent workflows x N sequential activities; history sent in pastEvents")
    print(
        f"  {'mode':<8}{'N':>6}{'turns':>8}{'turns/s':>10}{'bytes/turn':>12}{'max delta B':>13}{'fetches':>9}"
    )
    for steps in args.steps:
        for stateful in (True, False):
            r = measure(tmp, args.workflows, steps, stateful)
            print(
                f"  {r['mode']:<8}{steps:>6}{r['turns']:>8}{r['turns'] / r['elapsed']:>10.0f}"
                f"{r['past_bytes'] / r['turns']:>12.0f}{r['max_delta_bytes']:>13}{r['history_fetches']:>9}"
            )


if __name__ == "__main__":
    main()
