"""Test plumbing shared by the suites: ASGI apps served for real on loopback, and bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

__all__ = [
    "ServedApp",
    "bound_socket",
    "engine_env",
    "up_command",
    "wait_for",
    "wait_for_async",
]


def up_command(data: Path, *flags: str) -> list[str]:
    """`todo-engine up` on a free port with its data in `data` (the banner names the port it got)."""
    return [
        sys.executable,
        "-m",
        "api",
        "up",
        "--port",
        "0",
        "--data-dir",
        str(data),
        "--log-level",
        "warning",
        *flags,
    ]


def engine_env() -> dict[str, str]:
    """This process's environment without the Dapr/app/todo variables a test run may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "APP_", "TODO_"))}


def bound_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound to `port` (0: a free one) but not yet listening (connections are refused until
    served). Made with IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections (with proto 0
    it does not, and every response waits ~40 ms for a delayed ACK)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class ServedApp:
    """Serve an ASGI app with uvicorn on its own thread and loop, on a pre-bound socket."""

    def __init__(self, app: Any, sock: socket.socket | None = None, lifespan: str = "on") -> None:
        self.sock = sock or bound_socket()
        self.port: int = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
        )
        self.server.capture_signals = _no_signals  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"app:{self.port}")

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self, timeout: float = 30.0) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("app did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _no_signals() -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `cond` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def wait_for_async(cond: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def use_sidecar(http_port: int, grpc_port: int, token: str | None = None) -> None:
    """Point the SDK (`dapr.conf.settings`, read on every call) at one embedded sidecar.

    Several suites boot their own sidecar in one pytest process; an autouse fixture per suite calls this
    before each test so proxies and clients reach the right one.
    """
    from dapr.conf import settings

    settings.DAPR_RUNTIME_HOST = "127.0.0.1"
    settings.DAPR_HTTP_PORT = http_port
    settings.DAPR_GRPC_PORT = grpc_port
    settings.DAPR_HTTP_ENDPOINT = None
    settings.DAPR_GRPC_ENDPOINT = None
    settings.DAPR_API_TOKEN = token
