"""Processes of the series benchmarks: the embedded sidecar (`python -m sidecar run`) and the app
(`bench.series_app`: list actors + series worker), on fixed loopback ports so either can be killed and
restarted; plus the driver's own clients (the API side: `SeriesService`). Not part of the product."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from dapr.aio.clients import DaprClient
from dapr.ext.workflow.aio import DaprWorkflowClient

from bench.procstat import cpu_seconds, free_port, rss_mb
from todo_actors.commands import CreateList
from todo_actors.interface import QueryTodos
from todo_actors.model import TodoItem
from workflows.activities import list_actors
from workflows.config import SeriesSettings
from workflows.series_client import SeriesService
from workflows.taskhub import close_workflow_client

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["Procs", "cpu_seconds", "pct", "rss_mb", "wall_now"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def wall_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Procs:
    def __init__(self, data: Path, min_interval_s: float = 60.0, sync: str | None = None) -> None:
        self.data = data
        self.min_interval_s = min_interval_s
        self.app_port, self.http_port, self.grpc_port = free_port(), free_port(), free_port()
        self.sidecar: subprocess.Popen[bytes] | None = None
        self.app: subprocess.Popen[bytes] | None = None
        self.log = open(data / "procs.log", "ab")  # closed in stop()
        self.env = dict(
            os.environ,
            DAPR_HTTP_PORT=str(self.http_port),
            DAPR_GRPC_PORT=str(self.grpc_port),
            SERIES_MIN_INTERVAL_S=str(min_interval_s),
            PYTHONPATH=str(ROOT),
        )

    def start_sidecar(self) -> None:
        args = [
            sys.executable, "-m", "sidecar", "run",
            "--app-id", "series-bench",
            "--app-port", str(self.app_port),
            "--dapr-http-port", str(self.http_port),
            "--dapr-grpc-port", str(self.grpc_port),
            "--data-dir", str(self.data),
            "--log-level", "warn",
        ]  # fmt: skip
        self.sidecar = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)

    def start_app(self) -> None:
        args = [
            sys.executable, "-m", "uvicorn", "--factory", "bench.series_app:create_app",
            "--port", str(self.app_port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        self.app = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)

    def kill(self, which: str) -> None:
        proc = self.sidecar if which == "sidecar" else self.app
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    async def wait_ready(self, timeout: float = 60) -> None:
        """The sidecar answers healthz 204 (it does once the app listens and its config was read)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                try:
                    async with http.get(f"http://127.0.0.1:{self.http_port}/v1.0/healthz") as r:
                        if r.status == 204:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the sidecar and app did not become ready")

    def configure_sdk(self) -> None:
        """Point this (driver) process's Dapr SDK at the sidecar."""
        from dapr.conf import settings

        settings.DAPR_RUNTIME_HOST = "127.0.0.1"  # type: ignore[attr-defined]
        settings.DAPR_HTTP_PORT = self.http_port  # type: ignore[attr-defined]
        settings.DAPR_GRPC_PORT = self.grpc_port  # type: ignore[attr-defined]

    def rss(self) -> tuple[float, float]:
        assert self.sidecar is not None and self.app is not None
        return rss_mb(self.sidecar.pid), rss_mb(self.app.pid)

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds used so far by the sidecar, the app and this driver."""
        assert self.sidecar is not None and self.app is not None
        return cpu_seconds(self.sidecar.pid), cpu_seconds(self.app.pid), time.process_time()

    def stop(self) -> None:
        for proc in (self.sidecar, self.app):  # sidecar first: it deactivates actors on the app
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.log.close()

    @asynccontextmanager
    async def service(self, settings: SeriesSettings) -> AsyncIterator[SeriesService]:
        workflows = DaprWorkflowClient(host="127.0.0.1", port=str(self.grpc_port))
        dapr = DaprClient(address=f"127.0.0.1:{self.grpc_port}")
        try:
            yield SeriesService(workflows, dapr, settings, list_actor=list_actors(), clock=wall_now)
        finally:
            await dapr.close()  # type: ignore[no-untyped-call]
            await close_workflow_client(workflows)

    @staticmethod
    async def new_list(owner: str, list_id: str) -> None:
        proxy = list_actors()(list_id)
        (await proxy.create_list(CreateList(owner=owner, title="bench"))).unwrap()

    @staticmethod
    async def items(list_id: str, series_id: str | None = None) -> list[TodoItem]:
        proxy = list_actors()(list_id)
        out: list[TodoItem] = []
        cursor = None
        while True:
            page = (
                await proxy.query_todos(QueryTodos(series_id=series_id, limit=500, cursor=cursor))
            ).unwrap()
            out += page.items
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor
