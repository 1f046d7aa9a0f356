"""The JWT secret read from a Dapr secret store (a second sidecar with a `secretstores.local.file`)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx

from api.app import create_app
from api.auth import mint_token
from api.process.listeners import bind
from api.process.settings import configure_dapr, load_settings
from tests.harness import ServedApp
from tests.stack import sidecar_thread

COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: "state.db"
---
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
"""


def test_jwt_secret_from_a_secret_store(tmp_path: Path) -> None:
    jwt_secret = secrets.token_urlsafe(40)
    (tmp_path / "secrets.json").write_text(json.dumps({"todo-jwt": jwt_secret}))
    resources = tmp_path / "components"
    resources.mkdir()
    (resources / "components.yaml").write_text(COMPONENTS.format(secrets=tmp_path / "secrets.json"))
    sidecar = sidecar_thread(tmp_path / "data", resources_paths=[resources]).start()
    try:
        settings = load_settings(
            {},
            app_api_token=secrets.token_urlsafe(20),
            jwt_secret_store="vault",
            jwt_secret_key="todo-jwt",
            dapr_http_port=sidecar.http_port,
            dapr_grpc_port=sidecar.grpc_port,
        )
        configure_dapr(settings)
        app = ServedApp(create_app(settings), bind("127.0.0.1", 0)).start()
        try:
            good = mint_token(jwt_secret, "carol", now=int(time.time()), ttl_seconds=60)
            other = mint_token(secrets.token_urlsafe(40), "carol", now=int(time.time()), ttl_seconds=60)
            with httpx.Client(base_url=app.url) as c:
                assert c.get("/v1/changes", headers={"Authorization": f"Bearer {good}"}).status_code == 200
                assert c.get("/v1/changes", headers={"Authorization": f"Bearer {other}"}).status_code == 401
        finally:
            app.stop()
    finally:
        sidecar.stop()
