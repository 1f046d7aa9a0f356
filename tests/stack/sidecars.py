"""The embedded sidecar as the suites run it: on a thread of its own (`sidecar_thread`), with an app channel
served beside it (`running_sidecar`), restartable on the same ports and data dir (`restartable_sidecar`), or
as a child process to kill -9 (`SidecarProcess`). One builder, so every suite boots the same sidecar."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dapr.ext.workflow import WorkflowRuntime

from sidecar import SidecarConfig
from sidecar.clock import Clock
from sidecar.hosts.registry import REGISTRY_DIR_ENV
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, bound_socket, engine_env, wait_for
from tests.stack.workers import start_worker, stop_worker

__all__ = [
    "Restartable",
    "SidecarProcess",
    "restartable_sidecar",
    "running_sidecar",
    "sidecar_config",
    "sidecar_thread",
]


def sidecar_config(
    data: Path, *, app_id: str = "app", app_port: int | None = None, **config: Any
) -> SidecarConfig:
    """A test sidecar's settings: data in `data`, free ports unless `config` names them (a restart on the
    same ports); `config` are further `SidecarConfig` fields."""
    ports = {"http_port": 0, "grpc_port": 0}
    return SidecarConfig(app_id=app_id, app_port=app_port, data_dir=data, **(ports | config))


def sidecar_thread(
    data: Path, *, app_id: str = "app", app_port: int | None = None, clock: Clock | None = None, **config: Any
) -> SidecarThread:
    """The embedded sidecar (`sidecar_config`) on a thread of its own (`clock`, else the system's), not
    started yet: `with` it, or `.start()` and later `.stop()`."""
    return SidecarThread(sidecar_config(data, app_id=app_id, app_port=app_port, **config), clock=clock)


class Restartable:
    """A sidecar, its app channel and (optionally) a workflow worker, each of which can be stopped and
    started again: the sidecar comes back on the ports and data dir it first had (clients built before
    the restart still reach it), the app on its port (`restart_app`), the worker on that sidecar. Stopping
    the engine (`stop_engine`) leaves the app channel up, as a sidecar's outage does."""

    def __init__(self, data: Path, *, app_id: str, clock: Clock | None, sock: socket.socket, **config: Any):
        self.data = data
        self._app_port: int = sock.getsockname()[1]
        self._sidecar: SidecarThread | None = None
        # Given ports, else free ones picked at the first start and kept for every restart.
        self.http_port: int = config.pop("http_port", 0)
        self.grpc_port: int = config.pop("grpc_port", 0)
        self._sidecar_args: dict[str, Any] = {"app_id": app_id, "clock": clock, **config}
        self.app: ServedApp | None = None
        self.worker: WorkflowRuntime | None = None
        self.register: Callable[[WorkflowRuntime], None] | None = None

    @property
    def sidecar(self) -> SidecarThread:
        assert self._sidecar is not None, "the sidecar is stopped"
        return self._sidecar

    def start_sidecar(self, *, wait_ready: bool = True) -> SidecarThread:
        """Start the sidecar (again): free ports the first time, the same ones after."""
        ports: dict[str, Any] = {"http_port": self.http_port, "grpc_port": self.grpc_port}
        sidecar = sidecar_thread(self.data, app_port=self._app_port, **ports, **self._sidecar_args)
        self._sidecar = sidecar.start()
        self.http_port, self.grpc_port = sidecar.http_port, sidecar.grpc_port
        if wait_ready:
            sidecar.wait_ready()
        return sidecar

    def stop_sidecar(self) -> None:
        if self._sidecar is not None:
            self._sidecar.stop()
            self._sidecar = None

    def restart_app(self, make_app: Callable[[SidecarThread], Any]) -> ServedApp:
        """The app channel stopped and served again on its port, as `make_app` builds it for the sidecar
        (a restarted app process)."""
        if self.app is not None:
            self.app.stop()
        self.app = ServedApp(make_app(self.sidecar), bound_socket(port=self._app_port)).start()
        return self.app

    def start_worker(self, register: Callable[[WorkflowRuntime], None] | None = None) -> WorkflowRuntime:
        """A new `WorkflowRuntime` on this sidecar, with `register` (default: the last one given)."""
        self.register = register or self.register
        assert self.register is not None, "no workflows to register"
        self.worker = start_worker(self.grpc_port, self.register)
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            stop_worker(self.worker)
            self.worker = None

    def stop_engine(self) -> None:
        """The engine goes down: worker, then sidecar (the app channel stays up)."""
        self.stop_worker()
        self.stop_sidecar()

    def start_engine(self) -> None:
        """The engine comes back on the same ports and data: sidecar, then the worker if there was one."""
        self.start_sidecar()
        if self.register is not None:
            self.start_worker()


@contextlib.contextmanager
def restartable_sidecar(
    data: Path,
    make_app: Callable[[SidecarThread], Any],
    *,
    app_id: str,
    clock: Clock | None = None,
    sock: socket.socket | None = None,
    register: Callable[[WorkflowRuntime], None] | None = None,
    **config: Any,
) -> Iterator[Restartable]:
    """The embedded sidecar (`sidecar_thread`), the app `make_app` builds for it served on `sock` as its app
    channel, and, given `register`, a workflow worker with those workflows; each restartable on the same
    ports and data dir (`Restartable`). At the end the worker stops first, then the sidecar (it
    deactivates actors through the app), then the app."""
    sock = sock or bound_socket()
    engine = Restartable(data, app_id=app_id, clock=clock, sock=sock, **config)
    sidecar = engine.start_sidecar(wait_ready=False)
    try:
        engine.app = ServedApp(make_app(sidecar), sock).start()
    except BaseException:
        engine.stop_sidecar()
        raise
    try:
        sidecar.wait_ready()
        if register is not None:
            engine.start_worker(register)
        yield engine
    finally:
        engine.stop_engine()
        engine.app.stop()  # the app last served, restarts included


@contextlib.contextmanager
def running_sidecar(
    data: Path,
    make_app: Callable[[SidecarThread], Any],
    *,
    app_id: str,
    clock: Clock | None = None,
    sock: socket.socket | None = None,
    **config: Any,
) -> Iterator[tuple[SidecarThread, ServedApp]]:
    """The embedded sidecar (`sidecar_thread`) and, served on `sock` as its app channel, the app `make_app`
    builds for it: the engine's channel, or a suite's own actor app. The sidecar stops first (it
    deactivates actors through the app)."""
    with restartable_sidecar(data, make_app, app_id=app_id, clock=clock, sock=sock, **config) as engine:
        assert engine.app is not None
        yield engine.sidecar, engine.app


class SidecarProcess:
    """`python -m sidecar run` as a child process on free ports (read from its `--port-file`), for the
    kill -9 tests: `start()` it, `kill9()` it, `start()` it again on the same data dir."""

    def __init__(
        self,
        data: Path,
        *,
        app_id: str,
        app_port: int | None = None,
        log_level: str = "warning",
        args: tuple[str, ...] = (),
    ) -> None:
        self.data = data
        self.command = [sys.executable, "-m", "sidecar", "run", "--app-id", app_id, "--data-dir", str(data)]
        self.command += ["--dapr-http-port", "0", "--log-level", log_level, *args]
        if app_port is not None:
            self.command += ["--app-port", str(app_port)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = self.grpc = 0

    def start(self, timeout: float = 30.0) -> SidecarProcess:
        """Start (again): a free gRPC port the first time, the same one after (workers reconnect to it)."""
        self.data.mkdir(parents=True, exist_ok=True)
        port_file = self.data / "ports.json"
        port_file.unlink(missing_ok=True)
        env = engine_env()
        if REGISTRY_DIR_ENV in os.environ:  # this run's host registry (tests/conftest.py), not the user's
            env[REGISTRY_DIR_ENV] = os.environ[REGISTRY_DIR_ENV]
        command = [*self.command, "--dapr-grpc-port", str(self.grpc), "--port-file", str(port_file)]
        self.proc = subprocess.Popen(command, env=env)
        ports = json.loads(wait_for(lambda: port_file.exists() and port_file.read_text(), timeout=timeout))
        self.http, self.grpc = ports["http"], ports["grpc"]
        return self

    def kill9(self) -> None:
        """SIGKILL: nothing is shut down, whatever was in flight is cut off."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    @property
    def base(self) -> str:
        return f"{self.url}/v1.0"
