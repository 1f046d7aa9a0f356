"""One embedded sidecar in front of the echo app, with a Configuration (secret scopes) and a secret store."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sidecar.thread import SidecarThread
from tests.harness import ServedApp, use_sidecar
from tests.sidecar.invoke import invoke_app
from tests.stack import running_sidecar

TOKEN = "api-t0ken"
APP_TOKEN = "app-t0ken"

COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: vault
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: "{secrets}"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: open
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: "{secrets}"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
"""

CONFIG = """\
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: invoke-config
spec:
  secrets:
    scopes:
    - storeName: vault
      defaultAccess: deny
      allowedSecrets: ["db-password", "api-key"]
    - storeName: open
      deniedSecrets: ["root"]
"""


def resiliency(name: str, targets: str) -> str:
    """A Resiliency resource with the policies the resiliency tests share (a 300 ms timeout `quick`, two
    immediate retries `twice`, a breaker `three-strikes` tripping on three consecutive failures) and
    `targets` (YAML under `spec.targets`)."""
    return _RESILIENCY.replace("{name}", name) + targets


_RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: {name}
spec:
  policies:
    timeouts:
      quick: 300ms
    retries:
      twice: {policy: constant, duration: 0s, maxRetries: 2}
    circuitBreakers:
      three-strikes: {maxRequests: 1, timeout: 60s, trip: consecutiveFailures >= 3}
  targets:
"""

SECRETS = {"db-password": "s3cret", "api-key": "k3y", "root": "toor", "other": "o"}


@dataclass
class Running:
    sidecar: SidecarThread
    app: ServedApp

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.sidecar.http_port}"

    def use(self) -> None:
        use_sidecar(self.sidecar.http_port, self.sidecar.grpc_port, TOKEN)


def write_resources(tmp: Path, config: str = CONFIG, extra: str = "") -> tuple[Path, Path]:
    (tmp / "secrets.json").write_text(json.dumps(SECRETS))
    resources = tmp / "components"
    resources.mkdir()
    (resources / "components.yaml").write_text(COMPONENTS.format(secrets=tmp / "secrets.json"))
    if extra:
        (resources / "extra.yaml").write_text(extra)
    (tmp / "config.yaml").write_text(config)
    return resources, tmp / "config.yaml"


@contextlib.contextmanager
def running(
    tmp: Path, app_id: str, config: str = CONFIG, extra: str = "", **settings: Any
) -> Iterator[Running]:
    """The sidecar `app_id` (system clock, this suite's resources and Configuration) before the echo app;
    `settings` are further `SidecarConfig` fields."""
    resources, config_path = write_resources(tmp, config, extra)
    with running_sidecar(
        tmp / "data",
        lambda _: invoke_app.build(),
        app_id=app_id,
        resources_paths=[resources],
        config_path=config_path,
        api_token=TOKEN,
        app_token=APP_TOKEN,
        **settings,
    ) as (sidecar, app):
        yield Running(sidecar, app)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running(tmp_path_factory.mktemp("invoke"), "echo") as node:
        yield node


@pytest.fixture(autouse=True)
def _this_sidecar(node: Running) -> None:
    node.use()
