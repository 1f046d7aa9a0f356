"""Start-up time of `todo-engine up`: from the command's start to the first 200 from `/health/ready`
(the sidecar healthy and the store taking writes), over N runs on a fresh data directory each.

    .venv/bin/python -m bench.startup [--runs 10] [--port 18431] [--checkout DIR]

`--checkout` runs another checkout's `up` (a before/after comparison on the same machine and load).

Compiled bytecode is cached as an installed package has it (`PYTHONDONTWRITEBYTECODE` is dropped; caches go
to a temporary `PYTHONPYCACHEPREFIX`, so the checkout stays clean) and a first, uncounted run fills it.
The readiness probe polls every 5 ms so the figure is the engine's, not the probe's. Each run is stopped
with SIGINT (as Ctrl-C) and waited for before the next starts.

Wall time on a loaded machine says little, so each run also reports the CPU seconds the app (`up`) and
its sidecar had used when ready: they start in parallel, so on two free cores the larger of the two, plus
the short hand-over between them, is what start-up costs ("critical path CPU"). And the CPU of both from
start to stop, from the kernel's accounting of waited-for children.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.time_travel import children, cpu_seconds

_ROOT = Path(__file__).resolve().parent.parent
_POLL_SECONDS = 0.005
_GIVE_UP_SECONDS = 60.0


def ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/health/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def one_run(port: int, checkout: Path, pycache: Path) -> tuple[float, float, float, float]:
    """Seconds from spawning `up` to ready; the CPU seconds of the app and of its sidecar when ready; and
    the CPU seconds both used from start to stop."""
    with tempfile.TemporaryDirectory(prefix="startup-") as data:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        command = [sys.executable, "-m", "api", "up", "--port", str(port), "--data-dir", data]
        command += ["--log-level", "warning"]
        start = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONPYCACHEPREFIX": str(pycache)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        log = Path(data) / "up.log"
        with log.open("wb") as out:
            up = subprocess.Popen(command, cwd=checkout, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while not ready(port):
                if up.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"`up` exited with {up.returncode} before it was ready:\n{tail}")
                if time.perf_counter() - start > _GIVE_UP_SECONDS:
                    raise RuntimeError(f"`up` not ready within {_GIVE_UP_SECONDS:.0f} s")
                time.sleep(_POLL_SECONDS)
            elapsed = time.perf_counter() - start
            app_cpu = cpu_seconds(up.pid)
            sidecar_cpu = sum(cpu_seconds(pid) for pid in children(up.pid))
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(30)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return elapsed, app_cpu, sidecar_cpu, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--port", type=int, default=18431)
    p.add_argument("--checkout", type=Path, default=_ROOT, help="the checkout to run (default: this one)")
    args = p.parse_args()
    times: list[float] = []
    critical: list[float] = []
    cpus: list[float] = []
    checkout = args.checkout.resolve()
    with tempfile.TemporaryDirectory(prefix="startup-pycache-") as pycache:
        one_run(args.port, checkout, Path(pycache))  # fills the bytecode cache; not counted
        for n in range(args.runs):
            elapsed, app_cpu, sidecar_cpu, cpu = one_run(args.port, checkout, Path(pycache))
            times.append(elapsed)
            critical.append(max(app_cpu, sidecar_cpu))
            cpus.append(cpu)
            sys.stdout.write(
                f"run {n + 1}: up -> ready {elapsed:.3f} s; CPU when ready: app {app_cpu:.2f} s, "
                f"sidecar {sidecar_cpu:.2f} s; CPU start to stop {cpu:.2f} s\n"
            )
    sys.stdout.write(
        f"up -> ready over {args.runs} runs: median {statistics.median(times):.3f} s, "
        f"max {max(times):.3f} s, min {min(times):.3f} s; critical path CPU median "
        f"{statistics.median(critical):.2f} s, max {max(critical):.2f} s; CPU start to stop median "
        f"{statistics.median(cpus):.2f} s; load average {os.getloadavg()[0]:.1f}\n"
    )


if __name__ == "__main__":
    main()
