"""Loading component and subscription YAML as daprd does, and refusing what the embedded sidecar lacks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sidecar.clock import ManualClock
from sidecar.components import (
    ComponentError,
    UnsupportedComponent,
    default_components,
    load_components,
)
from sidecar.secrets import EnvSecretStore, LocalFileSecretStore
from sidecar.state import InMemoryStateStore, SetOp, SqliteStateStore

STATESTORE = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: "todo.db"
  - name: actorStateStore
    value: "true"
"""

EVERYTHING = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  version: v1
  metadata:
  - name: consumerID
    value: "{appID}-consumer"
  - name: maxRetries
    value: 5
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: localsecrets
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: secrets.json
  - name: multiValued
    value: true
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: cache
spec:
  type: state.in-memory
  version: v1
  metadata:
  - name: keyPrefix
    secretKeyRef:
      name: cache
      key: prefix
auth:
  secretStore: localsecrets
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: todo-events
spec:
  pubsubname: pubsub
  topic: todos
  routes:
    rules:
    - match: event.type == "todo.completed"
      path: /events/completed
    default: /events/todos
  deadLetterTopic: todos-dead
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 50
scopes:
- todo-api
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: legacy
spec:
  pubsubname: pubsub
  topic: legacy
  route: /legacy
  metadata:
    rawPayload: "true"
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  tracing:
    samplingRate: "1"
