"""`dapr/`: the components both daprd and the embedded sidecar load, the Configuration and the Resiliency.

The embedded sidecar really loads them (and serves them), and each file holds only what daprd 1.16 accepts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from api.channel.housekeeping import HOUSEKEEPING_ROUTE
from sidecar.components import load_components
from sidecar.daprconfig import load_configuration
from sidecar.secrets import EnvSecretStore
from sidecar.server import Sidecar
from sidecar.state import SqliteStateStore
from tests.deploy.dapr_resources import problems
from tests.deploy.rendering import REPO
from tests.stack import sidecar_config
from todo_actors.interface import LIST_ACTOR_TYPE, OWNER_ACTOR_TYPE

DAPR = REPO / "dapr"
COMPONENTS = DAPR / "components"
APP_ID = "todo-engine"
JWT = "a-jwt-signing-key-of-at-least-32-bytes!"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def test_every_resource_is_one_daprd_accepts() -> None:
    files = sorted(COMPONENTS.glob("*.yaml")) + [DAPR / "config.yaml", DAPR / "resiliency.yaml"]
    kinds = []
    for file in files:
        for doc in _docs(file):
            kinds.append(doc["kind"])
            assert problems(doc) == [], file
    assert kinds.count("Component") == 4 and "Configuration" in kinds and "Resiliency" in kinds


def test_the_embedded_sidecar_loads_the_components(tmp_path: Path) -> None:
    environ = {"TODO_SECRET_JWT": JWT, "TODO_JWT_SECRET": "not through the store", "APP_API_TOKEN": "x" * 20}
    loaded = load_components([COMPONENTS], app_id=APP_ID, data_dir=tmp_path, environ=environ)
    try:
        store = loaded.state_stores["statestore"]
        assert isinstance(store, SqliteStateStore)
        assert loaded.actor_state_store == "statestore"
        assert (tmp_path / "todo-engine.db").exists()  # relative to the data directory, as documented
        assert loaded.pubsubs["pubsub"].type == "pubsub.in-memory"
        secrets = loaded.secret_stores["secretstore"]
        assert isinstance(secrets, EnvSecretStore)
        assert secrets.get("JWT") == {"JWT": JWT}
        # Only TODO_SECRET_* variables are secrets: the prefix hides the rest of the environment.
        assert set(secrets.bulk()) == {"JWT"}
        housekeeping = loaded.bindings["housekeeping"]
        assert (housekeeping.schedule_text, housekeeping.route, housekeeping.explicit_input) == (
            "@every 6h",
            "housekeeping",  # api.channel.housekeeping.HOUSEKEEPING_ROUTE
            True,
        )
    finally:
        for s in loaded.state_stores.values():
            if isinstance(s, SqliteStateStore):
                s.shutdown()


def test_the_run_files_extra_resources_path_adds_nothing_for_the_embedded_sidecar(tmp_path: Path) -> None:
    """`dapr/` is a resources path too (for resiliency.yaml); its non-Component files are skipped."""
    loaded = load_components([COMPONENTS, DAPR], app_id=APP_ID, data_dir=tmp_path, environ={})
    try:
        assert sorted(e["name"] for e in loaded.describe()) == [
            "housekeeping",
            "pubsub",
            "secretstore",
            "statestore",
        ]
    finally:
        for s in loaded.state_stores.values():
            if isinstance(s, SqliteStateStore):
                s.shutdown()


def test_the_embedded_sidecar_applies_the_workflow_limits() -> None:
    config = load_configuration(DAPR / "config.yaml")
    spec = _docs(DAPR / "config.yaml")[0]["spec"]["workflow"]
    assert config.max_concurrent_workflows == spec["maxConcurrentWorkflowInvocations"] > 0
    assert config.max_concurrent_activities == spec["maxConcurrentActivityInvocations"] > 0


async def test_a_sidecar_started_on_these_files_serves_them(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TODO_SECRET_JWT", JWT)
    config = sidecar_config(
        tmp_path, app_id=APP_ID, resources_paths=[COMPONENTS, DAPR], config_path=DAPR / "config.yaml"
    )
    sidecar = Sidecar(config)  # on the test's loop
    await sidecar.start()
    try:
        base = f"http://127.0.0.1:{sidecar.http_port}/v1.0"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metadata") as resp:
                metadata = await resp.json()
            async with http.get(f"{base}/secrets/secretstore/JWT") as resp:
                assert resp.status == 200
                assert await resp.json() == {"JWT": JWT}
        types = {c["name"]: c["type"] for c in metadata["components"]}
        assert types == {
            "statestore": "state.sqlite",
            "pubsub": "pubsub.in-memory",
            "secretstore": "secretstores.local.env",
            "housekeeping": "bindings.cron",
        }
    finally:
        await sidecar.stop()


def test_resiliency_targets_are_the_apps_actor_types_and_components() -> None:
    spec = _docs(DAPR / "resiliency.yaml")[0]["spec"]
    assert set(spec["targets"]["actors"]) == {LIST_ACTOR_TYPE, OWNER_ACTOR_TYPE}
    names = {d["metadata"]["name"] for f in COMPONENTS.glob("*.yaml") for d in _docs(f)}
    assert set(spec["targets"]["components"]) <= names
    assert {"pubsub", "statestore"} <= set(spec["targets"]["components"])


def test_the_secret_scope_lets_the_app_read_its_jwt_key_only() -> None:
    scopes = _docs(DAPR / "config.yaml")[0]["spec"]["secrets"]["scopes"]
    run_env = _docs(DAPR / "dapr.yaml")[0]["common"]["env"]
    (scope,) = [s for s in scopes if s["storeName"] == run_env["TODO_JWT_SECRET_STORE"]]
    assert scope["defaultAccess"] == "deny"
    assert scope["allowedSecrets"] == [run_env["TODO_JWT_SECRET_KEY"]]


def test_the_dapr_folder_never_shadows_the_dapr_sdk() -> None:
    assert not (DAPR / "__init__.py").exists()
    spec = importlib.util.find_spec("dapr")
    assert spec is not None and spec.origin is not None
    assert not Path(spec.origin).is_relative_to(DAPR)


def test_the_checker_refuses_a_schedule_daprd_would_refuse() -> None:
    doc = _docs(COMPONENTS / "housekeeping.yaml")[0]
    doc["spec"]["metadata"][0]["value"] = "@every 15 minutes"
    assert problems(doc) == [
        "Component 'housekeeping': metadata 'schedule': '@every 15 minutes' is not a schedule daprd's cron "
        "accepts: failed to parse duration @every 15 minutes: time: invalid duration '15 minutes'"
    ]
    doc["spec"]["metadata"][0]["value"] = "*/15 * * * *"
    doc["spec"]["metadata"].append({"name": "schedules", "value": "x"})
    assert problems(doc) == [
        "Component 'housekeeping': metadata 'schedules' is not a field of bindings.cron v1"
    ]


def test_the_binding_route_is_the_apps() -> None:
    assert HOUSEKEEPING_ROUTE == "/" + _docs(COMPONENTS / "housekeeping.yaml")[0]["metadata"]["name"]
