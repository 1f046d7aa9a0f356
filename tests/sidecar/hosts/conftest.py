"""Two embedded sidecars on one host that find each other through a shared host registry: `front` (the
caller) and `back` (the callee, with an access control list), each in front of the echo app."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import ServedApp
from tests.sidecar.invoke import invoke_app
from tests.stack import running_sidecar

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
