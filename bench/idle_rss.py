"""Memory of an idle embedded sidecar (issue 16's goal: at most 80 MB): `sidecar run` with the default
components (state.sqlite, pubsub.embedded.sqlite, the cron binding...) and no app, left alone for a while.

    .venv/bin/python -m bench.idle_rss [--settle 10]

Prints the sidecar process's resident set (VmRSS) and its peak (VmHWM) once it is ready and has idled for
`--settle` seconds, and the CPU it used while idle.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.actors import ROOT, free_port


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(settle: float) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "run", "--app-id", "idle", "--data-dir", str(Path(data) / "d")]
            + ["--dapr-http-port", str(port), "--dapr-grpc-port", str(free_port()), "--log-level", "warn"]
            + ["--registry-dir", str(Path(data) / "registry")],
            cwd=ROOT,
        )
        try:
            for _ in range(600):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1.0/healthz") as r:
                        if r.status == 204:
                            break
                except OSError:
                    time.sleep(0.1)
            cpu0 = _cpu_seconds(proc.pid)
            time.sleep(settle)
            idle_cpu = _cpu_seconds(proc.pid) - cpu0
            status = _status(proc.pid)
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"idle sidecar after {settle:.0f} s: RSS {status['VmRSS']}, peak {status['VmHWM']}")
    print(f"CPU while idle: {idle_cpu / settle * 100:.2f}% of a core")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=10)
    main(parser.parse_args().settle)
