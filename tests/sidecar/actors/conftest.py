"""One real stack for the actor tests: the embedded sidecar (own thread, manual clock, temp SQLite) and a
FastAPI app hosting actors through the SDK's `DaprActor`, both on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, use_sidecar
from tests.sidecar.actors.actor_app import build_app
from tests.stack import running_sidecar


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
    clock = ManualClock()

    def app(sidecar: SidecarThread) -> Any:
        use_sidecar(sidecar.http_port, sidecar.grpc_port)
        return build_app()

    with running_sidecar(data, app, app_id="actors-test", clock=clock, dev_clock=True) as (sidecar, served):
        yield Stack(sidecar, served, clock, data)


@pytest.fixture(autouse=True)
def _this_sidecar(stack: Stack) -> None:
    use_sidecar(stack.sidecar.http_port, stack.sidecar.grpc_port)
