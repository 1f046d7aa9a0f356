"""Delivery chaos: kill -9 the app and the sidecar at random moments while the dev clock moves through item
reminders and a writer makes acknowledged writes; then check the change feed.

    .venv/bin/python -m bench.delivery_chaos [--reminders 500] [--writes 1000] [--kills 20] [--seed 1]

The sidecar (`python -m sidecar run --dev-clock`) and the app (`python -m api serve`) run as separate
processes on fixed loopback ports, so either (or both) can be killed and restarted. Afterwards every reminder
must appear in the feed exactly once and never before its instant, and every write the API acknowledged
(201) must appear exactly once as `task.created`. Prints the counts and exits 1 on any loss, duplicate or
early firing. `tests/durability/test_delivery_chaos.py` runs a smaller version under the `slow` marker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.auth import mint_token

__all__ = ["ChaosResult", "run_chaos"]

STEP = 60.0  # seconds between two reminders' instants
BATCH = 100  # items per list


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ChaosResult:
    reminders: int
    fired: int
    lost: int
    duplicates: int
    early: int
    acknowledged: int
    writes_seen: int
    writes_duplicated: int
    kills: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.duplicates or self.early)
            and self.writes_seen == self.acknowledged
            and (not self.writes_duplicated)
        )


class Engine:
    """The sidecar and the app as two child processes on fixed ports, each killable and restartable."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.http, self.grpc, self.channel, self.public = (_free_port() for _ in range(4))
        self.dapr_token = secrets.token_urlsafe(24)
        self.jwt_secret = secrets.token_urlsafe(40)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "APP_", "TODO_"))},
            "APP_API_TOKEN": secrets.token_urlsafe(24),
            "DAPR_API_TOKEN": self.dapr_token,
            "TODO_JWT_SECRET": self.jwt_secret,
            "DAPR_HTTP_PORT": str(self.http),
            "DAPR_GRPC_PORT": str(self.grpc),
            "APP_PORT": str(self.channel),
            "TODO_PORT": str(self.public),
            "TODO_DEV_CLOCK": "true",
            "TODO_RATE_LIMIT": "100000",
            "TODO_RATE_BURST": "100000",
            "TODO_FEED_MAX_EVENTS": "100000",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = {name: open(data / f"{name}.log", "ab") for name in ("sidecar", "app")}

    def command(self, name: str) -> list[str]:
        if name == "app":
            return [sys.executable, "-m", "api", "serve", "--log-level", "warning"]
        return [
            sys.executable, "-m", "sidecar", "run", "--app-id", "todo-engine",
            "--app-port", str(self.channel), "--dapr-http-port", str(self.http),
            "--dapr-grpc-port", str(self.grpc), "--data-dir", str(self.data / "engine"),
            "--dev-clock", "--log-level", "warn",
        ]  # fmt: skip

    def start(self, name: str) -> None:
        log = self.logs[name]
        self.procs[name] = subprocess.Popen(self.command(name), env=self.env, stdout=log, stderr=log)

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for name in ("app", "sidecar"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for log in self.logs.values():
            log.close()

    def token(self, user: str) -> str:
        return mint_token(self.jwt_secret, user, now=int(time.time()), ttl_seconds=24 * 3600)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.public}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the engine did not become ready in {timeout:.0f} s (logs in {self.data})")

    def advance(self, seconds: float, settle_timeout: float = 20.0) -> bool:
        try:
            r = httpx.post(
                f"http://127.0.0.1:{self.http}/v1.0-dev/clock/advance",
                json={"seconds": seconds, "settle_timeout": settle_timeout},
                headers={"dapr-api-token": self.dapr_token},
                timeout=settle_timeout * 10,
            )
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def clock_now(self) -> float:
        r = httpx.get(
            f"http://127.0.0.1:{self.http}/v1.0-dev/clock", headers={"dapr-api-token": self.dapr_token}
        )
        r.raise_for_status()
        return float(r.json()["now"])


