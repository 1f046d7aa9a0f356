"""The systems under test of the REST benches (`bench/api.py`, `bench/api_cpu.py`, `bench/shared_lists.py`):
the facade (`todo-engine up` of a checkout) and the plain FastAPI + SQLite peer, started as child processes,
waited for and measured (RSS) from outside, so every driver sees them the same way."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from api.auth import mint_token
from bench.procstat import children, free_port, rss_mb

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Target:
    name: str
    base: str
    secret: str
    procs: list[subprocess.Popen[bytes]]
    lists: list[tuple[str, str]] = field(default_factory=list)  # (user, list id), by Zipf rank
    items: dict[str, list[str]] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}", "Content-Type": "application/json"}

    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = mint_token(self.secret, user, now=int(time.time()), ttl_seconds=86400)
        return self._tokens[user]

    def rss(self) -> float:
        pids = [p.pid for p in self.procs]
        pids += [c for p in self.procs for c in children(p.pid)]
        return sum(rss_mb(pid) for pid in pids)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def start_facade(data: Path, tree: Path = ROOT, resources: Path | None = None) -> Target:
    """`todo-engine up` of the checkout `tree` (its own code first on the path), on `resources` if given."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "APP_", "TODO_"))}
    env.update(TODO_RATE_LIMIT="1000000", TODO_RATE_BURST="1000000", TODO_DOCS="false")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "api", "up", "--port", str(port), "--data-dir", str(data)]
    command += ["--log-level", "warning"]
    if resources is not None:
        command += ["--resources-path", str(resources.resolve())]
    proc = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL)
    for _ in range(300):
        if (data / "secrets.json").exists():
            break
        time.sleep(0.05)
    secret = json.loads((data / "secrets.json").read_text())["jwt_secret"]
    return Target("facade", f"http://127.0.0.1:{port}", secret, [proc])


def start_peer(data: Path, workers: int = 1) -> Target:
    port = free_port()
    secret = secrets.token_urlsafe(40)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "plain_peer.py"),
            "--port",
            str(port),
            "--db",
            str(data / "peer.db"),
            f"--secret={secret}",  # one word: a secret may begin with "-"
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
    )
    name = "plain FastAPI+SQLite" + (f" ({workers} workers)" if workers > 1 else "")
    return Target(name, f"http://127.0.0.1:{port}", secret, [proc])


async def wait_ready(session: aiohttp.ClientSession, target: Target) -> None:
    for _ in range(600):
        try:
            async with session.post(
                f"{target.base}/v1/lists", json={"title": "probe"}, headers=target.headers("probe")
            ) as r:
                if r.status == 201:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{target.name} did not become ready")
