"""One real stack for the actor tests: the embedded sidecar (own thread, manual clock, temp SQLite) and a
FastAPI app hosting actors through the SDK's `DaprActor`, both on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar import ManualClock, SidecarConfig
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, bound_socket, use_sidecar
from tests.sidecar.actors.actor_app import build_app


class Stack:
    def __init__(self, sidecar: SidecarThread, app: ServedApp, clock: ManualClock, data: Path):
        self.sidecar = sidecar
        self.app = app
        self.clock = clock
        self.data = data

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sidecar.http_port}/v1.0"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("actors-sidecar")
    app_sock = bound_socket()
    clock = ManualClock()
    config = SidecarConfig(
        app_id="actors-test",
        app_port=app_sock.getsockname()[1],
        http_port=0,
        grpc_port=0,
        data_dir=data,
        dev_clock=True,
    )
    sidecar = SidecarThread(config, clock=clock).start()
    use_sidecar(sidecar.http_port, sidecar.grpc_port)
    app = ServedApp(build_app(), app_sock).start()
    sidecar.wait_ready()
    try:
        yield Stack(sidecar, app, clock, data)
    finally:
        sidecar.stop()
        app.stop()


@pytest.fixture(autouse=True)
def _this_sidecar(stack: Stack) -> None:
    use_sidecar(stack.sidecar.http_port, stack.sidecar.grpc_port)
