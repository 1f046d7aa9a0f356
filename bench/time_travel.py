"""Time-travel benchmark: one dev-clock advance of a year over 100 daily series (one list each).

    .venv/bin/python -m bench.time_travel [--series 100] [--days 365]

Runs `todo-engine up --dev-clock` as a child process, as a user would, creates the lists and series through
the public API, then advances the clock `--days` days in one call: the sidecar steps through every due
workflow timer, and each occurrence is created on its instant. Prints wall time, occurrences/s (goal
>= 500/s), steps, missed occurrences (must be 0) and the RSS of the app and the sidecar at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.procstat import children, cpu_seconds, rss_mb

DAY = 86_400


def start_up(data: Path) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "up", "--port", "0", "--data-dir", str(data), "--dev-clock"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = token = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (url and token):
        line = proc.stdout.readline()
        if found := re.search(r"API (http://\S+)/v1", line):
            url = found.group(1)
        if found := re.search(r"dev token \(user 'dev'\): (\S+)", line):
            token = found.group(1)
    if not (url and token):
        proc.kill()
        raise SystemExit("todo-engine up did not print its banner")
    return proc, url, token


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--series", type=int, default=100)
    p.add_argument("--days", type=int, default=365)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-time-travel-") as tmp:
        proc, url, token = start_up(Path(tmp))
        try:
            run(url, token, proc.pid, args.series, args.days)
        finally:
            proc.terminate()
            proc.wait(30)


def run(url: str, token: str, pid: int, n_series: int, days: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=None) as c:
        while c.get("/health/ready").status_code != 200:
            time.sleep(0.1)
        now = dt.datetime.fromisoformat(c.get("/v1/dev/clock").json()["now"])
        start = (now + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)

        def create(k: int) -> str:
            list_id = c.post("/v1/lists", json={"title": f"list {k}"}).json()["id"]
            r = c.post(
                "/v1/series",
                json={
                    "list_id": list_id,
                    "template": {"title": f"daily {k}"},
                    "rule": "FREQ=DAILY",
                    "dtstart": start.replace(tzinfo=None).isoformat(),
                    "tz": "UTC",
                },
            )
            r.raise_for_status()
            series_id: str = r.json()["id"]
            return series_id

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(create, range(n_series)))
        seconds = (start - now).total_seconds() + (days - 1) * DAY + 60
        sidecar = children(pid)
        cpu0 = cpu_seconds(pid), sum(cpu_seconds(s) for s in sidecar)
        t0 = time.perf_counter()
        r = c.post("/v1/dev/clock:advance", json={"seconds": seconds, "settle_timeout": 120})
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0[0], sum(cpu_seconds(s) for s in sidecar) - cpu0[1]
        r.raise_for_status()
        steps = r.json()["steps"]
        created = missed = 0
        for series_id in ids:
            state = c.get(f"/v1/series/{series_id}").json()
            created += state["occurrences_created"]
            missed += state["occurrences_missed"]
    app_rss, sidecar_rss = rss_mb(pid), sum(rss_mb(s) for s in sidecar)
    expected = n_series * days
    print(f"series: {n_series}, days: {days}, steps: {steps}")
    print(f"occurrences created: {created} (expected {expected}), missed: {missed}")
    print(f"advance wall time: {wall:.1f} s, {created / wall:.0f} occurrences/s (goal >= 500/s)")
    per = 1000 / max(created, 1)
    print(f"CPU per occurrence: app {cpu[0] * per:.2f} ms, sidecar {cpu[1] * per:.2f} ms")
    print(f"RSS at the end: app {app_rss:.0f} MB, sidecar {sidecar_rss:.0f} MB")


if __name__ == "__main__":
    main()
