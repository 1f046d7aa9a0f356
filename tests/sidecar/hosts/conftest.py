"""Two embedded sidecars on one host that find each other through a shared host registry: `front` (the
caller) and `back` (the callee, with an access control list), each in front of the echo app; and the
`orders`/`billing` workflow apps the cross-app workflow modules share."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dapr.ext.grpc import App
from dapr.ext.workflow import DaprWorkflowClient

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import ServedApp
from tests.sidecar.hosts.workflow_apps import BILLING, ORDERS, gate, register_billing, register_orders
from tests.sidecar.hosts.workflow_apps import App as WorkflowApp
from tests.sidecar.invoke import invoke_app
from tests.sidecar.workflows.support import close_client
from tests.stack import running_sidecar, sidecar_thread

FRONT_TOKEN = "front-t0ken"
BACK_TOKEN = "back-t0ken"

BACK_CONFIG = """\
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: back-config
spec:
  accessControl:
    defaultAction: deny
    trustDomain: "public"
    policies:
    - appId: front
      defaultAction: deny
      trustDomain: "public"
      namespace: "default"
      operations:
      - name: /orders/**
        httpVerb: ["*"]
        action: allow
"""

# A durable broker component whose file (`path`) several sidecars share.
SHARED_PUBSUB = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.embedded.sqlite
  version: v1
  metadata:
  - name: dbFile
    value: {path}
"""


@dataclass
class Node:
    sidecar: SidecarThread
    app: ServedApp
    token: str

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.sidecar.http_port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"dapr-api-token": self.token}


@contextlib.contextmanager
def pair_of_nodes(tmp: Path) -> Iterator[tuple[Node, Node]]:
    (tmp / "back.yaml").write_text(BACK_CONFIG)
    registry = tmp / "registry"
    clock = ManualClock()
    with (
        running_sidecar(
            tmp / "back",
            lambda _: invoke_app.build(),
            app_id="back",
            clock=clock,
            api_token=BACK_TOKEN,
            config_path=tmp / "back.yaml",
            registry_dir=registry,
        ) as (back, back_app),
        running_sidecar(
            tmp / "front",
            lambda _: invoke_app.build(),
            app_id="front",
            clock=clock,
            api_token=FRONT_TOKEN,
            registry_dir=registry,
        ) as (front, front_app),
    ):
        yield Node(front, front_app, FRONT_TOKEN), Node(back, back_app, BACK_TOKEN)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    with pair_of_nodes(tmp_path_factory.mktemp("hosts")) as nodes:
        yield nodes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def grpc_app_and_front(
    tmp: Path, app: App, *, front: dict[str, Any] | None = None, **back: Any
) -> Iterator[tuple[SidecarThread, SidecarThread]]:
    """(front: the echo HTTP app's sidecar, back: the sidecar `grpc-back` of the gRPC `app`), in one host
    registry; `back` and `front` are further `SidecarConfig` fields of each."""
    port = _free_port()
    server = threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True)
    server.start()
    clock = ManualClock()
    back_sidecar = sidecar_thread(
        tmp / "back",
        app_id="grpc-back",
        app_port=port,
        clock=clock,
        app_protocol="grpc",
        registry_dir=tmp / "registry",
        **back,
    ).start()
    try:
        back_sidecar.wait_ready()
        with running_sidecar(
            tmp / "front",
            lambda _: invoke_app.build(),
            app_id="front",
            clock=clock,
            registry_dir=tmp / "registry",
            **(front or {}),
        ) as (front_sidecar, _):
            yield front_sidecar, back_sidecar
    finally:
        back_sidecar.stop()
        app.stop()
        server.join(10)


@pytest.fixture(scope="module")
def workflow_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WorkflowApp, WorkflowApp]]:
    tmp = tmp_path_factory.mktemp("xwf")
    clock = ManualClock()
    billing = WorkflowApp(tmp / "billing", BILLING, clock, tmp / "registry", register_billing).start()
    orders = WorkflowApp(tmp / "orders", ORDERS, clock, tmp / "registry", register_orders).start()
    try:
        yield orders, billing
    finally:
        gate.set()
        orders.stop()
        billing.stop()


@pytest.fixture(scope="module")
def orders_client(workflow_apps: tuple[WorkflowApp, WorkflowApp]) -> Iterator[DaprWorkflowClient]:
    wf_client = DaprWorkflowClient(host="127.0.0.1", port=str(workflow_apps[0].grpc_port))
    yield wf_client
    close_client(wf_client)