def _feed(client: httpx.Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = "0"
    while True:
        page = client.get("/v1/changes", params={"since": since, "limit": 500}).raise_for_status().json()
        out += page["events"]
        since = page["next_cursor"]
        if not page["has_more"]:
            return out


def run_chaos(
    data: Path, *, reminders: int, writes: int, kills: int, seed: int, log: Any = print
) -> ChaosResult:
    rng = random.Random(seed)
    engine = Engine(data)
    engine.start("sidecar")
    engine.start("app")
    killed: Counter[str] = Counter()
    try:
        engine.wait_ready()
        user = "chaos"
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{engine.public}",
            headers={"Authorization": f"Bearer {engine.token(user)}"},
            timeout=30,
        )
        base = engine.clock_now() + 600
        instants: dict[str, float] = {}  # item id -> reminder instant
        for start in range(0, reminders, BATCH):
            list_id = client.post("/v1/lists", json={"title": f"r{start}"}).raise_for_status().json()["id"]
            for k in range(start, min(start + BATCH, reminders)):
                at = dt.datetime.fromtimestamp(base + k * STEP, dt.UTC).replace(microsecond=0)
                item = client.post(
                    f"/v1/lists/{list_id}/items",
                    json={"title": f"r{k}", "reminders": [{"at": at.isoformat()}]},
                ).raise_for_status()
                instants[item.json()["id"]] = at.timestamp()
        write_list = client.post("/v1/lists", json={"title": "writes"}).raise_for_status().json()["id"]
        last = max(instants.values())
        hours = (last - base) / 3600
        log(f"{reminders} reminders over {hours:.1f} h of clock time; {writes} writes; {kills} kills")

        acknowledged: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            with httpx.Client(base_url=str(client.base_url), headers=client.headers, timeout=10) as w:
                for i in range(writes * 50):  # until `writes` are acknowledged (bounded)
                    if stop.is_set() or len(acknowledged) >= writes:
                        return
                    try:
                        r = w.post(f"/v1/lists/{write_list}/items", json={"title": f"w{i}"})
                    except httpx.HTTPError:
                        time.sleep(0.05)
                        continue
                    if r.status_code == 201:
                        acknowledged.append(r.json()["id"])

        def clock() -> None:
            while not stop.is_set():
                try:
                    if engine.clock_now() > last + 120:
                        return
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                if not engine.advance(STEP * 5):
                    time.sleep(0.1)

        threads = [threading.Thread(target=writer), threading.Thread(target=clock)]
        for t in threads:
            t.start()
        for _ in range(kills):
            time.sleep(rng.uniform(0.3, 2.0))
            victims = rng.choice([("app",), ("sidecar",), ("app", "sidecar")])
            for name in victims:
                engine.kill9(name)
                killed[name] += 1
            time.sleep(rng.uniform(0.05, 0.8))
            for name in victims:
                engine.start(name)
        engine.wait_ready()
        for t in threads:
            t.join(timeout=600)
        stop.set()
        while engine.clock_now() <= last + 120:
            engine.advance(STEP * 5)
        deadline = time.monotonic() + 120
        while True:
            events = _feed(client)
            fired = [e for e in events if e["type"] == "reminder.fired"]
            if len({e["item_id"] for e in fired}) >= reminders or time.monotonic() > deadline:
                break
            engine.advance(1)
            time.sleep(0.5)
        per_item = Counter(e["item_id"] for e in fired)
        early = sum(
            1 for e in fired if dt.datetime.fromisoformat(e["at"]).timestamp() < instants.get(e["item_id"], 0)
        )
        created = Counter(e["item_id"] for e in events if e["type"] == "task.created")
        result = ChaosResult(
            reminders=reminders,
            fired=len(per_item),
            lost=sum(1 for item in instants if item not in per_item),
            duplicates=sum(n - 1 for n in per_item.values() if n > 1),
            early=early,
            acknowledged=len(acknowledged),
            writes_seen=sum(1 for item in acknowledged if created[item] >= 1),
            writes_duplicated=sum(1 for item in acknowledged if created[item] > 1),
            kills=killed,
        )
        client.close()
        return result
    finally:
        engine.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reminders", type=int, default=500)
    p.add_argument("--writes", type=int, default=1000)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the data dir (logs) for inspection")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="delivery-chaos-")
    started = time.monotonic()
    result = run_chaos(
        Path(tmp), reminders=args.reminders, writes=args.writes, kills=args.kills, seed=args.seed
    )
    print(json.dumps({**result.__dict__, "kills": dict(result.kills), "ok": result.ok}, indent=1))
    print(f"wall time {time.monotonic() - started:.0f} s")
    if args.keep:
        print(f"data and logs in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