"""


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture
def resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # secretsFile is relative to the working directory, as in daprd
    (tmp_path / "secrets.json").write_text(json.dumps({"cache": {"prefix": "Shared"}}))
    folder = tmp_path / "components"
    _write(folder, "statestore.yaml", STATESTORE)
    _write(folder, "everything.yml", EVERYTHING)
    _write(folder, "README.md", "not a component")
    return folder


async def test_loads_components_and_subscriptions(resources: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    comps = load_components([resources], app_id="todo-api", data_dir=data, clock=ManualClock())
    try:
        assert comps.actor_state_store == "statestore"
        store = comps.state_stores["statestore"]
        assert isinstance(store, SqliteStateStore)
        assert store.options.path == str(data / "todo.db")
        await store.set(SetOp("k", b"1"))
        assert (data / "todo.db").exists()
        cache = comps.state_stores["cache"]
        assert isinstance(cache, InMemoryStateStore) and cache.key_prefix == "shared"
        pubsub = comps.pubsubs["pubsub"]
        assert (pubsub.type, pubsub.version) == ("pubsub.in-memory", "v1")
        assert pubsub.metadata == {"consumerID": "todo-api-consumer", "maxRetries": "5"}
        assert isinstance(comps.secret_stores["localsecrets"], LocalFileSecretStore)
        subs = {s.name: s for s in comps.subscriptions}
        assert subs["todo-events"].routes == {
            "rules": [{"match": 'event.type == "todo.completed"', "path": "/events/completed"}],
            "default": "/events/todos",
        }
        assert subs["todo-events"].dead_letter_topic == "todos-dead"
        assert subs["todo-events"].scopes == ("todo-api",)
        assert subs["todo-events"].bulk_subscribe == {"enabled": True, "maxMessagesCount": 50}
        assert subs["legacy"].bulk_subscribe is None
        assert subs["legacy"].routes == {"rules": [], "default": "/legacy"}
        assert subs["legacy"].metadata == {"rawPayload": "true"}
        described = {d["name"]: d for d in comps.describe()}
        assert described["statestore"] == {
            "name": "statestore",
            "type": "state.sqlite",
            "version": "v1",
            "capabilities": ["ETAG", "TRANSACTIONAL", "TTL", "KEYS_LIKE", "ACTOR"],
        }
        assert described["pubsub"]["capabilities"] == ["SUBSCRIBE_WILDCARDS"]
        assert described["localsecrets"]["type"] == "secretstores.local.file"
    finally:
        await comps.close()
    assert not (data / "todo.db-wal").exists()  # closed: SQLite checkpoints and removes the WAL


def test_scopes_skip_components_and_subscriptions_of_other_apps(resources: Path, tmp_path: Path) -> None:
    _write(
        resources,
        "scoped.yaml",
        STATESTORE.replace("name: statestore", "name: private") + "scopes:\n- other-app\n",
    )
    comps = load_components([resources], app_id="another", data_dir=tmp_path)
    try:
        assert "private" not in comps.state_stores
        assert [s.name for s in comps.subscriptions] == ["legacy"]
    finally:
        for store in comps.state_stores.values():
            if isinstance(store, SqliteStateStore):
                store.shutdown()


def test_unsupported_type_names_type_component_and_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "res",
        "redis.yaml",
        STATESTORE.replace("state.sqlite", "state.redis").replace("statestore", "prodstore"),
    )
    with pytest.raises(UnsupportedComponent) as caught:
        load_components([path.parent], app_id="a", data_dir=tmp_path)
    message = str(caught.value)
    for part in ("state.redis", "prodstore", str(path), "state.sqlite", "daprd"):
        assert part in message


def test_unsupported_version_and_ignore_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "res"
    _write(folder, "v2.yaml", STATESTORE.replace("version: v1", "version: v2"))
    with pytest.raises(UnsupportedComponent, match="'v2'"):
        load_components([folder], app_id="a", data_dir=tmp_path)
    kafka = STATESTORE.replace("state.sqlite", "pubsub.kafka").replace(
        "version: v1", "version: v1\n  ignoreErrors: true"
    )
    _write(folder, "v2.yaml", kafka)
    with caplog.at_level(logging.ERROR, logger="sidecar.components"):
        comps = load_components([folder], app_id="a", data_dir=tmp_path)
    assert comps.state_stores == {} and comps.pubsubs == {}
    assert "pubsub.kafka" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "not a mapping"),
        (STATESTORE.replace("  name: statestore\n", ""), "invalid name"),
        (STATESTORE + "---\n" + STATESTORE, "duplicate definition"),
        (STATESTORE + "---\n" + STATESTORE.replace("name: statestore", "name: second"), "actorStateStore"),
        (STATESTORE.replace('value: "todo.db"', 'value: "x.db?mode=ro"'), "read-only"),
        (
            "apiVersion: dapr.io/v1alpha1\nkind: WorkflowAccessPolicy\nmetadata:\n  name: only-billing\n"
            "spec:\n  rules:\n  - callers:\n    - appID: billing\n",
            "WorkflowAccessPolicy 'only-billing': not supported by the embedded sidecar",
        ),
        (
            STATESTORE.replace("  - name: actorStateStore", "  - value: x\n  - name: actorStateStore"),
            "needs a `name`",
        ),
    ],
)
def test_bad_files_are_startup_errors_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "res", "bad.yaml", text)
    with pytest.raises(ComponentError, match=message) as caught:
        load_components([path], app_id="a", data_dir=tmp_path)
    assert str(path) in str(caught.value)


def test_unresolvable_secret_refs_are_startup_errors(tmp_path: Path) -> None:
    base = EVERYTHING.split("---\n")[2]  # the `cache` component with its secretKeyRef
    folder = tmp_path / "res"
    _write(folder, "cache.yaml", base)
    with pytest.raises(ComponentError, match="no secret store 'localsecrets'"):
        load_components([folder], app_id="a", data_dir=tmp_path)
    _write(folder, "cache.yaml", base.replace("auth:\n  secretStore: localsecrets\n", ""))
    with pytest.raises(ComponentError, match="auth.secretStore"):
        load_components([folder], app_id="a", data_dir=tmp_path)
    (tmp_path / "s.json").write_text("{}")
    env_store = EVERYTHING.split("---\n")[1].replace("secrets.json", str(tmp_path / "s.json"))
    _write(folder, "cache.yaml", env_store + "---\n" + base)
    with pytest.raises(ComponentError, match="secret cache not found"):
        load_components([folder], app_id="a", data_dir=tmp_path)


def test_env_refs_and_env_secret_store(tmp_path: Path) -> None:
    text = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: envsecrets
spec:
  type: secretstores.local.env
  version: v1
  metadata:
  - name: prefix
    envRef: SECRET_PREFIX
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: mem
spec:
  type: state.in-memory
  version: v1
  metadata:
  - name: keyPrefix
    secretKeyRef:
      name: PREFIX
auth:
  secretStore: envsecrets
"""
    path = _write(tmp_path / "res", "env.yaml", text)
    environ = {"SECRET_PREFIX": "TODO_", "TODO_PREFIX": "tenant1", "DAPR_API_TOKEN": "x"}
    comps = load_components([path], app_id="a", data_dir=tmp_path, environ=environ)
    secrets = comps.secret_stores["envsecrets"]
    assert isinstance(secrets, EnvSecretStore) and secrets.prefix == "TODO_"
    assert comps.state_stores["mem"].key_prefix == "tenant1"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ComponentError, match="does not exist"):
        load_components([tmp_path / "nope"], app_id="a", data_dir=tmp_path)


async def test_default_components_match_dapr_init_with_sqlite(tmp_path: Path) -> None:
    comps = default_components(tmp_path, clock=ManualClock())
    try:
        assert comps.actor_state_store == "statestore"
        assert [(d["name"], d["type"]) for d in comps.describe()] == [
            ("statestore", "state.sqlite"),
            ("pubsub", "pubsub.embedded.sqlite"),
            ("housekeeping", "bindings.cron"),  # read only by an app that answers OPTIONS /housekeeping
        ]
        housekeeping = comps.bindings["housekeeping"]
        assert housekeeping.schedule_text == "@every 6h" and not housekeeping.explicit_input
        await comps.state_stores["statestore"].set(SetOp("k", b"1"))
        assert (tmp_path / "state.db").exists()
    finally:
        await comps.close()
